// The sink's memory of the letter keys it has written: a letter its sender may
// send again (the executor's outcome letters, sent again after a restart)
// carries a key, and the sink writes one line per (source, key) it remembers.
// KeyMemory keeps the last `capacity` pairs as 64-bit hashes in a ring and a
// hash set (~3 MB at 65,536): bounded memory, the oldest forgotten first.
// rebuild_key_memory fills it at start from the sink's own files, newest
// lines first, within a byte budget. Pure logic plus file reads; no sockets.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace tp::dead_letter {

class KeyMemory {
 public:
  static constexpr std::size_t default_capacity = 65'536;

  explicit KeyMemory(std::size_t capacity = default_capacity);

  // True when (source, key) is remembered: the letter is a duplicate.
  // Otherwise remembers it (forgetting the oldest pair when full), false.
  // The sink passes the pair as its lines spell it (JSON-escaped, see
  // rebuild_key_memory), so that what a restart reads back is the same bytes.
  bool seen_or_remember(std::string_view source, std::string_view key);
  // The same for a pair already hashed by hash_of.
  bool seen_or_remember(std::uint64_t hash);

  // Two distinct pairs share a hash with a chance of about 2^-64 each: among
  // 65,536 remembered keys a fresh letter is taken for a duplicate about once
  // in 2.8e14 letters.
  static std::uint64_t hash_of(std::string_view source, std::string_view key) noexcept;

  std::size_t size() const noexcept { return set_.size(); }
  std::size_t capacity() const noexcept { return ring_.size(); }
  // The remembered hashes, oldest first.
  std::vector<std::uint64_t> oldest_first() const;

 private:
  std::vector<std::uint64_t> ring_;  // insertion order; next_ is the oldest once full
  std::size_t next_ = 0;
  std::unordered_set<std::uint64_t> set_;
};

struct KeyRebuild {
  std::size_t keys = 0;             // pairs remembered from the files
  std::uint64_t bytes_read = 0;     // <= the budget
  int files_read = 0;               // files opened, the live one included
  std::uint64_t lines_skipped = 0;  // lines that are not one of the sink's JSON objects
};

// Fills `memory` from the sink's files: the live file `path`, then `path`.1,
// .2, ... (as LetterFile names them, up to the first that is missing), each
// read from its end, newest line first, until the memory's capacity in keys
// or `max_bytes` read. Takes "source" and "key" (as escaped JSON text) from
// each line that has a key; a torn last line, a line cut by the budget and a
// line that does not parse are skipped. The pairs are remembered oldest
// first, so that the memory forgets them in the order they were written.
// Unreadable files are skipped (a missing live file is an empty one).
KeyRebuild rebuild_key_memory(KeyMemory& memory, const std::string& path,
                              std::uint64_t max_bytes = 32ull << 20);

// The keys outlive the files they were read from: before each rotation
// (which removes the oldest file) the sink saves its memory to a key file
// (dead_letters.keys beside dead_letters.jsonl),
// and at start loads it before rebuild_key_memory reads the files, so that
// a sink killed after its files rotated still knows the keys a sender may
// send again. The file: the 8 bytes "TPDLKEY1", then the hashes (hash_of),
// oldest first, 64-bit little-endian; at most capacity() * 8 + 8 bytes
// (~512 KiB). Written to <path>.tmp and renamed over it: a kill leaves the
// old file or the new one. False when it could not be written (errno set).
bool save_key_file(const KeyMemory& memory, const std::string& path);
// Remembers the hashes of the key file at `path`, oldest first; returns how
// many it read (0 when there is no file, or it is not one: another magic).
// A torn last hash is ignored.
std::size_t load_key_file(KeyMemory& memory, const std::string& path);

// The escaped text of the "source" and "key" string fields of one of the
// sink's JSON lines (what to_json_line writes). False when the line does not
// parse; `key` empty when the line has none.
bool letter_key_of(std::string_view line, std::string_view& source, std::string_view& key);

}  // namespace tp::dead_letter
