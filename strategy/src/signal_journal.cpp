#include "strategy/signal_journal.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "proto/codec.hpp"

namespace tp::strategy {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(hex_digits[c >> 4]);
    out.push_back(hex_digits[c & 0xF]);
  }
  return out;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Whether `id` could be a signal id: 1..max_id_length printable ASCII bytes
// without spaces (what the journal's A/X lines and a recovered id must be).
bool plausible_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > proto::max_id_length) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

}  // namespace

std::string recover_signal_id(std::string_view hex) {
  // The id is the third element of the payload's array, within its first
  // ~140 bytes: a garble or a cut further on leaves it readable. Decode the
  // longest prefix of whole hex pairs and walk the msgpack by hand, since the
  // codec (rightly) refuses anything incomplete.
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) break;
    bytes.push_back(static_cast<char>((hi << 4) | lo));
  }
  std::size_t p = 0;
  auto at = [&](std::size_t i) -> int {
    return i < bytes.size() ? static_cast<unsigned char>(bytes[i]) : -1;
  };
  const int array = at(p);
  if (array >= 0x91 && array <= 0x9f)
    p += 1;
  else if (array == 0xdc)
    p += 3;
  else if (array == 0xdd)
    p += 5;
  else
    return {};
  // type: 3 (TradingSignal), as a fixint or uint8
  if (at(p) == 3)
    p += 1;
  else if (at(p) == 0xcc && at(p + 1) == 3)
    p += 2;
  else
    return {};
  // version: any unsigned integer
  const int v = at(p);
  if (v >= 0 && v < 0x80)
    p += 1;
  else if (v >= 0xcc && v <= 0xcf)
    p += 1 + (std::size_t{1} << (v - 0xcc));
  else
    return {};
  // signal_id: str
  const int t = at(p);
  std::size_t len = 0;
  if (t >= 0xa0 && t <= 0xbf) {
    len = static_cast<std::size_t>(t & 0x1f);
    p += 1;
  } else if (t == 0xd9 && at(p + 1) >= 0) {
    len = static_cast<std::size_t>(at(p + 1));
    p += 2;
  } else if (t == 0xda && at(p + 2) >= 0) {
    len = static_cast<std::size_t>(at(p + 1) << 8 | at(p + 2));
    p += 3;
  } else {
    return {};
  }
  if (p + len > bytes.size()) return {};
  std::string id = bytes.substr(p, len);
  return plausible_id(id) ? id : std::string{};
}

SignalJournal::SignalJournal(std::string path, std::uint64_t compact_bytes, Mode mode)
    : path_(std::move(path)), compact_bytes_(compact_bytes) {
  open_locked(mode);
  try {
    load();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SignalJournal::~SignalJournal() {
  if (fd_ >= 0) ::close(fd_);  // also releases the lock
}

void SignalJournal::open_locked(Mode mode) {
  const int flags = O_RDWR | O_APPEND | O_CLOEXEC | (mode == Mode::own ? O_CREAT : 0);
  // The lock belongs to an inode, the name may move on: a holder's compaction
  // renames a new file over the path. Whoever locked the old inode after that
  // would replay stale records beside the new holder, so the locked file must
  // still be the one the path names; otherwise open the path again.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int fd = ::open(path_.c_str(), flags, 0644);
    if (fd < 0)
      throw std::runtime_error("signal journal " + path_ + ": cannot open: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        throw JournalLocked("signal journal " + path_ +
                            ": in use by another process (its flock is held: a running instance of this "
                            "shard, or the instance that adopted it)");
      if (err == EINTR) continue;
      throw std::runtime_error("signal journal " + path_ + ": cannot lock: " + std::strerror(err));
    }
    struct stat by_fd {};
    struct stat by_path {};
    if (::fstat(fd, &by_fd) == 0 && ::stat(path_.c_str(), &by_path) == 0 && by_fd.st_dev == by_path.st_dev &&
        by_fd.st_ino == by_path.st_ino) {
      fd_ = fd;
      size_ = static_cast<std::uint64_t>(by_fd.st_size);
      return;
    }
    ::close(fd);
  }
  throw std::runtime_error("signal journal " + path_ + ": replaced over and over while being opened");
}

void SignalJournal::load() {
  std::string content(size_, '\0');
  std::size_t got = 0;
  while (got < content.size()) {
    const ssize_t n = ::pread(fd_, content.data() + got, content.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("signal journal " + path_ + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  content.resize(got);

  struct Entry {
    proto::TradingSignal signal;
    std::string payload;
    bool open = true;
  };
  std::vector<Entry> entries;
  std::unordered_map<std::string, std::size_t> index;  // signal_id -> entries slot
  std::unordered_set<std::string> closed;              // ids of every A/X record
  proto::Decoder decoder;

  std::size_t pos = 0;
  while (pos < content.size()) {
    const auto nl = content.find('\n', pos);
    if (nl == std::string::npos) {
      // A crash in the middle of a write() leaves a partial last record. It
      // was never acted on (the send follows the write), so it is not a lost
      // committed record; it is set aside, and cut off so that the next
      // append starts on a line of its own.
      const std::string_view line(content.data() + pos, content.size() - pos);
      UnreadableRecord torn{pos, std::string(line), {}, false};
      if (line.size() > 2 && line[0] == 'S' && line[1] == ' ')
        torn.signal_id = recover_signal_id(line.substr(2));
      const std::string aside = "offset=" + std::to_string(pos) + " bytes=" + std::to_string(line.size()) +
                                " raw=" + std::string(line) + "\n";
      const int side = ::open(torn_path().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      const bool kept = side >= 0 && write_all(side, aside);
      if (side >= 0) ::close(side);
      spdlog::warn(
          "signal journal {}: torn last record at offset {} ({} bytes, a write cut short by a crash, never "
          "sent){}{}; the journal continues from offset {}",
          path_, pos, line.size(), torn.signal_id.empty() ? "" : ", signal " + torn.signal_id,
          kept ? ", set aside in " + torn_path() : ", COULD NOT be set aside in " + torn_path(), pos);
      if (::ftruncate(fd_, static_cast<off_t>(pos)) != 0)
        throw std::runtime_error("signal journal " + path_ +
                                 ": cannot cut off a torn record: " + std::strerror(errno));
      size_ = pos;
      replay_.torn_tail = true;
      replay_.torn = std::move(torn);
      break;
    }
    const std::string_view line(content.data() + pos, nl - pos);
    const std::uint64_t offset = pos;
    pos = nl + 1;
    bool good = line.size() >= 3 && line[1] == ' ';
    const std::string_view arg = good ? line.substr(2) : std::string_view{};
    if (good) {
      switch (line[0]) {
        case 'B': {
          std::int64_t boot = 0;
          auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), boot);
          good = ec == std::errc{} && end == arg.data() + arg.size();
          if (good) replay_.last_boot_ms = std::max(replay_.last_boot_ms, boot);
          break;
        }
        case 'S': {
          auto payload = from_hex(arg);
          if (!payload) {
            good = false;
            break;
          }
          auto signal = decoder.decode_signal(proto::as_bytes(*payload));
          if (!signal) {
            good = false;
            break;
          }
          if (index.find(signal->signal_id) == index.end()) {
            index.emplace(signal->signal_id, entries.size());
            entries.push_back(Entry{std::move(signal).value(), std::move(*payload)});
          }
          break;
        }
        case 'A':
        case 'X': {
          good = plausible_id(arg);
          if (!good) break;
          closed.emplace(arg);
          auto it = index.find(std::string(arg));
          if (it != index.end()) entries[it->second].open = false;
          break;
        }
        default:
          good = false;
      }
    }
    if (good) {
      ++replay_.records;
      continue;
    }
    // Never skipped silently: the caller reports it (dead letter
    // journal_corrupt) with the id when the bytes still hold one.
    UnreadableRecord bad{offset, std::string(line), {}, false};
    if (line.size() > 2) bad.signal_id = recover_signal_id(line.substr(2));
    replay_.unreadable.push_back(std::move(bad));
  }
  replay_.bad_records = replay_.unreadable.size();
  for (auto& bad : replay_.unreadable) {
    if (!bad.signal_id.empty())
      bad.settled = index.count(bad.signal_id) > 0 || closed.count(bad.signal_id) > 0;
  }
  if (replay_.torn && !replay_.torn->signal_id.empty())
    replay_.torn->settled =
        index.count(replay_.torn->signal_id) > 0 || closed.count(replay_.torn->signal_id) > 0;
  if (replay_.bad_records) {
    std::size_t with_id = 0;
    for (const auto& bad : replay_.unreadable) with_id += bad.signal_id.empty() ? 0 : 1;
    spdlog::warn(
        "signal journal {}: {} unreadable record(s) ({} with a recoverable signal id), first at offset {}",
        path_, replay_.bad_records, with_id, replay_.unreadable.front().offset);
  }

  for (auto& e : entries) {
    if (!e.open) continue;
    replay_.pending.push_back(std::move(e.signal));
    replay_.pending_payloads.push_back(std::move(e.payload));
  }
}

bool SignalJournal::failed(int err) {
  last_errno_ = err;
  ++failed_writes_;
  return false;
}

bool SignalJournal::append_line(std::string_view line) {
  if (fd_ < 0) return failed(EBADF);
  // A record glued to the remains of a failed one would make both one
  // unreadable line: nothing is appended until those remains are gone.
  if (tail_dirty_) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return failed(errno);
    tail_dirty_ = false;
  }
  if (write_all(fd_, line)) {
    size_ += line.size();
    return true;
  }
  const int err = errno;
  // A short write (the disk filled up mid-record) left part of the record:
  // cut back to the last good offset so that the file stays a sequence of
  // whole lines. If even that fails, the next append tries again first.
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) tail_dirty_ = true;
  return failed(err);
}

bool SignalJournal::append_boot(std::int64_t boot_ms) {
  return append_line("B " + std::to_string(boot_ms) + "\n");
}

bool SignalJournal::append_signal(std::string_view payload) {
  return append_line("S " + to_hex(payload) + "\n");
}

bool SignalJournal::append_acked(std::string_view signal_id) {
  return append_line("A " + std::string(signal_id) + "\n");
}

bool SignalJournal::append_given_up(std::string_view signal_id) {
  return append_line("X " + std::string(signal_id) + "\n");
}

bool SignalJournal::compact(std::int64_t boot_ms, const std::vector<std::string_view>& pending_payloads) {
  std::string content = "B " + std::to_string(boot_ms) + "\n";
  for (auto p : pending_payloads) content += "S " + to_hex(p) + "\n";

  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed(errno);
  // Locked before it takes the journal's name: no other process can lock the
  // new file between the rename and our next append. Nobody else opens the
  // temp file, since only the lock holder compacts.
  const bool ready = ::flock(fd, LOCK_EX | LOCK_NB) == 0 && write_all(fd, content);
  if (!ready || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return failed(err);
  }
  // The old descriptor's inode is unlinked now; closing it drops its lock,
  // and anyone who locks that inode sees it is no longer the journal.
  ::close(fd_);
  fd_ = fd;
  size_ = content.size();
  tail_dirty_ = false;  // the remains of a failed append went with the old file
  if (size_ * 2 > compact_bytes_) compact_bytes_ = size_ * 2;
  return true;
}

SignalOutbox::SignalOutbox(SignalJournal& journal, std::int64_t resend_ns,
                           std::int64_t give_up_after_expiry_ns)
    : journal_(journal), resend_ns_(resend_ns), give_up_ns_(give_up_after_expiry_ns) {}

void SignalOutbox::restore(std::int64_t now_ns) {
  const auto& r = journal_.replay();
  for (std::size_t i = 0; i < r.pending.size(); ++i) {
    const auto& s = r.pending[i];
    pending_.insert_or_assign(s.signal_id,
                              PendingSignal{s.signal_id, r.pending_payloads[i], s.expires_ts_ns, now_ns});
  }
}

bool SignalOutbox::add(const proto::TradingSignal& signal, std::string_view payload, std::int64_t now_ns) {
  if (!journal_.append_signal(payload)) return false;
  pending_.insert_or_assign(signal.signal_id, PendingSignal{signal.signal_id, std::string(payload),
                                                            signal.expires_ts_ns, now_ns + resend_ns_});
  return true;
}

bool SignalOutbox::ack(std::string_view signal_id) {
  auto it = pending_.find(signal_id);
  if (it == pending_.end()) return false;
  if (!journal_.append_acked(signal_id)) owed_.push_back({false, std::string(signal_id)});
  pending_.erase(it);
  return true;
}

std::size_t SignalOutbox::retry_owed() {
  std::size_t written = 0;
  for (const auto& o : owed_) {
    const bool ok = o.given_up ? journal_.append_given_up(o.signal_id) : journal_.append_acked(o.signal_id);
    if (!ok) break;
    ++written;
  }
  owed_.erase(owed_.begin(), owed_.begin() + static_cast<std::ptrdiff_t>(written));
  return owed_.size();
}

std::size_t SignalOutbox::resend_due(std::int64_t now_ns,
                                     const std::function<bool(const PendingSignal&)>& send) {
  std::size_t sent = 0;
  for (auto& [id, p] : pending_) {
    if (p.next_send_ns > now_ns) continue;
    if (send(p)) ++sent;
    p.next_send_ns = now_ns + resend_ns_;
  }
  return sent;
}

std::vector<PendingSignal> SignalOutbox::give_up(std::int64_t now_ns) {
  std::vector<PendingSignal> out;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now_ns - it->second.expires_ns >= give_up_ns_) {
      if (!journal_.append_given_up(it->first)) owed_.push_back({true, it->first});
      out.push_back(std::move(it->second));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

bool SignalOutbox::maybe_compact(std::int64_t boot_ms) {
  if (!journal_.should_compact()) return false;
  return compact(boot_ms);
}

bool SignalOutbox::compact(std::int64_t boot_ms) {
  std::vector<std::string_view> payloads;
  payloads.reserve(pending_.size());
  for (const auto& [id, p] : pending_) payloads.push_back(p.payload);
  if (!journal_.compact(boot_ms, payloads)) return false;
  owed_.clear();
  return true;
}

SignalIdGenerator::SignalIdGenerator(std::string_view strategy, std::uint32_t shard, std::int64_t boot_ms)
    : prefix_(std::string(strategy) + "." + std::to_string(shard) + "." + std::to_string(boot_ms) + "."),
      boot_ms_(boot_ms) {}

std::string SignalIdGenerator::next() { return prefix_ + std::to_string(++n_); }

}  // namespace tp::strategy
