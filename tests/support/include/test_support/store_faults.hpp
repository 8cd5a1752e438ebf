// Test helpers that damage SQLite store files the way the fault was found:
// copy a database and its write-ahead log while the connection is still open
// (what kill -9 leaves behind), then flip bytes in one WAL frame or in the
// database file. Header only; shared by the common, executor and dll_gateway
// store tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "common/sqlite_wal.hpp"

namespace tp::test {

// Copies `db` and, when present, `db`-wal to `to` and `to`-wal.
inline void copy_store_files(const std::string& db, const std::string& to) {
  namespace fs = std::filesystem;
  fs::copy_file(db, to, fs::copy_options::overwrite_existing);
  if (fs::exists(db + "-wal")) fs::copy_file(db + "-wal", to + "-wal", fs::copy_options::overwrite_existing);
}

// XORs `n` bytes of `file` from `offset` with 0x5a.
inline void flip_bytes(const std::string& file, std::uint64_t offset, std::size_t n) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + file);
  for (std::size_t i = 0; i < n; ++i) {
    f.seekg(static_cast<std::streamoff>(offset + i));
    const int c = f.get();
    if (c == EOF) throw std::runtime_error("flip_bytes past the end of " + file);
    f.seekp(static_cast<std::streamoff>(offset + i));
    f.put(static_cast<char>(c ^ 0x5a));
  }
}

// Flips bytes in the middle of the page data of frame `n` (1-based).
inline void damage_wal_frame(const std::string& wal, std::uint64_t n) {
  const auto scan = tp::sqlite_wal::scan_wal_file(wal);
  if (scan.page_size == 0 || n > scan.frames)
    throw std::runtime_error("no frame " + std::to_string(n) + " in " + wal);
  flip_bytes(wal,
             tp::sqlite_wal::frame_offset(n, scan.page_size) + tp::sqlite_wal::frame_header_size +
                 scan.page_size / 2,
             16);
}

}  // namespace tp::test
