// The order of the checks matters: SQLite discards what lies beyond the
// first bad frame of a write-ahead log when it recovers it, and for good at
// the next checkpoint, so the log is judged before SQLite is given the file.
#include "common/sqlite_store.hpp"

#include <sqlite3.h>

#include <filesystem>
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

std::string first_line(std::string_view sql, std::size_t max) {
  auto start = sql.find_first_not_of(" \n");
  if (start == std::string_view::npos) return {};
  sql.remove_prefix(start);
  return std::string(sql.substr(0, std::min(sql.find('\n'), max)));
}

// The rows PRAGMA quick_check returns: just "ok" for a sound file.
std::vector<std::string> quick_check(sqlite3* db) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check(8)", -1, &raw, nullptr) != SQLITE_OK)
    throw StoreFileError(error_text(db, "quick_check"));
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt(raw);
  std::vector<std::string> rows;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(raw, 0);
    rows.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
  }
  if (rc != SQLITE_DONE) throw StoreFileError(error_text(db, "quick_check"));
  return rows;
}

}  // namespace

void ConnectionCloser::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

std::string file_label(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) abs = path;
  return abs.filename().string() + " (" + abs.string() + ")";
}

std::string error_text(sqlite3* db, std::string_view what) {
  const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
  std::string label = file && *file ? file_label(file) : std::string("SQLite database");
  return label + ": " + std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
}

Connection open_store(const std::string& path, int busy_timeout_ms) {
  const std::string wal_path = path + "-wal";
  sqlite_wal::WalScan wal;
  try {
    wal = sqlite_wal::scan_wal_file(wal_path);
  } catch (const std::exception& e) {
    throw StoreFileError(file_label(path) + ": " + e.what());
  }
  if (!wal.ok()) throw StoreFileError(file_label(wal_path) + ": " + wal.problem + std::string(refusal_hint));

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Connection db(raw);  // sqlite3_open_v2 hands out a handle even when it fails
  if (rc != SQLITE_OK)
    throw StoreFileError(file_label(path) + ": open: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  std::vector<std::string> rows;
  try {
    // One owner: the lock is taken once instead of per transaction, and the
    // WAL index lives in heap memory instead of a -shm file; another process
    // can read the file only after this one exits. Set before the first WAL
    // access, so that no shared-memory index is ever created.
    exec(raw, "PRAGMA locking_mode=EXCLUSIVE");
    exec(raw, "PRAGMA journal_mode=WAL");  // the first read of the file
    exec(raw, "PRAGMA synchronous=NORMAL");
    rows = quick_check(raw);
  } catch (const StoreFileError& e) {
    // A file too damaged for quick_check to run is refused the same way; a
    // busy or unreadable one is not a matter of damage.
    const int code = sqlite3_errcode(raw);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
      throw StoreFileError(e.what() + std::string(refusal_hint));
    throw;
  }
  if (rows.size() != 1 || rows[0] != "ok") {
    std::string found;
    for (const auto& r : rows) found += (found.empty() ? "" : "; ") + r;
    throw StoreFileError(file_label(path) + ": quick_check found damage: " + found +
                         std::string(refusal_hint));
  }
  return db;
}

void exec(sqlite3* db, std::string_view sql) {
  if (sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    throw StoreFileError(error_text(db, first_line(sql, 48)));
}

}  // namespace tp::sqlite
