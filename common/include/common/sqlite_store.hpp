// How both durable stores (executor.db, dll_gateway.db) open their SQLite
// file, and how their errors name it. Opening checks the file before the
// program relies on it: a store that would silently miss committed rows is
// refused, not repaired (see docs/ARCHITECTURE.md, "Start-up checks of the
// stores"). No state; a connection is used by one thread.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;

namespace tp::sqlite {

// Every message names the file: "<name> (<absolute path>): <problem>".
class StoreFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ConnectionCloser {
  void operator()(sqlite3* db) const noexcept;  // sqlite3_close_v2
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

// "executor.db (/abs/run/executor.db)".
std::string file_label(const std::string& path);

// "<file label>: <what>: <SQLite's message for db's last error>"; the label
// is that of the database `db` has open (`db` may be null: out of memory).
std::string error_text(sqlite3* db, std::string_view what);

// Refuses a damaged write-ahead log (<path>-wal, scanned before SQLite reads
// it: common/sqlite_wal.hpp), opens `path` (creating it), holds it for this
// process (locking_mode=EXCLUSIVE: no -shm file, no per-transaction locks),
// sets journal_mode=WAL, synchronous=NORMAL and the busy timeout, and refuses
// a database that fails PRAGMA quick_check. Throws StoreFileError.
Connection open_store(const std::string& path, int busy_timeout_ms);

// Runs `sql` (one or more statements). Throws StoreFileError naming the file.
void exec(sqlite3* db, std::string_view sql);

}  // namespace tp::sqlite
