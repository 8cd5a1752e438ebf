// The one SQLite wrapper, shared by both durable stores (executor.db,
// dll_gateway.db): an owned connection, prepared statements reused across
// calls, and one error type that names the file and keeps SQLite's result
// code and the OS errno under it (ENOSPC for a full disk), so that a caller
// can tell a full disk from damage. Opening a store file with its start-up
// checks is common/sqlite_store.hpp. A connection and its statements belong
// to one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace tp::sqlite {

// Every message names the file: "<name> (<absolute path>): <what>: <SQLite's
// message>", e.g. "executor.db (/run/executor.db): step 'COMMIT': disk I/O
// error". Misuse found by a store itself (no SQLite call under it) carries
// no codes.
class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& what, int sqlite_code = 0, int sys_errno = 0)
      : std::runtime_error(what), sqlite_code_(sqlite_code), sys_errno_(sys_errno) {}
  // SQLite's extended result code; 0 when none.
  int sqlite_code() const noexcept { return sqlite_code_; }
  // The errno of the OS call that failed under it (ENOSPC for a full disk);
  // 0 when unknown.
  int sys_errno() const noexcept { return sys_errno_; }

 private:
  int sqlite_code_;
  int sys_errno_;
};

// "executor.db (/abs/run/executor.db)".
std::string file_label(const std::string& path);

// "<file label>: <what>: <SQLite's message for db's last error>"; the label
// is that of the database `db` has open (`db` may be null: out of memory).
std::string error_text(sqlite3* db, std::string_view what);

// The OS error behind db's last failure: ENOSPC for SQLITE_FULL (SQLite's
// unix VFS keeps no errno for a write that found no space), else the errno
// SQLite kept, else EIO for an I/O error, else 0.
int os_errno(sqlite3* db) noexcept;

// Throws StoreError(error_text(db, what)) with db's extended result code and
// os_errno(db).
[[noreturn]] void fail(sqlite3* db, std::string_view what);

// Owns one sqlite3 handle and closes it (sqlite3_close_v2).
class Connection {
 public:
  Connection() = default;
  explicit Connection(sqlite3* db) noexcept : db_(db) {}  // takes ownership

  sqlite3* get() const noexcept { return db_.get(); }
  explicit operator bool() const noexcept { return db_ != nullptr; }

  // Runs `sql` (one or more statements, no results). Throws StoreError whose
  // message names the statement by its first line.
  void exec(std::string_view sql);
  // True while a transaction is open (SQLite rolls one back by itself after
  // some failures, SQLITE_FULL inside a statement among them).
  bool in_transaction() const noexcept;
  // os_errno() of the last failure on this connection.
  int last_errno() const noexcept { return os_errno(get()); }

  // Checkpoints left to the owner's quiet moments. By default SQLite
  // checkpoints the write-ahead log in whichever commit takes it past 1,000
  // pages: that commit also copies them into the database and waits for an
  // fdatasync(2), in the middle of a burst. After this call a commit does so
  // only past `hard_pages`; checkpoint_due() says when the log holds
  // `soft_pages`, for the owner to checkpoint() when nothing waits.
  void defer_checkpoints(int soft_pages, int hard_pages);
  bool checkpoint_due() const noexcept { return wal_ && wal_->frames >= wal_->soft; }
  // Copies the whole log into the database (PASSIVE: this connection is the
  // only one). Throws StoreError.
  void checkpoint();

 private:
  struct Closer {
    void operator()(sqlite3* db) const noexcept;
  };
  // Frames in the log after the last commit, as SQLite's commit hook tells
  // them; on the heap, where the hook finds it after a move.
  struct WalPages {
    int frames = 0, soft = 0, hard = 0;
  };
  std::unique_ptr<WalPages> wal_;  // declared first: outlives the handle whose hook points at it
  std::unique_ptr<sqlite3, Closer> db_;
};

// One prepared statement (SQLITE_PREPARE_PERSISTENT), finalized on
// destruction. A use starts with reset(), which also clears the previous
// bindings; a read that stops before the last row resets again, so that no
// read transaction stays open between calls. Must not outlive its connection.
// Text and blobs are copied at the bind into a buffer the statement keeps per
// parameter and reuses, so a caller may bind a temporary, and a warm
// statement binds without a malloc (SQLite's own copy is one per parameter).
class Statement {
 public:
  // How a failure names the statement after the file label.
  enum class Naming {
    sql,        // by its text: "prepare '<up to 60 chars>'", "step '<up to 48>'"
    operation,  // by the operation alone: "prepare", "step"
  };

  Statement() = default;
  // Throws StoreError when `sql` does not compile.
  Statement(const Connection& db, std::string_view sql, Naming naming = Naming::sql);
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& reset();
  // Parameters are numbered from 1 (?1, ?2...). An empty text binds '', not
  // NULL. Throw StoreError.
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::int64_t value);
  // Bytes as a BLOB (an empty one too, not NULL).
  Statement& bind_blob(int index, std::string_view bytes);
  // True: a row is ready; false: done. Throws StoreError on any failure.
  bool step();
  // Steps to the end. False (and reset) when a UNIQUE or PRIMARY KEY
  // constraint refused the row: nothing written. Throws StoreError on any
  // other failure.
  bool run();
  // Columns of the current row, numbered from 0; NULL reads as "" or 0.
  std::string column_text(int i) const;
  std::string column_blob(int i) const;
  double column_double(int i) const;
  std::int64_t column_int(int i) const;

 private:
  std::string failing(std::string_view operation) const;
  // Binds the statement's own copy of `bytes` (bound_) as text or a blob.
  Statement& bind_kept(int index, std::string_view bytes, bool blob);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Naming naming_ = Naming::sql;
  // One per parameter. A move of the vector keeps each string where it is, so
  // what SQLite points at survives a move of the statement.
  std::vector<std::string> bound_;
};

}  // namespace tp::sqlite
