#include "dead_letter/key_memory.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "dead_letter/fd.hpp"

namespace tp::dead_letter {
namespace {

constexpr std::size_t read_chunk = 1 << 20;
constexpr int max_rotated_files = 1000;  // dead_letter.max_files' own bound
constexpr std::string_view key_file_magic = "TPDLKEY1";

std::uint64_t fnv1a(std::uint64_t h, std::string_view bytes) noexcept {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// The string starting at line[i] (a '"'): its escaped text, and i moved past
// its closing quote. False when it does not close.
bool json_string(std::string_view line, std::size_t& i, std::string_view& text) {
  std::size_t j = i + 1;
  while (j < line.size() && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
  if (j >= line.size()) return false;
  text = line.substr(i + 1, j - i - 1);
  i = j + 1;
  return true;
}

bool pread_all(int fd, char* out, std::size_t n, std::uint64_t at) {
  while (n > 0) {
    auto got = ::pread(fd, out, n, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    n -= static_cast<std::size_t>(got);
    at += static_cast<std::uint64_t>(got);
  }
  return true;
}

// Calls on_line(line) for each whole line of the open file, newest first,
// until it returns false or the budget is spent. The bytes after the last
// newline are a torn record (a kill -9 mid-write), not a line.
template <typename OnLine>
bool lines_backwards(int fd, std::uint64_t size, std::uint64_t max_bytes, KeyRebuild& r, OnLine on_line) {
  std::string data;
  std::string pending;  // the start of the region already read, up to its first newline
  bool in_torn_tail = true;
  for (auto end = size; end > 0;) {
    if (r.bytes_read >= max_bytes) return false;
    const auto n = std::min<std::uint64_t>({read_chunk, end, max_bytes - r.bytes_read});
    const auto begin = end - n;
    data.resize(n);
    if (!pread_all(fd, data.data(), n, begin)) return true;  // a file cut under us: take the next one
    r.bytes_read += n;
    end = begin;
    data += pending;
    std::string_view v(data);
    auto seg_end = v.size();
    while (seg_end > 0) {
      const auto nl = v.rfind('\n', seg_end - 1);
      if (nl == std::string_view::npos) break;
      auto line = v.substr(nl + 1, seg_end - nl - 1);
      if (in_torn_tail)
        in_torn_tail = false;
      else if (!line.empty() && !on_line(line))
        return false;
      seg_end = nl;
    }
    if (in_torn_tail) {
      pending.clear();
    } else if (begin == 0) {
      // The file's first line: whole, nothing before it.
      if (seg_end > 0 && !on_line(v.substr(0, seg_end))) return false;
    } else {
      pending.assign(v.substr(0, seg_end));
    }
  }
  return true;
}

}  // namespace

KeyMemory::KeyMemory(std::size_t capacity) : ring_(std::max<std::size_t>(capacity, 1)) {
  set_.reserve(ring_.size());
}

std::uint64_t KeyMemory::hash_of(std::string_view source, std::string_view key) noexcept {
  // The source's length first: ("ab", "c") and ("a", "bc") differ.
  const auto len = source.size();
  std::uint64_t h =
      fnv1a(0xcbf29ce484222325ull, std::string_view(reinterpret_cast<const char*>(&len), sizeof len));
  h = fnv1a(fnv1a(h, source), key);
  // FNV's low bits are weak for a hash set's buckets: a final mix
  // (splitmix64's) spreads every input bit.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

bool KeyMemory::seen_or_remember(std::string_view source, std::string_view key) {
  return seen_or_remember(hash_of(source, key));
}

std::vector<std::uint64_t> KeyMemory::oldest_first() const {
  // Until the ring is full its first size() slots hold every hash in order;
  // after, the oldest is at next_.
  if (set_.size() < ring_.size()) return {ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(next_)};
  std::vector<std::uint64_t> out(ring_.begin() + static_cast<std::ptrdiff_t>(next_), ring_.end());
  out.insert(out.end(), ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(next_));
  return out;
}

bool save_key_file(const KeyMemory& memory, const std::string& path) {
  static_assert(std::endian::native == std::endian::little, "the key file is little-endian");
  const auto hashes = memory.oldest_first();
  std::string bytes(key_file_magic);
  bytes.append(reinterpret_cast<const char*>(hashes.data()), hashes.size() * sizeof(std::uint64_t));
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return false;
  for (std::size_t done = 0; done < bytes.size();) {
    const auto n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::unlink(tmp.c_str());
      errno = err;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return ::rename(tmp.c_str(), path.c_str()) == 0;
}

std::size_t load_key_file(KeyMemory& memory, const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return 0;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_size < static_cast<off_t>(key_file_magic.size())) return 0;
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  if (!pread_all(fd.get(), bytes.data(), bytes.size(), 0)) return 0;
  if (std::string_view(bytes).substr(0, key_file_magic.size()) != key_file_magic) return 0;
  const std::size_t count = (bytes.size() - key_file_magic.size()) / sizeof(std::uint64_t);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint64_t h = 0;
    std::memcpy(&h, bytes.data() + key_file_magic.size() + i * sizeof h, sizeof h);
    memory.seen_or_remember(h);
  }
  return count;
}

bool KeyMemory::seen_or_remember(std::uint64_t hash) {
  if (set_.contains(hash)) return true;
  if (set_.size() == ring_.size()) set_.erase(ring_[next_]);
  ring_[next_] = hash;
  next_ = (next_ + 1) % ring_.size();
  set_.insert(hash);
  return false;
}

// The sink's lines are flat objects of strings, integers and booleans, in the
// order to_json_line writes them; "key" comes before "original_size", so the
// long original_b64 is never scanned.
bool letter_key_of(std::string_view line, std::string_view& source, std::string_view& key) {
  source = {};
  key = {};
  bool has_source = false;
  if (line.empty() || line[0] != '{') return false;
  for (std::size_t i = 1; i < line.size();) {
    std::string_view name;
    std::string_view value;
    if (line[i] != '"' || !json_string(line, i, name) || i >= line.size() || line[i] != ':') return false;
    if (name == "original_size") return has_source;
    ++i;
    if (i < line.size() && line[i] == '"') {
      if (!json_string(line, i, value)) return false;
      if (name == "source") {
        source = value;
        has_source = true;
      } else if (name == "key") {
        key = value;
        return has_source;
      }
    } else {
      while (i < line.size() && line[i] != ',' && line[i] != '}') {
        if (line[i] == '{' || line[i] == '[' || line[i] == '"') return false;
        ++i;
      }
    }
    if (i >= line.size()) return false;
    if (line[i] == '}') return has_source && i + 1 == line.size();
    ++i;  // the ','
  }
  return false;
}

KeyRebuild rebuild_key_memory(KeyMemory& memory, const std::string& path, std::uint64_t max_bytes) {
  KeyRebuild r;
  const auto want = memory.capacity();
  std::vector<std::uint64_t> newest_first;
  auto on_line = [&](std::string_view line) {
    std::string_view source;
    std::string_view key;
    if (!letter_key_of(line, source, key))
      ++r.lines_skipped;
    else if (!key.empty())
      newest_first.push_back(KeyMemory::hash_of(source, key));
    return newest_first.size() < want;
  };
  // LetterFile keeps its rotated files numbered from 1 without a gap; the
  // byte budget bounds the walk whatever is on disk.
  for (int k = 0; k <= max_rotated_files && newest_first.size() < want && r.bytes_read < max_bytes; ++k) {
    const auto name = k == 0 ? path : path + "." + std::to_string(k);
    Fd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT && k > 0) break;
      continue;
    }
    ++r.files_read;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) continue;
    if (!lines_backwards(fd.get(), static_cast<std::uint64_t>(st.st_size), max_bytes, r, on_line)) break;
  }
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it)
    if (!memory.seen_or_remember(*it)) ++r.keys;
  return r;
}

}  // namespace tp::dead_letter
