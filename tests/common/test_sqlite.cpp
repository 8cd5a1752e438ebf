// The SQLite wrapper both stores use (common/sqlite.hpp), against real files
// in a temp dir: values round-trip through bind and column_*, a constraint
// violation is false from run() and an error from step(), every error names
// the file and the statement, and a full database or disk is told by errno
// ENOSPC (the real disk case needs root for a small tmpfs; skipped without).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/sqlite.hpp"
#include "common/sqlite_store.hpp"
#include "test_support/small_tmpfs.hpp"
#include "test_support/temp_dir.hpp"

namespace {

using tp::sqlite::Connection;
using tp::sqlite::Statement;
using tp::sqlite::StoreError;

class Sqlite : public ::testing::Test {
 protected:
  Sqlite() : db_(tp::sqlite::open_store(dir_.file("t.db"), 100)) {
    db_.exec("CREATE TABLE t (id TEXT PRIMARY KEY, qty REAL, n INTEGER, note TEXT)");
  }
  // "t.db (/tmp/.../t.db): ", as every error of this database begins.
  std::string label() const { return "t.db (" + dir_.file("t.db") + "): "; }

  tp::test::TempDir dir_{"tp-sqlite-"};
  Connection db_;
};

// What `f` threw, or nothing.
template <class F>
std::optional<StoreError> error_of(F&& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e;
  }
  return std::nullopt;
}

TEST_F(Sqlite, ValuesRoundTripAndEmptyTextIsNotNull) {
  Statement put(db_, "INSERT INTO t (id, qty, n, note) VALUES (?1, ?2, ?3, ?4)");
  EXPECT_TRUE(
      put.reset().bind(1, "A").bind(2, 1.25).bind(3, std::int64_t{-9'000'000'000}).bind(4, "é x").run());
  EXPECT_TRUE(
      put.reset().bind(1, "B").bind(2, 0.0).bind(3, std::int64_t{0}).bind(4, std::string_view()).run());

  Statement get(db_, "SELECT qty, n, note, typeof(note) FROM t WHERE id = ?1");
  ASSERT_TRUE(get.reset().bind(1, "A").step());
  EXPECT_EQ(get.column_double(0), 1.25);
  EXPECT_EQ(get.column_int(1), -9'000'000'000);
  EXPECT_EQ(get.column_text(2), "é x");
  EXPECT_FALSE(get.step()) << "one row";

  ASSERT_TRUE(get.reset().bind(1, "B").step());
  EXPECT_EQ(get.column_text(2), "");
  EXPECT_EQ(get.column_text(3), "text") << "an empty view binds '', not NULL";

  Statement null_row(db_, "SELECT NULL, NULL");
  ASSERT_TRUE(null_row.step());
  EXPECT_EQ(null_row.column_text(0), "");
  EXPECT_EQ(null_row.column_int(1), 0);
}

// The statement keeps its own copy of bound text and blobs: what is stored is
// what the bytes said at the bind, though the caller's buffer changed or died
// before run(), and the statement moved in between.
TEST_F(Sqlite, BoundTextAndBlobsAreCopiedAtTheBind) {
  Statement put(db_, "INSERT INTO t (id, note) VALUES (?1, ?2)");
  std::string id = "A";
  auto note = std::make_unique<std::string>(40, 'n');
  put.reset().bind(1, id).bind(2, *note);
  id = "B";
  note->assign(100, 'x');  // a new buffer, then none at all
  note.reset();
  Statement moved = std::move(put);
  EXPECT_TRUE(moved.run());
  EXPECT_TRUE(moved.reset().bind(1, std::string("C") + "C").bind(2, std::string_view()).run())
      << "a temporary may be bound";

  Statement get(db_, "SELECT note, typeof(note) FROM t WHERE id = ?1");
  ASSERT_TRUE(get.reset().bind(1, "A").step());
  EXPECT_EQ(get.column_text(0), std::string(40, 'n'));
  ASSERT_TRUE(get.reset().bind(1, "CC").step());
  EXPECT_EQ(get.column_text(0), "");
  EXPECT_EQ(get.column_text(1), "text") << "an empty view binds '', not NULL";
  EXPECT_FALSE(get.reset().bind(1, "B").step());

  Statement blob(db_, "SELECT hex(?1), typeof(?1)");
  auto bytes = std::make_unique<std::string>("\x01\x02", 2);
  blob.reset().bind_blob(1, *bytes);
  bytes.reset();
  ASSERT_TRUE(blob.step());
  EXPECT_EQ(blob.column_text(0), "0102");
  EXPECT_EQ(blob.column_text(1), "blob");

  auto e = error_of([&] { get.reset().bind(2, "no such parameter"); });
  ASSERT_TRUE(e);
  EXPECT_NE(std::string(e->what()).find("bind"), std::string::npos) << e->what();
}

TEST_F(Sqlite, ConstraintViolationIsFalseFromRunAndWritesNothing) {
  Statement put(db_, "INSERT INTO t (id, n) VALUES (?1, ?2)");
  ASSERT_TRUE(put.reset().bind(1, "A").bind(2, std::int64_t{1}).run());
  EXPECT_FALSE(put.reset().bind(1, "A").bind(2, std::int64_t{2}).run());
  EXPECT_FALSE(db_.in_transaction());
  EXPECT_TRUE(put.reset().bind(1, "B").bind(2, std::int64_t{3}).run()) << "the statement is usable after it";

  Statement get(db_, "SELECT n FROM t WHERE id = 'A'");
  ASSERT_TRUE(get.step());
  EXPECT_EQ(get.column_int(0), 1) << "the refused row changed nothing";

  // step() makes no exception for constraints: the caller asked for a row.
  auto e = error_of([&] { put.reset().bind(1, "A").bind(2, std::int64_t{4}).step(); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlite_code(), SQLITE_CONSTRAINT_PRIMARYKEY);
  EXPECT_EQ(e->sys_errno(), 0);
}

TEST_F(Sqlite, ErrorsNameTheFileAndTheStatement) {
  Statement put(db_, "INSERT INTO t (id) VALUES (?1)");
  put.reset().bind(1, "A").run();
  auto e = error_of([&] { put.reset().bind(1, "A").step(); });
  ASSERT_TRUE(e);
  EXPECT_EQ(std::string(e->what()),
            label() + "step 'INSERT INTO t (id) VALUES (?1)': UNIQUE constraint failed: t.id");

  Statement by_operation(db_, "INSERT INTO t (id) VALUES (?1)", Statement::Naming::operation);
  e = error_of([&] { by_operation.reset().bind(1, "A").step(); });
  ASSERT_TRUE(e);
  EXPECT_EQ(std::string(e->what()), label() + "step: UNIQUE constraint failed: t.id");

  e = error_of([&] { Statement bad(db_, "SELECT missing FROM t"); });
  ASSERT_TRUE(e);
  EXPECT_EQ(std::string(e->what()), label() + "prepare 'SELECT missing FROM t': no such column: missing");
  e = error_of([&] { Statement bad(db_, "SELECT missing FROM t", Statement::Naming::operation); });
  ASSERT_TRUE(e);
  EXPECT_EQ(std::string(e->what()), label() + "prepare: no such column: missing");

  e = error_of([&] { put.reset().bind(7, "x"); });
  ASSERT_TRUE(e);
  EXPECT_EQ(std::string(e->what()), label() + "bind: column index out of range");
  EXPECT_EQ(e->sqlite_code(), SQLITE_RANGE);

  // A schema names the statement by its first line.
  e = error_of([&] { db_.exec("\n  CREATE TABLE t (x);\nCREATE TABLE u (y);"); });
  ASSERT_TRUE(e);
  EXPECT_EQ(std::string(e->what()), label() + "CREATE TABLE t (x);: table t already exists");
}

TEST_F(Sqlite, TransactionsAreSeenAndMovedStatementsStayUsable) {
  EXPECT_FALSE(db_.in_transaction());
  db_.exec("BEGIN IMMEDIATE");
  EXPECT_TRUE(db_.in_transaction());
  Statement put(db_, "INSERT INTO t (id) VALUES (?1)");
  Statement moved(std::move(put));
  EXPECT_TRUE(moved.reset().bind(1, "A").run());
  Statement assigned;
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.reset().bind(1, "B").run());
  db_.exec("ROLLBACK");
  EXPECT_FALSE(db_.in_transaction());
  Statement count(db_, "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.column_int(0), 0);
}

TEST_F(Sqlite, AFullDatabaseIsEnospc) {
  // SQLITE_FULL without a full disk: the database may not grow past its cap.
  db_.exec("PRAGMA max_page_count = 8");
  Statement put(db_, "INSERT INTO t (id, note) VALUES (?1, ?2)");
  const std::string big(2000, 'x');
  std::optional<StoreError> e;
  for (int i = 0; i < 100 && !e; ++i) {
    e = error_of([&] { put.reset().bind(1, std::to_string(i)).bind(2, big).run(); });
  }
  ASSERT_TRUE(e) << "the cap was never reached";
  EXPECT_EQ(e->sqlite_code() & 0xff, SQLITE_FULL);
  EXPECT_EQ(e->sys_errno(), ENOSPC);
  EXPECT_EQ(db_.last_errno(), ENOSPC);
  EXPECT_NE(std::string(e->what()).find(label() + "step 'INSERT INTO t"), std::string::npos) << e->what();
}

// A store's commits leave the write-ahead log to grow past checkpoint_pages
// and SQLite's own 1,000 (the owner checkpoints between bursts when
// checkpoint_due() says so) up to forced_checkpoint_pages, where a commit
// checkpoints by itself; the file is cut back to kept_log_pages when the
// log restarts after a checkpoint.
TEST_F(Sqlite, CheckpointsWaitForTheOwnerUpToABound) {
  namespace fs = std::filesystem;
  const std::string wal = dir_.file("t.db") + "-wal";
  const auto page = static_cast<std::uintmax_t>(tp::sqlite::wal_frame_bytes(db_));
  ASSERT_GT(page, 512u);
  Statement put(db_, "INSERT INTO t (id, note) VALUES (?1, ?2)");
  const std::string body(60'000, 'x');  // ~15 pages a commit
  int n = 0;
  auto commit_one = [&] { ASSERT_TRUE(put.reset().bind(1, std::to_string(++n)).bind(2, body).run()); };
  while (!db_.checkpoint_due() && n < 1000) commit_one();
  ASSERT_TRUE(db_.checkpoint_due());
  EXPECT_GE(fs::file_size(wal), tp::sqlite::checkpoint_pages * page);
  for (int i = 0; i < 100; ++i) commit_one();
  EXPECT_GT(fs::file_size(wal), (tp::sqlite::checkpoint_pages + 1000) * page)
      << "no commit checkpointed at SQLite's 1,000 pages";

  db_.checkpoint();
  EXPECT_FALSE(db_.checkpoint_due());
  for (int i = 0; i < tp::sqlite::checkpoint_pages / 30; ++i) commit_one();  // half the quiet size
  EXPECT_LE(fs::file_size(wal), tp::sqlite::kept_log_pages * page)
      << "after the checkpoint the log restarts from its start, cut back to the quiet size";
  EXPECT_GT(fs::file_size(wal), tp::sqlite::checkpoint_pages * page)
      << "cut below kept_log_pages: each quiet cycle would grow the file again";

  // Nobody checkpoints: the log stops at the bound all the same.
  for (int i = 0; i < 2 * tp::sqlite::forced_checkpoint_pages / 15; ++i) commit_one();
  EXPECT_LE(fs::file_size(wal), (tp::sqlite::forced_checkpoint_pages + 20) * page);
  EXPECT_GT(fs::file_size(wal), (tp::sqlite::checkpoint_pages + 1000) * page);
  // Once checkpointed, the log restarts cut back to the quiet size.
  db_.checkpoint();
  commit_one();
  EXPECT_LE(fs::file_size(wal), (tp::sqlite::kept_log_pages + 20) * page);
  Statement count(db_, "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.column_int(0), n);
}

// The owner's checkpoint: only when due and nothing waits; a failure goes to
// the sink and is not tried again for a second.
TEST(QuietCheckpoint, WaitsForAQuietMomentAndASecondAfterAFailure) {
  struct Store {
    bool due = true;
    bool fails = false;
    int made = 0;
    bool checkpoint_due() const { return due; }
    void checkpoint() {
      if (fails) throw StoreError("disk full", 13, ENOSPC);
      ++made;
      due = false;
    }
  } store;
  tp::sqlite::QuietCheckpoint quiet;
  bool busy = true;
  std::vector<std::string> failures;
  auto run = [&](std::int64_t now) {
    quiet.run(
        store, now, [&] { return busy; }, [&](const StoreError& e) { failures.push_back(e.what()); });
  };
  constexpr std::int64_t s = tp::sqlite::QuietCheckpoint::retry_after_ns;
  run(0);
  EXPECT_EQ(store.made, 0) << "work waits";
  busy = false;
  run(1);
  EXPECT_EQ(store.made, 1);
  run(2);
  EXPECT_EQ(store.made, 1) << "not due";

  store.due = true;
  store.fails = true;
  run(10);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0], "disk full");
  store.fails = false;
  run(10 + s - 1);
  EXPECT_EQ(store.made, 1) << "within a second of the failure";
  run(10 + s);
  EXPECT_EQ(store.made, 2);
  EXPECT_EQ(quiet.made(), 2u);
  EXPECT_EQ(failures.size(), 1u);
}

TEST(SqliteDisk, AFullDiskIsEnospcAndTheConnectionRecovers) {
  tp::test::SmallTmpfs fs(256 * 1024);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  Connection db = tp::sqlite::open_store(fs.file("full.db"), 100);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  fs.fill();
  Statement put(db, "INSERT INTO t (body) VALUES (?1)");
  const std::string body(8192, 'x');
  std::optional<StoreError> e;
  for (int i = 0; i < 100 && !e; ++i) e = error_of([&] { put.reset().bind(1, body).run(); });
  ASSERT_TRUE(e) << "the disk never filled";
  EXPECT_EQ(e->sys_errno(), ENOSPC) << e->what();
  EXPECT_NE(std::string(e->what()).find("full.db (" + fs.file("full.db") + "): "), std::string::npos)
      << e->what();

  fs.free();
  EXPECT_TRUE(put.reset().bind(1, body).run()) << "the same connection writes again once there is space";
}

TEST(SqliteError, MisuseFoundByAStoreCarriesNoCodes) {
  const StoreError e("executor store: commit_batch without a batch");
  EXPECT_EQ(e.sqlite_code(), 0);
  EXPECT_EQ(e.sys_errno(), 0);
}

}  // namespace
