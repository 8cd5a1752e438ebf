// The journal survives a "crash" (the object dies without any clean close),
// compacts to exactly the pending signals and shrugs off a torn last record.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "proto/codec.hpp"
#include "strategy/signal_journal.hpp"

using namespace tp::strategy;
namespace fs = std::filesystem;

namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("st_journal_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "strategy-0.journal").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static proto::TradingSignal signal(int n, std::int64_t expires_ns = 2'000'000'000'000'000'000) {
    proto::TradingSignal s;
    s.signal_id = "sma_crossover.0.1700000000000." + std::to_string(n);
    s.strategy = "sma_crossover";
    s.instrument = "EURUSD";
    s.action = n % 2 ? proto::Side::buy : proto::Side::sell;
    s.quantity = 1000;
    s.trigger_price = 1.085 + n * 1e-5;
    s.confidence = 0.5;
    s.created_ts_ns = 1'700'000'000'000'000'000;
    s.expires_ts_ns = expires_ns;
    s.causation_seq = static_cast<std::uint64_t>(n);
    s.causation_ts_ns = 1'700'000'000'000'000'000;
    return s;
  }

  static std::set<std::string> ids(const SignalJournal::Replay& r) {
    std::set<std::string> out;
    for (const auto& s : r.pending) out.insert(s.signal_id);
    return out;
  }

  fs::path dir_;
  std::string path_;
};

}  // namespace

TEST_F(JournalTest, PendingSignalsSurviveACrash) {
  const tp::FakeClock clock;
  {
    SignalJournal j(path_);
    EXPECT_TRUE(j.replay().pending.empty());
    ASSERT_TRUE(j.append_boot(1700000000000));
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    for (int n = 1; n <= 4; ++n)
      ASSERT_TRUE(box.add(signal(n), proto::encode_to_string(signal(n)), clock.now_ns()));
    EXPECT_TRUE(box.ack(signal(2).signal_id));
    EXPECT_FALSE(box.ack(signal(2).signal_id));  // a repeated ack changes nothing
    EXPECT_EQ(box.size(), 3u);
    // No close, flush or destructor-time work matters: every record was one write().
  }
  SignalJournal j(path_);
  const auto& r = j.replay();
  EXPECT_FALSE(r.torn_tail);
  EXPECT_EQ(r.bad_records, 0u);
  EXPECT_EQ(r.last_boot_ms, 1700000000000);
  ASSERT_EQ(r.pending.size(), 3u);
  EXPECT_EQ(r.pending[0], signal(1));  // every field, in journal order
  EXPECT_EQ(r.pending[1], signal(3));
  EXPECT_EQ(r.pending[2], signal(4));
}

TEST_F(JournalTest, RestoredSignalsAreResentAtOnceThenEveryResendInterval) {
  tp::FakeClock clock;
  {
    SignalJournal j(path_);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    box.add(signal(1), proto::encode_to_string(signal(1)), clock.now_ns());
  }
  SignalJournal j(path_);
  SignalOutbox box(j, 1000 * tp::ns_per_ms);
  box.restore(clock.now_ns());
  ASSERT_EQ(box.size(), 1u);
  std::vector<std::string> sent;
  auto send = [&](const PendingSignal& p) {
    sent.push_back(p.payload);
    return true;
  };
  EXPECT_EQ(box.resend_due(clock.now_ns(), send), 1u);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0], proto::encode_to_string(signal(1)));
  clock.advance_ms(999);
  EXPECT_EQ(box.resend_due(clock.now_ns(), send), 0u);
  clock.advance_ms(1);
  EXPECT_EQ(box.resend_due(clock.now_ns(), send), 1u);
  EXPECT_TRUE(box.ack(signal(1).signal_id));
  clock.advance_ms(5000);
  EXPECT_EQ(box.resend_due(clock.now_ns(), send), 0u);
  EXPECT_EQ(sent.size(), 2u);
}

TEST_F(JournalTest, NewSignalWaitsOneIntervalAndAWouldBlockStaysPending) {
  tp::FakeClock clock;
  SignalJournal j(path_);
  SignalOutbox box(j, 100 * tp::ns_per_ms);
  box.add(signal(1), proto::encode_to_string(signal(1)), clock.now_ns());
  int attempts = 0;
  auto would_block = [&](const PendingSignal&) { return ++attempts, false; };
  EXPECT_EQ(box.resend_due(clock.now_ns(), would_block), 0u);
  EXPECT_EQ(attempts, 0);  // the caller sent it just now
  clock.advance_ms(100);
  EXPECT_EQ(box.resend_due(clock.now_ns(), would_block), 0u);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(box.size(), 1u);
  clock.advance_ms(100);
  box.resend_due(clock.now_ns(), would_block);
  EXPECT_EQ(attempts, 2);
}

TEST_F(JournalTest, UnackedSignalIsGivenUpSixtySecondsAfterExpiry) {
  tp::FakeClock clock;
  const auto expires = clock.now_ns() + 5000 * tp::ns_per_ms;
  {
    SignalJournal j(path_);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    box.add(signal(1, expires), proto::encode_to_string(signal(1, expires)), clock.now_ns());
    box.add(signal(2), proto::encode_to_string(signal(2)), clock.now_ns());
    clock.set_ns(expires + 60'000 * tp::ns_per_ms - 1);
    EXPECT_TRUE(box.give_up(clock.now_ns()).empty());
    clock.advance_ns(1);
    auto dropped = box.give_up(clock.now_ns());
    ASSERT_EQ(dropped.size(), 1u);
    EXPECT_EQ(dropped[0].signal_id, signal(1).signal_id);
    EXPECT_EQ(dropped[0].payload, proto::encode_to_string(signal(1, expires)));
    EXPECT_EQ(box.size(), 1u);
  }
  SignalJournal j(path_);
  EXPECT_EQ(ids(j.replay()), std::set<std::string>{signal(2).signal_id});  // given up is not pending
}

TEST_F(JournalTest, CompactionKeepsExactlyThePendingOnes) {
  const tp::FakeClock clock;
  std::set<std::string> want;
  {
    SignalJournal j(path_, 4096);
    j.append_boot(1700000000000);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    for (int n = 1; n <= 60; ++n) {
      box.add(signal(n), proto::encode_to_string(signal(n)), clock.now_ns());
      if (n % 7 != 0)
        box.ack(signal(n).signal_id);
      else
        want.insert(signal(n).signal_id);
    }
    ASSERT_TRUE(j.should_compact());
    const auto before = j.size_bytes();
    ASSERT_TRUE(box.maybe_compact(1700000000001));
    EXPECT_LT(j.size_bytes(), before);
    EXPECT_EQ(j.size_bytes(), fs::file_size(path_));
    EXPECT_FALSE(fs::exists(path_ + ".tmp"));
    // Appends continue on the new file.
    box.add(signal(100), proto::encode_to_string(signal(100)), clock.now_ns());
    want.insert(signal(100).signal_id);
  }
  // The compacted file is one boot record and one line per pending signal.
  std::ifstream in(path_);
  std::string line;
  std::size_t lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 1 + want.size());

  SignalJournal j(path_);
  EXPECT_EQ(ids(j.replay()), want);
  EXPECT_EQ(j.replay().last_boot_ms, 1700000000001);
  EXPECT_EQ(j.replay().bad_records, 0u);
}

TEST_F(JournalTest, TornLastRecordIsIgnoredAndCutOff) {
  const tp::FakeClock clock;
  {
    SignalJournal j(path_);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    for (int n = 1; n <= 3; ++n) box.add(signal(n), proto::encode_to_string(signal(n)), clock.now_ns());
  }
  // Cut the last record in half, as a crash inside write() could.
  const auto size = fs::file_size(path_);
  fs::resize_file(path_, size - 40);
  {
    SignalJournal j(path_);
    EXPECT_TRUE(j.replay().torn_tail);
    EXPECT_EQ(ids(j.replay()), (std::set<std::string>{signal(1).signal_id, signal(2).signal_id}));
    // The next record lands on a line of its own.
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    box.restore(clock.now_ns());
    box.add(signal(4), proto::encode_to_string(signal(4)), clock.now_ns());
    EXPECT_TRUE(box.ack(signal(1).signal_id));
  }
  SignalJournal j(path_);
  EXPECT_FALSE(j.replay().torn_tail);
  EXPECT_EQ(j.replay().bad_records, 0u);
  EXPECT_EQ(ids(j.replay()), (std::set<std::string>{signal(2).signal_id, signal(4).signal_id}));
}

TEST_F(JournalTest, GarbageLinesAreSkippedNotFatal) {
  {
    std::ofstream out(path_);
    out << "B 17\n"
        << "S zz\n"  // not hex
        << "S "
        << "92cc03"
        << "\n"        // hex, but not a signal
        << "Q what\n"  // unknown record
        << "S ";
    const auto payload = proto::encode_to_string(signal(9));
    for (unsigned char c : payload) out << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
    out << "\n";
  }
  SignalJournal j(path_);
  EXPECT_EQ(j.replay().bad_records, 3u);
  EXPECT_EQ(j.replay().last_boot_ms, 17);
  EXPECT_EQ(ids(j.replay()), std::set<std::string>{signal(9).signal_id});
}

TEST_F(JournalTest, BootTimesAndIdsNeverRepeatAcrossRestarts) {
  const std::int64_t now_ms = 1700000000000;
  std::int64_t first = 0;
  {
    SignalJournal j(path_);
    first = choose_boot_ms(now_ms, j.replay().last_boot_ms);
    EXPECT_EQ(first, now_ms);
    j.append_boot(first);
  }
  SignalJournal j(path_);
  // Restarted within the same millisecond, or with the clock stepped back.
  const auto second = choose_boot_ms(now_ms - 5, j.replay().last_boot_ms);
  EXPECT_GT(second, first);

  SignalIdGenerator a("sma_crossover", 1, first), b("sma_crossover", 1, second);
  EXPECT_EQ(a.next(), "sma_crossover.1.1700000000000.1");
  EXPECT_EQ(a.next(), "sma_crossover.1.1700000000000.2");
  EXPECT_EQ(b.next(), "sma_crossover.1.1700000000001.1");
}
