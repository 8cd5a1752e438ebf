// At-least-once delivery of trading signals: an append-only journal file
// (SignalJournal), the in-memory set of unacked signals with their resend
// timers (SignalOutbox), and signal ids that never repeat across restarts.
// Owned by one strategy instance's loop; not thread-safe. A journal file is
// used by one process at a time: SignalJournal holds an exclusive flock on it
// for its whole life (the owning instance, or the instance that adopted the
// journal of a departed shard).
//
// Journal format (text, one record per line, each written by one write()):
//   B <boot_ms>          an instance started with this boot time (ms)
//   S <hex>              a signal: its msgpack TradingSignal payload in hex
//   A <signal_id>        the signal was acked (any SignalAck status)
//   X <signal_id>        the signal was given up (dead-lettered "unacked")
// Replay: every S without a later A/X for its id is pending. A committed line
// that cannot be read is kept in Replay::unreadable (offset, bytes, and the
// signal id when the bytes still hold one) for the caller to report; it is
// never silently skipped. A last line without its newline (torn by a crash
// mid-write) is set aside: appended to <path>.torn, cut off the journal so
// that the next record starts on a line of its own, and kept in Replay::torn.
//
// A failed append (disk full...) leaves no partial record behind: whatever a
// short write put in the file is cut off again (ftruncate back to the last
// good offset), and until that cut succeeds no further record is written, so
// the journal stays parseable line by line. A crash between the short write
// and the cut leaves a torn last line, which the next start sets aside.
//
// Durability: plain write() without fsync. A record is in the kernel's page
// cache once write() returns, so it survives kill -9 of this process, but not
// a power loss or kernel crash (an fsync per signal would cost ~ms on this VM).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.hpp"

namespace tp::strategy {

// Thrown when another process (or another SignalJournal in this one) holds
// the journal's lock.
class JournalLocked : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A journal line that replay could not use.
struct UnreadableRecord {
  std::uint64_t offset = 0;  // of its first byte in the file
  std::string raw;           // the line as found, without its newline
  std::string signal_id;     // recovered from the bytes when they still hold one, else empty
  bool settled = false;      // the id is accounted for by a readable S (still pending) or an A/X record
};

class SignalJournal {
 public:
  struct Replay {
    std::vector<proto::TradingSignal> pending;  // in journal order
    std::vector<std::string> pending_payloads;  // their bytes, same order
    std::int64_t last_boot_ms = 0;              // highest B record; 0 when none
    std::uint64_t records = 0;                  // complete, readable records
    std::uint64_t bad_records = 0;              // == unreadable.size()
    std::vector<UnreadableRecord> unreadable;   // committed lines that could not be read
    bool torn_tail = false;                     // a partial last record was set aside
    std::optional<UnreadableRecord> torn;       // that record
  };

  // own: the instance's own journal, created when missing.
  // adopt: a departed shard's journal, taken over by a remaining instance;
  // it must exist.
  enum class Mode { own, adopt };

  static constexpr std::uint64_t default_compact_bytes = 4 * 1024 * 1024;

  // Opens (own: or creates) `path`, locks it and replays it. Throws
  // JournalLocked when another holder has the lock (nothing is read or
  // changed then), std::runtime_error when the file cannot be opened or
  // repaired.
  explicit SignalJournal(std::string path, std::uint64_t compact_bytes = default_compact_bytes,
                         Mode mode = Mode::own);
  ~SignalJournal();
  SignalJournal(const SignalJournal&) = delete;
  SignalJournal& operator=(const SignalJournal&) = delete;

  const Replay& replay() const noexcept { return replay_; }
  const std::string& path() const noexcept { return path_; }
  // Where torn last records are set aside: <path>.torn.
  std::string torn_path() const { return path_ + ".torn"; }
  std::uint64_t size_bytes() const noexcept { return size_; }

  // Each appends one record; false when the write failed (disk full...):
  // nothing of the record is left in the file then, and last_errno() says why.
  bool append_boot(std::int64_t boot_ms);
  bool append_signal(std::string_view payload);
  bool append_acked(std::string_view signal_id);
  bool append_given_up(std::string_view signal_id);

  // The errno of the latest failed append or compaction (0 when unknown).
  int last_errno() const noexcept { return last_errno_; }
  // Appends and compactions that failed since this object was opened.
  std::uint64_t failed_writes() const noexcept { return failed_writes_; }

  // True when the file has grown past the compaction threshold.
  bool should_compact() const noexcept { return size_ > compact_bytes_; }
  // Rewrites the file as one B record and the given pending payloads (temp
  // file + rename, so a crash leaves either the old or the new file; the new
  // file is locked before it takes the name). If the survivors alone exceed
  // the threshold, it is raised so that compaction does not run on every
  // append. Returns false on failure (old file kept; last_errno() says why).
  bool compact(std::int64_t boot_ms, const std::vector<std::string_view>& pending_payloads);

 private:
  void open_locked(Mode mode);
  void load();
  bool append_line(std::string_view line);
  bool failed(int err);

  std::string path_;
  std::uint64_t compact_bytes_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool tail_dirty_ = false;  // a failed write left bytes past size_ that could not be cut off yet
  int last_errno_ = 0;
  std::uint64_t failed_writes_ = 0;
  Replay replay_;
};

// The signal id held by a journal record's bytes, even when the record as a
// whole cannot be read: `hex` is an S record's argument, possibly garbled or
// cut short after the id. Empty when no id can be recovered.
std::string recover_signal_id(std::string_view hex);

// A signal waiting for its ack.
struct PendingSignal {
  std::string signal_id;
  std::string payload;  // encoded TradingSignal, resent verbatim
  std::int64_t expires_ns = 0;
  std::int64_t next_send_ns = 0;
};

// The unacked signals and their resend timers; journals every change.
class SignalOutbox {
 public:
  static constexpr std::int64_t default_give_up_ns = 60'000'000'000;  // after expiry

  SignalOutbox(SignalJournal& journal, std::int64_t resend_ns,
               std::int64_t give_up_after_expiry_ns = default_give_up_ns);

  // Takes over the journal's replayed pending signals, all due at `now_ns`.
  void restore(std::int64_t now_ns);
  // Journals the signal, then tracks it with its next send at now + resend;
  // the caller sends it right after. False when the journal write failed:
  // the signal is then NOT tracked and must not be sent (a signal that is
  // not in the journal could be lost by a crash after the executor acted on
  // it, or be missing from the books); the journal's last_errno() says why.
  bool add(const proto::TradingSignal& signal, std::string_view payload, std::int64_t now_ns);
  // Ends tracking; true when the id was pending (a repeated ack gives false).
  // The A record is written when the id was pending; if that write fails
  // (journal().failed_writes() grows) tracking ends all the same and the
  // record is owed: retry_owed() writes it later (until then, a restart
  // would resend the signal once, answered DUPLICATE).
  bool ack(std::string_view signal_id);
  // Writes the A and X records whose writes failed, oldest first, stopping
  // at the first failure; returns how many are still owed. A compaction
  // settles them all (the rewritten journal holds only what is pending).
  std::size_t retry_owed();
  std::size_t owed() const noexcept { return owed_.size(); }
  // Calls send(pending) for every signal due at `now_ns` and schedules its next
  // send; `send` returns whether it went out. Returns how many went out.
  std::size_t resend_due(std::int64_t now_ns, const std::function<bool(const PendingSignal&)>& send);
  // Removes (and journals as given up) the signals still unacked
  // give_up_after_expiry after their expiry, and returns them. An X record
  // that cannot be written (journal().failed_writes() grows) only means the
  // signal is resent once after a restart (and answered DUPLICATE, or
  // refused as expired); it is owed like an A record (retry_owed).
  std::vector<PendingSignal> give_up(std::int64_t now_ns);
  // Compacts the journal when it has grown too big; true when it did.
  bool maybe_compact(std::int64_t boot_ms);
  // Compacts it now (to one B record and the pending signals); true when it did.
  bool compact(std::int64_t boot_ms);

  SignalJournal& journal() noexcept { return journal_; }

  std::size_t size() const noexcept { return pending_.size(); }
  bool contains(std::string_view id) const { return pending_.find(id) != pending_.end(); }
  // The pending signal `id`; nullptr when it is not pending.
  const PendingSignal* find(std::string_view id) const {
    auto it = pending_.find(id);
    return it == pending_.end() ? nullptr : &it->second;
  }

 private:
  SignalJournal& journal_;
  std::int64_t resend_ns_;
  std::int64_t give_up_ns_;
  std::map<std::string, PendingSignal, std::less<>> pending_;
  struct Owed {
    bool given_up = false;  // an X record, else an A record
    std::string signal_id;
  };
  std::vector<Owed> owed_;  // settled in memory, not yet in the journal
};

// Mints `<strategy>.<shard>.<boot_ms>.<n>` with n = 1, 2, ...
class SignalIdGenerator {
 public:
  SignalIdGenerator(std::string_view strategy, std::uint32_t shard, std::int64_t boot_ms);
  std::string next();
  std::int64_t boot_ms() const noexcept { return boot_ms_; }

 private:
  std::string prefix_;
  std::int64_t boot_ms_;
  std::uint64_t n_ = 0;
};

// The boot time for a new run: now, but always after the last boot in the
// journal, so ids cannot collide with a previous run's even when the wall
// clock stepped back or two starts fell in one millisecond.
inline std::int64_t choose_boot_ms(std::int64_t now_ms, std::int64_t last_boot_ms) noexcept {
  return now_ms > last_boot_ms ? now_ms : last_boot_ms + 1;
}

}  // namespace tp::strategy
