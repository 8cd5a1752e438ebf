// The WAL layout and checksum are SQLite's "Database File Format" document,
// section "WAL File Format"; the acceptance rules are explained in the header.
#include "common/sqlite_wal.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace tp::sqlite_wal {
namespace {

constexpr std::uint32_t wal_version = 3007000;

std::uint32_t get_be32(const unsigned char* p) noexcept {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
         std::uint32_t{p[3]};
}
std::uint32_t get_le32(const unsigned char* p) noexcept {
  return std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 |
         std::uint32_t{p[0]};
}

struct Checksum {
  std::uint32_t s0 = 0, s1 = 0;
  bool operator==(const Checksum&) const = default;
};

// SQLite's cumulative checksum over `n` bytes (a multiple of 8), continuing
// from `c`; the words are read in the byte order the log's magic names.
Checksum extend(Checksum c, const unsigned char* p, std::size_t n, bool big_endian) noexcept {
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint32_t x0 = big_endian ? get_be32(p + i) : get_le32(p + i);
    const std::uint32_t x1 = big_endian ? get_be32(p + i + 4) : get_le32(p + i + 4);
    c.s0 += x0 + c.s1;  // unsigned: wraps modulo 2^32 as SQLite's does
    c.s1 += x1 + c.s0;
  }
  return c;
}

// The checksum SQLite would have stored in a frame that follows a frame
// whose (stored or computed) checksum is `seed`.
Checksum frame_checksum(Checksum seed, const unsigned char* frame, std::uint32_t page_size,
                        bool big_endian) noexcept {
  seed = extend(seed, frame, 8, big_endian);  // page number, db size after commit
  return extend(seed, frame + frame_header_size, page_size, big_endian);
}

std::string at(std::uint64_t n, std::uint32_t page_size) {
  return "frame " + std::to_string(n) + " (offset " + std::to_string(frame_offset(n, page_size)) + ")";
}

// Scans a log of `size` bytes delivered in order by read(out, n), which
// returns how many bytes it wrote (fewer only at the end).
template <class Read>
WalScan scan(std::uint64_t size, Read&& read) {
  WalScan r;
  r.file_size = size;
  if (size == 0) return r;
  unsigned char hdr[header_size];
  if (size < header_size || read(hdr, header_size) != header_size) {
    r.problem = "log of " + std::to_string(size) + " bytes is shorter than its 32-byte header";
    return r;
  }
  const std::uint32_t magic = get_be32(hdr);
  const std::uint32_t version = get_be32(hdr + 4);
  const std::uint32_t page_size = get_be32(hdr + 8);
  const std::uint32_t salt1 = get_be32(hdr + 16), salt2 = get_be32(hdr + 20);
  const Checksum stored_header{get_be32(hdr + 24), get_be32(hdr + 28)};
  if (magic != magic_little_endian && magic != magic_big_endian) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    r.problem = std::string("header: not a write-ahead log (magic ") + hex + ")";
    return r;
  }
  const bool big_endian = magic == magic_big_endian;
  if (version != wal_version) {
    r.problem = "header: unknown log version " + std::to_string(version);
    return r;
  }
  if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0) {
    r.problem = "header: invalid page size " + std::to_string(page_size);
    return r;
  }
  r.page_size = page_size;
  if (extend({}, hdr, 24, big_endian) != stored_header) {
    r.problem = "header checksum mismatch: SQLite would ignore the whole log";
    return r;
  }

  const std::size_t frame_size = frame_header_size + page_size;
  r.frames = (size - header_size) / frame_size;
  std::vector<unsigned char> frame(frame_size);
  Checksum chain = stored_header;     // computed along the valid prefix
  Checksum previous = stored_header;  // as stored in the frame before
  for (std::uint64_t n = 1; n <= r.frames; ++n) {
    if (read(frame.data(), frame_size) != frame_size) {
      r.frames = n - 1;  // the file shrank while being read: judge what was there
      break;
    }
    const unsigned char* h = frame.data();
    const std::uint32_t page = get_be32(h);
    const bool commit = get_be32(h + 4) != 0;
    const bool current = get_be32(h + 8) == salt1 && get_be32(h + 12) == salt2;
    const Checksum stored{get_be32(h + 16), get_be32(h + 20)};

    if (r.first_invalid == 0) {
      const Checksum computed = frame_checksum(chain, h, page_size, big_endian);
      if (current && page != 0 && computed == stored) {
        chain = computed;
        r.valid_frames = n;
        if (commit) r.committed_frames = n;
        previous = stored;
        continue;
      }
      r.first_invalid = n;
    } else if (current && commit && page != 0 &&
               frame_checksum(previous, h, page_size, big_endian) == stored) {
      // A transaction of this generation was committed after the break: the
      // break is damage, not the end of the log.
      r.problem =
          "invalid " + at(r.first_invalid, page_size) + " is followed by " + at(n, page_size) +
          ", which commits a transaction: SQLite would silently drop every committed frame from frame " +
          std::to_string(r.first_invalid) + " on (it replays only the first " +
          std::to_string(r.committed_frames) + ")";
      return r;
    }
    previous = stored;
  }
  return r;
}

}  // namespace

WalScan scan_wal(std::span<const unsigned char> log) {
  std::size_t pos = 0;
  return scan(log.size(), [&](unsigned char* out, std::size_t n) {
    n = std::min(n, log.size() - pos);
    std::memcpy(out, log.data() + pos, n);
    pos += n;
    return n;
  });
}

WalScan scan_wal_file(const std::string& wal_path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(wal_path, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return {};
    throw std::runtime_error("cannot read " + wal_path + ": " + ec.message());
  }
  std::ifstream in(wal_path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + wal_path);
  return scan(size, [&](unsigned char* out, std::size_t n) {
    in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
    return static_cast<std::size_t>(in.gcount());
  });
}

}  // namespace tp::sqlite_wal
