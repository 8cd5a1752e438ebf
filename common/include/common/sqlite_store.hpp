// How both durable stores (executor.db, dll_gateway.db) open their SQLite
// file. Opening checks the file before the program relies on it: a store
// that would silently miss committed rows is refused, not repaired (see
// docs/ARCHITECTURE.md, "Start-up checks of the stores"). No state; the
// connection is used by one thread (common/sqlite.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "common/sqlite.hpp"

namespace tp::sqlite {

// A store's write-ahead log is checkpointed by its owner between bursts
// once it holds checkpoint_pages (Connection::checkpoint_due), and by the
// commit that takes it past forced_checkpoint_pages when the owner found no
// quiet moment: at most ~32 MiB at 4 KiB pages. The checkpoint runs on the
// owner's thread, and its fdatasync(2) of the log takes time in proportion
// to the frames written since the last one (~3 ms a MiB on the development
// VM): at 1,000 pages that was a 12-30 ms stall every half second at 200
// orders/s, what the tick->fill p99 was made of (docs/ARCHITECTURE.md,
// "Checkpoints").
inline constexpr int checkpoint_pages = 256;
inline constexpr int forced_checkpoint_pages = 8000;
// The log's file is cut back to this when it restarts after a checkpoint
// (journal_size_limit): above checkpoint_pages, so that between two quiet
// checkpoints the log rewrites the blocks it has instead of being cut and
// growing again each time (an ftruncate(2) of the log took 15 ms on the
// owner's thread, held up by an ext4 journal commit, and a file that grows
// makes each fdatasync(2) commit the journal too).
inline constexpr int kept_log_pages = 4 * checkpoint_pages;

// One frame of a store's write-ahead log: a page (PRAGMA page_size) and its
// 24-byte header.
std::int64_t wal_frame_bytes(const Connection& db);

// The owner's checkpoint between bursts, for a program whose loop knows when
// work waits: made when the store says it is due and nothing is `busy`; a
// failure loses nothing (the log only grows, to its bound) and is tried again
// a second later. `Store` has checkpoint_due() and checkpoint() (throwing
// StoreError).
class QuietCheckpoint {
 public:
  static constexpr std::int64_t retry_after_ns = 1'000'000'000;

  template <class Store, class Busy, class Failed>
  void run(Store& store, std::int64_t monotonic_now_ns, Busy&& busy, Failed&& failed) {
    if (!store.checkpoint_due() || monotonic_now_ns < retry_ns_ || busy()) return;
    try {
      store.checkpoint();
      ++made_;
    } catch (const StoreError& e) {
      failed(e);
      retry_ns_ = monotonic_now_ns + retry_after_ns;
    }
  }
  std::uint64_t made() const noexcept { return made_; }

 private:
  std::int64_t retry_ns_ = 0;  // not before, after a failure
  std::uint64_t made_ = 0;
};

// Refuses a damaged write-ahead log (<path>-wal, scanned before SQLite reads
// it: common/sqlite_wal.hpp), opens `path` (creating it), holds it for this
// process (locking_mode=EXCLUSIVE: no -shm file, no per-transaction locks),
// sets journal_mode=WAL, synchronous=NORMAL, the busy timeout and the
// checkpoints above (Connection::defer_checkpoints), and refuses
// a database that fails PRAGMA quick_check. Throws StoreError naming the
// file ("<name> (<absolute path>): <problem>").
Connection open_store(const std::string& path, int busy_timeout_ms);

}  // namespace tp::sqlite
