// The journal survives a "crash" (the object dies without any clean close),
// compacts to exactly the pending signals, sets a torn last record aside,
// reports (never drops) an unreadable one, is used by one holder at a time
// and can be adopted by another instance. No sockets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "common/clock.hpp"
#include "proto/codec.hpp"
#include "strategy/signal_journal.hpp"
#include "test_support/builders.hpp"
#include "test_support/small_tmpfs.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::strategy;
namespace fs = std::filesystem;

namespace {

class JournalTest : public ::testing::Test {
 protected:
  static tp::proto::TradingSignal signal(int n, std::int64_t expires_ns = 2'000'000'000'000'000'000) {
    return tp::test::a_signal("sma_crossover.0.1700000000000." + std::to_string(n))
        .strategy("sma_crossover")
        .instance(0)
        .side(n % 2 ? tp::proto::Side::buy : tp::proto::Side::sell)
        .quantity(1000)
        .price(1.085 + n * 1e-5)
        .confidence(0.5)
        .created_ns(1'700'000'000'000'000'000)
        .expires_ns(expires_ns)
        .causation(static_cast<std::uint64_t>(n), 1'700'000'000'000'000'000);
  }

  static std::string hex(std::string_view bytes) {
    std::string out;
    for (unsigned char c : bytes) {
      out.push_back("0123456789abcdef"[c >> 4]);
      out.push_back("0123456789abcdef"[c & 15]);
    }
    return out;
  }

  std::string contents() const { return tp::test::read_text(path_); }
  void write_contents(const std::string& text) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << text;
  }

  static std::set<std::string> ids(const SignalJournal::Replay& r) {
    std::set<std::string> out;
    for (const auto& s : r.pending) out.insert(s.signal_id);
    return out;
  }

  tp::test::TempDir tmp_{"st_journal_"};
  fs::path dir_ = tmp_.path();
  std::string path_ = (dir_ / "strategy-0.journal").string();
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
      ASSERT_TRUE(box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns()));
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
    box.add(signal(1), tp::proto::encode_to_string(signal(1)), clock.now_ns());
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
  EXPECT_EQ(sent[0], tp::proto::encode_to_string(signal(1)));
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
  box.add(signal(1), tp::proto::encode_to_string(signal(1)), clock.now_ns());
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
    box.add(signal(1, expires), tp::proto::encode_to_string(signal(1, expires)), clock.now_ns());
    box.add(signal(2), tp::proto::encode_to_string(signal(2)), clock.now_ns());
    clock.set_ns(expires + 60'000 * tp::ns_per_ms - 1);
    EXPECT_TRUE(box.give_up(clock.now_ns()).empty());
    clock.advance_ns(1);
    auto dropped = box.give_up(clock.now_ns());
    ASSERT_EQ(dropped.size(), 1u);
    EXPECT_EQ(dropped[0].signal_id, signal(1).signal_id);
    EXPECT_EQ(dropped[0].payload, tp::proto::encode_to_string(signal(1, expires)));
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
      box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns());
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
    box.add(signal(100), tp::proto::encode_to_string(signal(100)), clock.now_ns());
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
    for (int n = 1; n <= 3; ++n) box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns());
  }
  // Cut the last record in half, as a crash inside write() could.
  const auto size = fs::file_size(path_);
  fs::resize_file(path_, size - 40);
  const auto cut_at = fs::file_size(path_);
  {
    SignalJournal j(path_);
    EXPECT_TRUE(j.replay().torn_tail);
    EXPECT_EQ(ids(j.replay()), (std::set<std::string>{signal(1).signal_id, signal(2).signal_id}));
    // Set aside, not counted as a damaged committed record; the id is still
    // readable in what was written.
    EXPECT_EQ(j.replay().bad_records, 0u);
    ASSERT_TRUE(j.replay().torn.has_value());
    EXPECT_EQ(j.replay().torn->signal_id, signal(3).signal_id);
    EXPECT_FALSE(j.replay().torn->settled);
    const auto line_start = contents().size();  // the journal now ends where the torn record began
    EXPECT_EQ(j.replay().torn->offset, line_start);
    EXPECT_EQ(j.replay().torn->raw.size(), cut_at - line_start);
    std::ifstream aside(j.torn_path());
    std::string kept;
    std::getline(aside, kept);
    EXPECT_EQ(kept, "offset=" + std::to_string(line_start) + " bytes=" + std::to_string(cut_at - line_start) +
                        " raw=" + j.replay().torn->raw);
    // The next record lands on a line of its own.
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    box.restore(clock.now_ns());
    box.add(signal(4), tp::proto::encode_to_string(signal(4)), clock.now_ns());
    EXPECT_TRUE(box.ack(signal(1).signal_id));
  }
  SignalJournal j(path_);
  EXPECT_FALSE(j.replay().torn_tail);
  EXPECT_EQ(j.replay().bad_records, 0u);
  EXPECT_EQ(ids(j.replay()), (std::set<std::string>{signal(2).signal_id, signal(4).signal_id}));
}

TEST_F(JournalTest, GarbageLinesAreReportedNotFatal) {
  {
    std::ofstream out(path_);
    out << "B 17\n"
        << "S zz\n"  // not hex
        << "S "
        << "92cc03"
        << "\n"        // hex, but not a signal
        << "Q what\n"  // unknown record
        << "S ";
    const auto payload = tp::proto::encode_to_string(signal(9));
    for (unsigned char c : payload) out << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
    out << "\n";
  }
  SignalJournal j(path_);
  EXPECT_EQ(j.replay().bad_records, 3u);
  EXPECT_EQ(j.replay().last_boot_ms, 17);
  EXPECT_EQ(ids(j.replay()), std::set<std::string>{signal(9).signal_id});
  // Each by offset and bytes; none holds a signal id.
  ASSERT_EQ(j.replay().unreadable.size(), 3u);
  EXPECT_EQ(j.replay().unreadable[0].offset, 5u);
  EXPECT_EQ(j.replay().unreadable[0].raw, "S zz");
  EXPECT_EQ(j.replay().unreadable[1].offset, 10u);
  EXPECT_EQ(j.replay().unreadable[1].raw, "S 92cc03");
  EXPECT_EQ(j.replay().unreadable[2].offset, 19u);
  EXPECT_EQ(j.replay().unreadable[2].raw, "Q what");
  for (const auto& bad : j.replay().unreadable) EXPECT_EQ(bad.signal_id, "") << bad.raw;
}

TEST_F(JournalTest, GarbledRecordInTheMiddleIsReportedWithItsIdAndTheRestStands) {
  const tp::FakeClock clock;
  {
    SignalJournal j(path_);
    j.append_boot(1700000000000);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    for (int n = 1; n <= 4; ++n) box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns());
    box.ack(signal(4).signal_id);
  }
  // Damage signal 2's record well after its id, and signal 4's (acked) one
  // the same way: 2 is lost, 4 is settled.
  auto text = contents();
  const auto line2 = text.find("S " + hex(tp::proto::encode_to_string(signal(2))));
  const auto line4 = text.find("S " + hex(tp::proto::encode_to_string(signal(4))));
  ASSERT_NE(line2, std::string::npos);
  ASSERT_NE(line4, std::string::npos);
  const auto end2 = text.find('\n', line2);
  text[end2 - 7] = '#';
  const auto end4 = text.find('\n', line4);
  text[end4 - 3] = 'q';
  const std::string raw2 = text.substr(line2, end2 - line2);
  write_contents(text);

  {
    SignalJournal j(path_);
    const auto& r = j.replay();
    EXPECT_FALSE(r.torn_tail);
    EXPECT_EQ(ids(r), (std::set<std::string>{signal(1).signal_id, signal(3).signal_id}));
    ASSERT_EQ(r.unreadable.size(), 2u);
    EXPECT_EQ(r.bad_records, 2u);
    EXPECT_EQ(r.unreadable[0].offset, line2);
    EXPECT_EQ(r.unreadable[0].raw, raw2);
    EXPECT_EQ(r.unreadable[0].signal_id, signal(2).signal_id);
    EXPECT_FALSE(r.unreadable[0].settled);  // pending, and its bytes are gone: the caller dead-letters it
    EXPECT_EQ(r.unreadable[1].offset, line4);
    EXPECT_EQ(r.unreadable[1].signal_id, signal(4).signal_id);
    EXPECT_TRUE(r.unreadable[1].settled);  // its A record came later
    // Appends go on after the damage.
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    box.restore(clock.now_ns());
    EXPECT_TRUE(box.ack(signal(1).signal_id));
    box.add(signal(5), tp::proto::encode_to_string(signal(5)), clock.now_ns());
  }
  SignalJournal j(path_);
  EXPECT_EQ(ids(j.replay()), (std::set<std::string>{signal(3).signal_id, signal(5).signal_id}));
  EXPECT_EQ(j.replay().unreadable.size(), 2u);  // until a compaction drops them
}

TEST_F(JournalTest, GarbledIdIsReportedByOffsetAndBytes) {
  const tp::FakeClock clock;
  {
    SignalJournal j(path_);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    for (int n = 1; n <= 2; ++n) box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns());
  }
  auto text = contents();
  const auto line1 = text.find("S ");
  text[line1 + 12] = 'x';  // inside the id's bytes
  write_contents(text);
  {
    SignalJournal j(path_);
    ASSERT_EQ(j.replay().unreadable.size(), 1u);
    EXPECT_EQ(j.replay().unreadable[0].offset, line1);
    EXPECT_EQ(j.replay().unreadable[0].signal_id, "");
    EXPECT_EQ(j.replay().unreadable[0].raw, text.substr(line1, text.find('\n', line1) - line1));
    EXPECT_EQ(ids(j.replay()), std::set<std::string>{signal(2).signal_id});
    // Once reported, a compaction drops it.
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    box.restore(clock.now_ns());
    ASSERT_TRUE(box.compact(1700000000002));
  }
  SignalJournal j(path_);
  EXPECT_TRUE(j.replay().unreadable.empty());
  EXPECT_EQ(ids(j.replay()), std::set<std::string>{signal(2).signal_id});
}

TEST_F(JournalTest, RecoverSignalIdFromDamagedOrShortBytes) {
  const auto full = hex(tp::proto::encode_to_string(signal(7)));
  EXPECT_EQ(recover_signal_id(full), signal(7).signal_id);
  EXPECT_EQ(recover_signal_id(full.substr(0, 80)), signal(7).signal_id);  // cut after the id
  EXPECT_EQ(recover_signal_id(full.substr(0, 80) + "zz" + full.substr(82)), signal(7).signal_id);
  EXPECT_EQ(recover_signal_id(full.substr(0, 20)), "");  // cut inside it
  EXPECT_EQ(recover_signal_id("zz" + full.substr(2)), "");
  EXPECT_EQ(recover_signal_id(hex(tp::proto::encode_to_string(
                tp::proto::SignalAck{"x", tp::proto::AckStatus::accepted, "", 1}))),
            "");  // another message type
  EXPECT_EQ(recover_signal_id(""), "");
}

TEST_F(JournalTest, OneHolderAtATime) {
  {
    SignalJournal first(path_);
    first.append_boot(1);
    EXPECT_THROW(SignalJournal second(path_), JournalLocked);
    EXPECT_THROW(
        SignalJournal adopter(path_, SignalJournal::default_compact_bytes, SignalJournal::Mode::adopt),
        JournalLocked);
    // A compaction swaps the file under the name; the new one is locked too.
    SignalOutbox box(first, 1000 * tp::ns_per_ms);
    ASSERT_TRUE(box.compact(2));
    EXPECT_THROW(SignalJournal second(path_), JournalLocked);
    EXPECT_TRUE(first.append_boot(3));
  }
  // The holder is gone (a process that dies drops its flock the same way).
  SignalJournal again(path_);
  EXPECT_EQ(again.replay().last_boot_ms, 3);
}

TEST_F(JournalTest, AdoptingADepartedShardsJournal) {
  tp::FakeClock clock;
  const auto departed = (dir_ / "strategy-2.journal").string();
  const auto expires = clock.now_ns() + 1000 * tp::ns_per_ms;
  {
    SignalJournal j(departed);
    j.append_boot(1700000000000);
    SignalOutbox box(j, 1000 * tp::ns_per_ms);
    for (int n = 1; n <= 3; ++n)
      box.add(signal(n, expires), tp::proto::encode_to_string(signal(n, expires)), clock.now_ns());
    box.ack(signal(2).signal_id);
  }  // shard 2 is scaled away
  // Adoption never creates a journal.
  EXPECT_THROW(
      SignalJournal(path_ + ".missing", SignalJournal::default_compact_bytes, SignalJournal::Mode::adopt),
      std::runtime_error);
  EXPECT_FALSE(fs::exists(path_ + ".missing"));

  {
    SignalJournal adopted(departed, SignalJournal::default_compact_bytes, SignalJournal::Mode::adopt);
    EXPECT_EQ(adopted.replay().last_boot_ms, 1700000000000);
    SignalOutbox box(adopted, 500 * tp::ns_per_ms, 2000 * tp::ns_per_ms);
    box.restore(clock.now_ns());
    ASSERT_EQ(box.size(), 2u);
    // Resent at once, with their original bytes.
    std::map<std::string, std::string> sent;
    box.resend_due(clock.now_ns(),
                   [&](const PendingSignal& p) { return sent.emplace(p.signal_id, p.payload), true; });
    EXPECT_EQ(sent.at(signal(1).signal_id), tp::proto::encode_to_string(signal(1, expires)));
    EXPECT_EQ(sent.at(signal(3).signal_id), tp::proto::encode_to_string(signal(3, expires)));
    // The original shard cannot come back while the adopter holds it.
    EXPECT_THROW(SignalJournal owner(departed), JournalLocked);
    EXPECT_TRUE(box.ack(signal(1).signal_id));
    // Given up after the adopter's configured delay past expiry.
    clock.set_ns(expires + 2000 * tp::ns_per_ms - 1);
    EXPECT_TRUE(box.give_up(clock.now_ns()).empty());
    clock.advance_ns(1);
    const auto given_up = box.give_up(clock.now_ns());
    ASSERT_EQ(given_up.size(), 1u);
    EXPECT_EQ(given_up[0].signal_id, signal(3).signal_id);
    // Settled: only the boot record is kept (a returning shard needs it).
    ASSERT_TRUE(box.compact(adopted.replay().last_boot_ms));
  }
  EXPECT_EQ(contents().size(), 0u);  // our own journal was never touched
  std::ifstream in(departed);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "B 1700000000000\n");
  // Shard 2 comes back (scale-up) and owns it again.
  SignalJournal owner(departed);
  EXPECT_TRUE(owner.replay().pending.empty());
  EXPECT_EQ(choose_boot_ms(1600000000000, owner.replay().last_boot_ms), 1700000000001);
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

// A full disk: an append that does not fit (often a short write: the record
// is cut at the last free byte) leaves nothing of itself in the file, the
// outbox neither tracks nor hands out a signal it could not journal, an ack
// whose record fails still settles its signal, and once space returns the
// journal takes records again and replays cleanly.
TEST_F(JournalTest, AFullDiskLeavesNoPartialRecordAndNoUnjournaledSignal) {
  tp::test::SmallTmpfs disk(256 * 1024);
  if (!disk.ok()) GTEST_SKIP() << disk.why();
  const auto path = disk.file("strategy-0.journal");
  const auto text = [&] {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const tp::FakeClock clock;
  std::set<std::string> journaled;  // every add() that returned true
  std::set<std::string> acked;      // acks whose A record was written
  std::string ack_failed;           // the ack whose A record was refused
  int n = 0;
  {
    SignalJournal j(path);
    ASSERT_TRUE(j.append_boot(1700000000000));
    SignalOutbox box(j, tp::ns_per_ms);
    for (; n < 150;) {
      ++n;
      ASSERT_TRUE(box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns()));
      journaled.insert(signal(n).signal_id);
    }
    disk.fill();
    // Records go on fitting while the journal's last page has room.
    int refused = 0;
    for (int i = 0; i < 100 && refused == 0; ++i) {
      ++n;
      if (box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns()))
        journaled.insert(signal(n).signal_id);
      else
        refused = n;
    }
    ASSERT_NE(refused, 0) << "the full disk never refused a record";
    EXPECT_EQ(j.last_errno(), ENOSPC);
    EXPECT_EQ(j.failed_writes(), 1u);
    EXPECT_FALSE(box.contains(signal(refused).signal_id)) << "a signal that is not journaled is not tracked";
    EXPECT_EQ(box.size(), journaled.size());
    EXPECT_EQ(fs::file_size(path), j.size_bytes()) << "the partial record was cut off";
    EXPECT_EQ(text().back(), '\n');

    // Acks: the short A records fill what is left, then fail; each signal is
    // settled all the same (a restart would resend it once: DUPLICATE).
    int k = 0;
    while (k < 150 && j.failed_writes() == 1) {
      ++k;
      EXPECT_TRUE(box.ack(signal(k).signal_id));
      if (j.failed_writes() == 1) acked.insert(signal(k).signal_id);
    }
    ASSERT_EQ(j.failed_writes(), 2u) << "no A record was refused";
    EXPECT_FALSE(box.contains(signal(k).signal_id));
    EXPECT_EQ(box.owed(), 1u) << "the refused A record is owed";
    EXPECT_EQ(box.retry_owed(), 1u) << "still no room";
    EXPECT_EQ(fs::file_size(path), j.size_bytes());
    EXPECT_EQ(text().back(), '\n');
    // A compaction has no room either, and keeps the old file.
    const auto before = text();
    EXPECT_FALSE(box.compact(1700000000001));
    EXPECT_EQ(text(), before);
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    disk.free();
    ++n;
    ASSERT_TRUE(box.add(signal(n), tp::proto::encode_to_string(signal(n)), clock.now_ns()));
    journaled.insert(signal(n).signal_id);
    EXPECT_FALSE(box.ack(signal(k).signal_id));  // settled already: no second record
    ack_failed = signal(k).signal_id;
    EXPECT_EQ(box.retry_owed(), 0u) << "space again: the owed A record is written";
  }
  SignalJournal again(path);
  const auto& r = again.replay();
  EXPECT_FALSE(r.torn_tail);
  EXPECT_EQ(r.bad_records, 0u);
  std::set<std::string> expected;
  for (const auto& id : journaled)
    if (!acked.count(id)) expected.insert(id);
  // The one ack whose record failed was written late: nothing is pending
  // that was settled.
  expected.erase(ack_failed);
  EXPECT_EQ(ids(r), expected);
}
