// Reads a SQLite write-ahead log (<db>-wal) the way SQLite's recovery does,
// before SQLite opens the database, to tell a log that merely ends early from
// one whose committed frames SQLite would silently drop. Pure apart from
// scan_wal_file()'s reading; no SQLite needed. Thread-safe (no state).
//
// SQLite replays frames from the first one up to the first frame whose salts
// differ from the header's or whose cumulative checksum is wrong, and keeps
// them up to the last commit frame before that point; everything later is
// ignored without a word, and overwritten or deleted at the next checkpoint.
// Normal after a kill -9, so accepted:
//   - frames of an older generation (other salts) after the valid prefix: the
//     log is reused from its start after each full checkpoint;
//   - valid frames after the last commit frame (a transaction cut short), and
//     a frame torn between its header and its page data (SQLite writes them
//     with two write() calls), or a trailing partial frame;
//   - frames of the current generation after the break that are not commit
//     frames: the unfinished transaction of an earlier crash, partly
//     overwritten by the next run (reproduced in tests/common/test_sqlite_wal).
// Refused (WalScan::problem set):
//   - a nonempty log whose 32-byte header is short, has a wrong magic,
//     version or page size, or a bad header checksum (SQLite would ignore
//     the whole log);
//   - after the break, a commit frame of the current generation whose
//     checksum is consistent with the frame before it: a transaction
//     finished after the damaged frame, so committed data would be lost.
// Not detectable: damage to the very last commit frame of the log reads like
// a write torn by kill -9 (same salts, checksum off, nothing after it).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace tp::sqlite_wal {

inline constexpr std::uint32_t magic_little_endian = 0x377f0682;  // checksums over little-endian words
inline constexpr std::uint32_t magic_big_endian = 0x377f0683;     // ... over big-endian words
inline constexpr std::size_t header_size = 32;
inline constexpr std::size_t frame_header_size = 24;

struct WalScan {
  std::uint64_t file_size = 0;  // 0: no log, or an empty one
  std::uint32_t page_size = 0;
  std::uint64_t frames = 0;            // whole frames in the file
  std::uint64_t valid_frames = 0;      // the prefix SQLite reads
  std::uint64_t committed_frames = 0;  // ... up to its last commit frame: what SQLite replays
  std::uint64_t first_invalid = 0;     // 1-based frame number of the break; 0: none
  std::string problem;                 // empty: every committed frame will be replayed
  bool ok() const noexcept { return problem.empty(); }
};

// Byte offset of frame `n` (1-based) in a log of pages of `page_size`.
constexpr std::uint64_t frame_offset(std::uint64_t n, std::uint32_t page_size) noexcept {
  return header_size + (n - 1) * (frame_header_size + page_size);
}

// The verdict on a whole log held in memory.
WalScan scan_wal(std::span<const unsigned char> log);

// The verdict on the file at `wal_path`, read frame by frame (a missing file
// is an empty log). Throws std::runtime_error when it exists but cannot be read.
WalScan scan_wal_file(const std::string& wal_path);

}  // namespace tp::sqlite_wal
