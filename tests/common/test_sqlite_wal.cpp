// The WAL scanner and the checked open (common/sqlite_wal.hpp,
// common/sqlite_store.hpp) against logs that SQLite itself wrote in a temp
// dir: copied while the writer is still open (what kill -9 leaves), then
// damaged or not.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/sqlite_store.hpp"
#include "common/sqlite_wal.hpp"
#include "test_support/store_faults.hpp"
#include "test_support/temp_dir.hpp"

namespace fs = std::filesystem;
using tp::sqlite_wal::scan_wal_file;

namespace {

// A writer that leaves everything in the log: no automatic checkpoint.
class Writer {
 public:
  explicit Writer(const std::string& path, bool exclusive = true) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open " + path);
    if (exclusive) exec("PRAGMA locking_mode=EXCLUSIVE");
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0");
    exec("CREATE TABLE IF NOT EXISTS signals (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  }
  ~Writer() { sqlite3_close_v2(db_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + msg);
    }
  }
  // `n` transactions of one row each; rows big enough for a page or two.
  void commit_rows(int n) {
    for (int i = 0; i < n; ++i) exec("INSERT INTO signals (body) VALUES (printf('%.3000c', 'x'))");
  }

 private:
  sqlite3* db_ = nullptr;
};

// Rows SQLite itself sees in `path`, opened without any check.
int rows_seen_by_sqlite(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  int n = -1;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM signals", -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    n = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  sqlite3_close_v2(db);
  return n;
}

class SqliteWal : public ::testing::Test {
 protected:
  std::string file(const std::string& name) const { return dir_.file(name); }

  // 40 committed transactions, copied to crash.db before the writer closes.
  std::string crashed_with_40_commits() {
    Writer w(file("live.db"));
    w.commit_rows(40);
    tp::test::copy_store_files(file("live.db"), file("crash.db"));
    return file("crash.db");
  }

  // What the checked open says about `db`; empty when it opened.
  static std::string refusal(const std::string& db) {
    try {
      tp::sqlite::open_store(db, 100);
    } catch (const tp::sqlite::StoreError& e) {
      return e.what();
    }
    return {};
  }

  tp::test::TempDir dir_{"tp-wal-"};
};

TEST_F(SqliteWal, MissingAndEmptyLogsAreAccepted) {
  EXPECT_TRUE(scan_wal_file(file("none.db-wal")).ok());
  std::ofstream(file("empty.db-wal")).close();
  auto s = scan_wal_file(file("empty.db-wal"));
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.file_size, 0u);
}

TEST_F(SqliteWal, CleanLogIsReplayedWhole) {
  auto db = crashed_with_40_commits();
  auto s = scan_wal_file(db + "-wal");
  ASSERT_TRUE(s.ok()) << s.problem;
  EXPECT_GT(s.frames, 40u);
  EXPECT_EQ(s.valid_frames, s.frames);
  EXPECT_EQ(s.committed_frames, s.frames);
  EXPECT_EQ(s.first_invalid, 0u);
  EXPECT_EQ(refusal(db), "");
  EXPECT_EQ(rows_seen_by_sqlite(db), 40);
}

TEST_F(SqliteWal, DamagedMiddleFrameIsRefusedNamingFileAndFrame) {
  auto db = crashed_with_40_commits();
  const auto frames = scan_wal_file(db + "-wal").frames;
  const auto middle = frames / 2;
  tp::test::damage_wal_frame(db + "-wal", middle);

  auto s = scan_wal_file(db + "-wal");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.first_invalid, middle);
  EXPECT_NE(s.problem.find("frame " + std::to_string(middle) + " (offset "), std::string::npos) << s.problem;

  // The checked open refuses, naming the log and the frame...
  auto why = refusal(db);
  EXPECT_NE(why.find("crash.db-wal (" + db + "-wal)"), std::string::npos) << why;
  EXPECT_NE(why.find("frame " + std::to_string(middle)), std::string::npos) << why;
  // ...and left both files as they were, so that an operator can look.
  EXPECT_FALSE(scan_wal_file(db + "-wal").ok());
  // The fault it guards against: SQLite alone drops the later commits
  // without a word.
  EXPECT_LT(rows_seen_by_sqlite(db), 40);
}

TEST_F(SqliteWal, DamagedFrameSaltsAreNotMistakenForAnOlderGeneration) {
  auto db = crashed_with_40_commits();
  const auto s0 = scan_wal_file(db + "-wal");
  tp::test::flip_bytes(db + "-wal", tp::sqlite_wal::frame_offset(s0.frames / 2, s0.page_size) + 8,
                       4);  // salt-1
  EXPECT_FALSE(scan_wal_file(db + "-wal").ok());
}

TEST_F(SqliteWal, DamagedHeaderIsRefused) {
  auto db = crashed_with_40_commits();
  tp::test::flip_bytes(db + "-wal", 16, 1);  // salt-1: the header checksum no longer matches
  auto s = scan_wal_file(db + "-wal");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.problem.find("header checksum"), std::string::npos) << s.problem;
  EXPECT_NE(refusal(db).find("crash.db-wal"), std::string::npos);
}

TEST_F(SqliteWal, GarbageAndShortLogsAreRefused) {
  std::ofstream(file("short.db-wal"), std::ios::binary) << "0123456789";
  EXPECT_FALSE(scan_wal_file(file("short.db-wal")).ok());
  std::ofstream(file("text.db-wal"), std::ios::binary) << std::string(5000, 'z');
  auto s = scan_wal_file(file("text.db-wal"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.problem.find("not a write-ahead log"), std::string::npos) << s.problem;
}

TEST_F(SqliteWal, TrailingPartialFrameIsAccepted) {
  auto db = crashed_with_40_commits();
  const auto s0 = scan_wal_file(db + "-wal");
  fs::resize_file(db + "-wal", fs::file_size(db + "-wal") - 100);  // the last frame's write cut short
  auto s = scan_wal_file(db + "-wal");
  EXPECT_TRUE(s.ok()) << s.problem;
  EXPECT_EQ(s.frames, s0.frames - 1);
}

TEST_F(SqliteWal, StaleFramesOfAnOlderGenerationAreAccepted) {
  {
    Writer w(file("live.db"));
    w.commit_rows(40);
    // A full checkpoint: the next commit restarts the log from its start
    // with new salts, over the frames of the first generation.
    w.exec("PRAGMA wal_checkpoint(FULL)");
    w.commit_rows(3);
    tp::test::copy_store_files(file("live.db"), file("crash.db"));
  }
  auto s = scan_wal_file(file("crash.db-wal"));
  ASSERT_TRUE(s.ok()) << s.problem;
  EXPECT_GT(s.first_invalid, 0u) << "the older generation follows the valid prefix";
  EXPECT_GT(s.frames, s.valid_frames + 20);
  EXPECT_EQ(refusal(file("crash.db")), "");
  EXPECT_EQ(rows_seen_by_sqlite(file("crash.db")), 43);
}

TEST_F(SqliteWal, UncommittedTailIsAcceptedAndAnEarlierCrashTailToo) {
  {
    Writer w(file("live.db"));
    w.commit_rows(10);
    // A transaction big enough to spill into the log before its commit,
    // cut by the "kill": valid frames with no commit frame after them.
    w.exec("PRAGMA cache_size=2");
    w.exec("BEGIN");
    w.commit_rows(30);
    tp::test::copy_store_files(file("live.db"), file("crash.db"));
    w.exec("ROLLBACK");
  }
  // For the second run below: opening crash.db checkpoints it on close.
  tp::test::copy_store_files(file("crash.db"), file("run2.db"));
  auto s = scan_wal_file(file("crash.db-wal"));
  ASSERT_TRUE(s.ok()) << s.problem;
  EXPECT_GT(s.valid_frames, s.committed_frames + 10) << "an uncommitted tail";
  EXPECT_EQ(refusal(file("crash.db")), "");
  EXPECT_EQ(rows_seen_by_sqlite(file("crash.db")), 10);

  // The next run commits a little over the start of that tail and is killed
  // too: the rest of the old tail stays behind the new commit, with the
  // current salts but a broken chain. Normal, and not data loss.
  {
    Writer w(file("run2.db"));
    w.commit_rows(1);
    tp::test::copy_store_files(file("run2.db"), file("crash2.db"));
  }
  auto s2 = scan_wal_file(file("crash2.db-wal"));
  ASSERT_TRUE(s2.ok()) << s2.problem;
  EXPECT_GT(s2.first_invalid, 0u);
  EXPECT_GT(s2.frames, s2.first_invalid + 5);
  EXPECT_EQ(refusal(file("crash2.db")), "");
  EXPECT_EQ(rows_seen_by_sqlite(file("crash2.db")), 11);
}

TEST_F(SqliteWal, DamagedDatabaseFileIsRefusedNamingIt) {
  {
    Writer w(file("live.db"));
    w.commit_rows(60);
    w.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  fs::copy_file(file("live.db"), file("garbled.db"));
  const auto size = fs::file_size(file("garbled.db"));
  // B-tree pages in the middle: page headers and cell pointers.
  for (std::uint64_t off = 4096 * 3; off + 4096 < size; off += 4096 * 5)
    tp::test::flip_bytes(file("garbled.db"), off, 64);
  auto why = refusal(file("garbled.db"));
  EXPECT_NE(why.find("garbled.db (" + file("garbled.db") + ")"), std::string::npos) << why;

  fs::copy_file(file("live.db"), file("truncated.db"));
  fs::resize_file(file("truncated.db"), size / 2);
  why = refusal(file("truncated.db"));
  EXPECT_NE(why.find("truncated.db (" + file("truncated.db") + ")"), std::string::npos) << why;
}

TEST_F(SqliteWal, ErrorTextNamesTheFile) {
  auto db = tp::sqlite::open_store(file("named.db"), 100);
  try {
    db.exec("SELECT * FROM no_such_table");
    FAIL() << "no error";
  } catch (const tp::sqlite::StoreError& e) {
    EXPECT_EQ(std::string(e.what()), "named.db (" + file("named.db") +
                                         "): SELECT * FROM no_such_table: no such table: no_such_table");
  }
}

}  // namespace
