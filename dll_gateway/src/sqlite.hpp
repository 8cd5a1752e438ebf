// Minimal RAII over the SQLite C API for OrderStore: a connection and
// prepared statements that are reset after every use. Failures throw
// StoreError with SQLite's message, naming the file ("dll_gateway.db
// (/path): step: ..."). One thread per connection.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "common/sqlite_store.hpp"
#include "dll_gateway/order_store.hpp"

namespace tp::dll_gateway::sqlite {

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

// Runs `f`, turning the shared helper's errors into this store's StoreError.
template <class F>
decltype(auto) translated(F&& f) {
  try {
    return f();
  } catch (const tp::sqlite::StoreFileError& e) {
    throw StoreError(e.what());
  }
}

class Db {
 public:
  // Refuses a damaged file (see tp::sqlite::open_store), WAL, NORMAL.
  Db(const std::string& path, int busy_timeout_ms)
      : db_(translated([&] { return tp::sqlite::open_store(path, busy_timeout_ms); })) {}
  void exec(const char* sql) {
    translated([&] { tp::sqlite::exec(db_.get(), sql); });
  }
  sqlite3* get() const noexcept { return db_.get(); }

 private:
  tp::sqlite::Connection db_;
};

class Statement {
 public:
  Statement(const Db& db, const char* sql) : db_(db.get()) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK)
      throw StoreError(tp::sqlite::error_text(db_, "prepare"));
    stmt_.reset(raw);
  }

  // Resets the statement (and its bindings) when a use ends, however it ends,
  // so that no read transaction stays open between calls.
  class Use {
   public:
    explicit Use(Statement& s) : s_(s) {}
    ~Use() {
      sqlite3_reset(s_.stmt_.get());
      sqlite3_clear_bindings(s_.stmt_.get());
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Use& bind(int i, std::string_view v) {
      return check(sqlite3_bind_text(s_.stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    Use& bind(int i, double v) { return check(sqlite3_bind_double(s_.stmt_.get(), i, v)); }
    Use& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_.stmt_.get(), i, v)); }
    // True when a row is ready, false when done.
    bool step() {
      int rc = sqlite3_step(s_.stmt_.get());
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      throw StoreError(tp::sqlite::error_text(s_.db_, "step"), sqlite3_extended_errcode(s_.db_), os_errno());
    }
    std::string text(int col) const {
      auto* p = sqlite3_column_text(s_.stmt_.get(), col);
      return p ? std::string(reinterpret_cast<const char*>(p),
                             static_cast<std::size_t>(sqlite3_column_bytes(s_.stmt_.get(), col)))
               : std::string();
    }
    double real(int col) const { return sqlite3_column_double(s_.stmt_.get(), col); }
    std::int64_t integer(int col) const { return sqlite3_column_int64(s_.stmt_.get(), col); }

   private:
    // The OS error under the failure. SQLite's unix VFS clears it when it
    // reports SQLITE_FULL (a write that found no space), so that one is ENOSPC.
    int os_errno() const {
      const int err = sqlite3_system_errno(s_.db_);
      if (err == 0 && (sqlite3_extended_errcode(s_.db_) & 0xff) == SQLITE_FULL) return ENOSPC;
      return err;
    }
    Use& check(int rc) {
      if (rc != SQLITE_OK) throw StoreError(tp::sqlite::error_text(s_.db_, "bind"));
      return *this;
    }
    Statement& s_;
  };

  Use use() { return Use(*this); }

 private:
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
};

}  // namespace tp::dll_gateway::sqlite
