// The order of the checks matters: SQLite discards what lies beyond the
// first bad frame of a write-ahead log when it recovers it, and for good at
// the next checkpoint, so the log is judged before SQLite is given the file.
#include "common/sqlite_store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/sqlite_wal.hpp"

namespace tp::sqlite {
namespace {

// What an operator is told along with a refusal.
constexpr std::string_view refusal_hint =
    "; the program will not start on it: keep a copy of the database and its -wal file, and see "
    "docs/ARCHITECTURE.md, 'Start-up checks of the stores'";

struct StatementFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

// The rows PRAGMA quick_check returns: just "ok" for a sound file.
std::vector<std::string> quick_check(sqlite3* db) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check(8)", -1, &raw, nullptr) != SQLITE_OK)
    fail(db, "quick_check");
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt(raw);
  std::vector<std::string> rows;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(raw, 0);
    rows.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
  }
  if (rc != SQLITE_DONE) fail(db, "quick_check");
  return rows;
}

}  // namespace

std::int64_t wal_frame_bytes(const Connection& db) {
  Statement page_size(db, "PRAGMA page_size");
  if (!page_size.step()) throw StoreError("PRAGMA page_size gave no row", 0, 0);
  return page_size.column_int(0) + 24;
}

Connection open_store(const std::string& path, int busy_timeout_ms) {
  const std::string wal_path = path + "-wal";
  sqlite_wal::WalScan wal;
  try {
    wal = sqlite_wal::scan_wal_file(wal_path);
  } catch (const std::exception& e) {
    throw StoreError(file_label(path) + ": " + e.what());
  }
  if (!wal.ok()) throw StoreError(file_label(wal_path) + ": " + wal.problem + std::string(refusal_hint));

  // Once, before SQLite initialises (a later call is refused, harmlessly):
  // no global allocation statistics, which take a mutex around every one of
  // SQLite's allocations. Nothing here reads them.
  [[maybe_unused]] static const int no_memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Connection db(raw);  // sqlite3_open_v2 hands out a handle even when it fails
  if (rc != SQLITE_OK)
    throw StoreError(file_label(path) + ": open: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)),
                     raw ? sqlite3_extended_errcode(raw) : rc, os_errno(raw));
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  std::vector<std::string> rows;
  try {
    // One owner: the lock is taken once instead of per transaction, and the
    // WAL index lives in heap memory instead of a -shm file; another process
    // can read the file only after this one exits. Set before the first WAL
    // access, so that no shared-memory index is ever created.
    db.exec("PRAGMA locking_mode=EXCLUSIVE");
    db.exec("PRAGMA journal_mode=WAL");  // the first read of the file
    db.exec("PRAGMA synchronous=NORMAL");
    // Statement journals (savepoints) in memory: on disk they spilled to a
    // temp file once a transaction's passed 64 KiB (when the executor had a
    // savepoint per signal of a batch: 7 pwrite(2)s per order).
    // Nothing durable lives in them: they only undo within a transaction.
    db.exec("PRAGMA temp_store=MEMORY");
    db.defer_checkpoints(checkpoint_pages, forced_checkpoint_pages);
    // A log that grew toward the forced bound (a burst that never paused)
    // is cut back to this when it restarts after a checkpoint, instead of
    // keeping its largest size on disk until the program exits.
    db.exec("PRAGMA journal_size_limit=" + std::to_string(kept_log_pages * wal_frame_bytes(db)));
    rows = quick_check(raw);
  } catch (const StoreError& e) {
    // A file too damaged for quick_check to run is refused the same way; a
    // busy or unreadable one is not a matter of damage.
    const int code = sqlite3_errcode(raw);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
      throw StoreError(e.what() + std::string(refusal_hint), e.sqlite_code(), e.sys_errno());
    throw;
  }
  if (rows.size() != 1 || rows[0] != "ok") {
    std::string found;
    for (const auto& r : rows) found += (found.empty() ? "" : "; ") + r;
    throw StoreError(file_label(path) + ": quick_check found damage: " + found + std::string(refusal_hint));
  }
  return db;
}

}  // namespace tp::sqlite
