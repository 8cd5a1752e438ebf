#include "strategy/signal_journal.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <unordered_map>

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

}  // namespace

SignalJournal::SignalJournal(std::string path, std::uint64_t compact_bytes)
    : path_(std::move(path)), compact_bytes_(compact_bytes) {
  load();
  open_for_append();
}

SignalJournal::~SignalJournal() {
  if (fd_ >= 0) ::close(fd_);
}

void SignalJournal::load() {
  std::string content;
  {
    std::ifstream in(path_, std::ios::binary);
    if (in) content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  struct Entry {
    proto::TradingSignal signal;
    std::string payload;
    bool open = true;
  };
  std::vector<Entry> entries;
  std::unordered_map<std::string, std::size_t> index;  // signal_id -> entries slot
  proto::Decoder decoder;

  std::size_t pos = 0;
  while (pos < content.size()) {
    const auto nl = content.find('\n', pos);
    if (nl == std::string::npos) {
      // A crash in the middle of a write() leaves a partial last record. It
      // was never acted on (the send follows the write), so dropping it is
      // safe; cutting it off keeps the next append on a line of its own.
      replay_.torn_tail = true;
      spdlog::warn("signal journal {}: ignoring a torn last record ({} bytes)", path_, content.size() - pos);
      if (::truncate(path_.c_str(), static_cast<off_t>(pos)) != 0)
        throw std::runtime_error("signal journal " + path_ +
                                 ": cannot cut off a torn record: " + std::strerror(errno));
      break;
    }
    const std::string_view line(content.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.size() < 3 || line[1] != ' ') {
      ++replay_.bad_records;
      continue;
    }
    const std::string_view arg = line.substr(2);
    bool good = true;
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
        auto it = index.find(std::string(arg));
        if (it != index.end()) entries[it->second].open = false;
        break;
      }
      default:
        good = false;
    }
    if (good)
      ++replay_.records;
    else
      ++replay_.bad_records;
  }
  if (replay_.bad_records)
    spdlog::warn("signal journal {}: skipped {} unreadable records", path_, replay_.bad_records);

  for (auto& e : entries) {
    if (!e.open) continue;
    replay_.pending.push_back(std::move(e.signal));
    replay_.pending_payloads.push_back(std::move(e.payload));
  }
}

void SignalJournal::open_for_append() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("signal journal " + path_ + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error("signal journal " + path_ + ": cannot stat: " + std::strerror(errno));
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
}

bool SignalJournal::append_line(std::string_view line) {
  if (fd_ < 0) return false;
  if (write_all(fd_, line)) {
    size_ += line.size();
    return true;
  }
  // Remove a partial record so that the next one starts on its own line.
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) { /* nothing better to do; replay skips it */
  }
  return false;
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
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool written = write_all(fd, content);
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  try {
    open_for_append();
  } catch (const std::exception& e) {
    // The old descriptor points at the replaced file: appends there would be
    // lost, so stop appending (each append then reports failure).
    spdlog::error("{}", e.what());
    ::close(fd_);
    fd_ = -1;
    return false;
  }
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
  const bool journaled = journal_.append_signal(payload);
  pending_.insert_or_assign(signal.signal_id, PendingSignal{signal.signal_id, std::string(payload),
                                                            signal.expires_ts_ns, now_ns + resend_ns_});
  return journaled;
}

bool SignalOutbox::ack(std::string_view signal_id) {
  auto it = pending_.find(signal_id);
  if (it == pending_.end()) return false;
  journal_.append_acked(signal_id);
  pending_.erase(it);
  return true;
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
      journal_.append_given_up(it->first);
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
  std::vector<std::string_view> payloads;
  payloads.reserve(pending_.size());
  for (const auto& [id, p] : pending_) payloads.push_back(p.payload);
  return journal_.compact(boot_ms, payloads);
}

SignalIdGenerator::SignalIdGenerator(std::string_view strategy, std::uint32_t shard, std::int64_t boot_ms)
    : prefix_(std::string(strategy) + "." + std::to_string(shard) + "." + std::to_string(boot_ms) + "."),
      boot_ms_(boot_ms) {}

std::string SignalIdGenerator::next() { return prefix_ + std::to_string(++n_); }

}  // namespace tp::strategy
