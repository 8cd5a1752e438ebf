// Minimal RAII over the SQLite C API for OrderStore: a connection and
// prepared statements that are reset after every use. Failures throw
// StoreError with SQLite's message. One thread per connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "dll_gateway/order_store.hpp"

namespace tp::dll_gateway::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

class Db {
 public:
  explicit Db(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    db_.reset(raw);  // sqlite3_open_v2 hands out a handle even on failure
    if (rc != SQLITE_OK)
      throw StoreError("cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_.get());
      sqlite3_free(err);
      throw StoreError(msg);
    }
  }
  sqlite3* get() const noexcept { return db_.get(); }

 private:
  std::unique_ptr<sqlite3, DbCloser> db_;
};

class Statement {
 public:
  Statement(const Db& db, const char* sql) : db_(db.get()) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK)
      throw StoreError(std::string("prepare: ") + sqlite3_errmsg(db_));
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
      throw StoreError(sqlite3_errmsg(s_.db_));
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
    Use& check(int rc) {
      if (rc != SQLITE_OK) throw StoreError(std::string("bind: ") + sqlite3_errmsg(s_.db_));
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
