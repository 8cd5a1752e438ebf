#include "common/sqlite.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <filesystem>

namespace tp::sqlite {
namespace {

// The first line of `sql`, at most `max` characters: enough to tell which
// statement of a schema failed.
std::string first_line(std::string_view sql, std::size_t max) {
  auto start = sql.find_first_not_of(" \n");
  if (start == std::string_view::npos) return {};
  sql.remove_prefix(start);
  return std::string(sql.substr(0, std::min(sql.find('\n'), max)));
}

}  // namespace

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

int os_errno(sqlite3* db) noexcept {
  const int code = sqlite3_errcode(db) & 0xff;
  if (code == SQLITE_FULL) return ENOSPC;
  // SQLite updates its errno only on I/O and open errors: after any other
  // failure the number kept may be an older one, still the best known.
  if (const int sys = sqlite3_system_errno(db); sys != 0) return sys;
  return code == SQLITE_IOERR ? EIO : 0;
}

void fail(sqlite3* db, std::string_view what) {
  throw StoreError(error_text(db, what), db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM, os_errno(db));
}

// ---------------------------------------------------------------- Connection

void Connection::Closer::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

void Connection::exec(std::string_view sql) {
  if (sqlite3_exec(get(), std::string(sql).c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    fail(get(), first_line(sql, 48));
}

bool Connection::in_transaction() const noexcept { return sqlite3_get_autocommit(get()) == 0; }

void Connection::defer_checkpoints(int soft_pages, int hard_pages) {
  if (!wal_) wal_ = std::make_unique<WalPages>();
  wal_->soft = soft_pages;
  wal_->hard = hard_pages;
  // Replaces SQLite's own hook (wal_autocheckpoint), which is one too.
  sqlite3_wal_hook(
      get(),
      [](void* arg, sqlite3* db, const char* name, int frames) {
        auto* wal = static_cast<WalPages*>(arg);
        wal->frames = frames;
        if (frames >= wal->hard &&
            sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) == SQLITE_OK)
          wal->frames = 0;
        return SQLITE_OK;  // the commit stands either way; the next one tries again
      },
      wal_.get());
}

void Connection::checkpoint() {
  if (sqlite3_wal_checkpoint_v2(get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) != SQLITE_OK)
    fail(get(), "checkpoint");
  if (wal_) wal_->frames = 0;
}

// ----------------------------------------------------------------- Statement

Statement::Statement(const Connection& db, std::string_view sql, Naming naming)
    : db_(db.get()), naming_(naming) {
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt_,
                         nullptr) != SQLITE_OK) {
    fail(db_, naming_ == Naming::sql ? "prepare '" + std::string(sql.substr(0, 60)) + "'"
                                     : std::string("prepare"));
  }
  bound_.resize(static_cast<std::size_t>(sqlite3_bind_parameter_count(stmt_)));
}

Statement::Statement(Statement&& o) noexcept
    : db_(o.db_), stmt_(o.stmt_), naming_(o.naming_), bound_(std::move(o.bound_)) {
  o.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    naming_ = o.naming_;
    bound_ = std::move(o.bound_);
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return *this;
}

Statement& Statement::bind_kept(int index, std::string_view bytes, bool blob) {
  int rc = SQLITE_OK;
  if (index < 1 || static_cast<std::size_t>(index) > bound_.size()) {
    rc = sqlite3_bind_null(stmt_, index);  // no such parameter: SQLite says so (SQLITE_RANGE)
  } else {
    // assign() reuses the buffer once it is long enough: no malloc when
    // warm. A std::string's data() is never null, so '' is stored, not NULL.
    const std::string& kept = bound_[static_cast<std::size_t>(index - 1)].assign(bytes);
    const int size = static_cast<int>(kept.size());
    rc = blob ? sqlite3_bind_blob(stmt_, index, kept.data(), size, SQLITE_STATIC)
              : sqlite3_bind_text(stmt_, index, kept.data(), size, SQLITE_STATIC);
  }
  if (rc != SQLITE_OK) fail(db_, "bind");
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) { return bind_kept(index, value, false); }
Statement& Statement::bind_blob(int index, std::string_view bytes) { return bind_kept(index, bytes, true); }
Statement& Statement::bind(int index, double value) {
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
Statement& Statement::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) fail(db_, "bind");
  return *this;
}

// "step 'UPDATE orders SET state = ...'" or "step": which statement failed.
std::string Statement::failing(std::string_view operation) const {
  if (naming_ == Naming::operation) return std::string(operation);
  const char* sql = sqlite3_sql(stmt_);
  return std::string(operation) + " '" +
         std::string(sql ? std::string_view(sql).substr(0, 48) : std::string_view()) + "'";
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, failing("step"));
}

bool Statement::run() {
  int rc;
  while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) {
  }
  if (rc == SQLITE_DONE) return true;
  const int code = sqlite3_extended_errcode(db_);
  if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
    sqlite3_reset(stmt_);
    return false;
  }
  fail(db_, failing("step"));
}

std::string Statement::column_text(int i) const {
  auto* p = sqlite3_column_text(stmt_, i);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
           : std::string();
}
std::string Statement::column_blob(int i) const {
  auto* p = sqlite3_column_blob(stmt_, i);
  return p ? std::string(static_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
           : std::string();
}
double Statement::column_double(int i) const { return sqlite3_column_double(stmt_, i); }
std::int64_t Statement::column_int(int i) const { return sqlite3_column_int64(stmt_, i); }

}  // namespace tp::sqlite
