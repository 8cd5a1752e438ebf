// StrategyNode over real sockets (ipc:// in a temp dir, the test plays the
// gateway, the executor and the dead-letter sink), and the real binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "proto/codec.hpp"
#include "strategy/signal_journal.hpp"
#include "strategy/strategy_node.hpp"
#include "test_support/builders.hpp"
#include "test_support/capture_sink.hpp"
#include "test_support/small_tmpfs.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tp::strategy::StrategyNode;
using tp::test::json_number;
using tp::test::json_string;
using tp::test::read_text;

namespace {

void send_frames(zmq::socket_t& s, const std::vector<std::string>& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i)
    s.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

// Waits (bounded) until an XPUB has seen a subscription to each of `topics`.
void await_subscriptions(zmq::socket_t& xpub, std::set<std::string> topics) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!topics.empty() && std::chrono::steady_clock::now() < deadline) {
    zmq::message_t m;
    if (!xpub.recv(m, zmq::recv_flags::none)) continue;  // rcvtimeo
    const auto s = m.to_string();
    if (!s.empty() && s[0] == 1) topics.erase(s.substr(1));
  }
  ASSERT_TRUE(topics.empty()) << "subscription never arrived: " << *topics.begin();
}

tp::proto::TickEvent tick(const std::string& sym, std::uint64_t seq, double mid) {
  return tp::test::a_tick(sym, seq, mid).stamped(tp::wall_ns());
}

class NodeTest : public ::testing::Test {
 protected:
  std::string ep(const std::string& name) const { return "ipc://" + (dir_ / name).string(); }

  // `run_dir`: where the journal and stats go (default: the test's dir).
  tp::Config config(const std::string& run_dir = "") const {
    return tp::parse_config("[run]\ndir = \"" + (run_dir.empty() ? dir_.string() : run_dir) +
                            "\"\nstats_interval_ms = 50\n"
                            "[endpoints]\nticks = \"" +
                            ep("ticks") + "\"\nsignals = \"" + ep("signals") + "\"\norder_events = \"" +
                            ep("events") + "\"\ndead_letters = \"" + ep("dl") +
                            "\"\n"
                            "[[instruments]]\nsymbol = \"EURUSD\"\n"
                            "[strategy]\nname = \"sma_crossover\"\ninstances = 1\nquantity = 250\n"
                            "resend_ms = 200\nsignal_ttl_ms = 5000\n"
                            "[strategy.sma_crossover]\nfast = 1\nslow = 2\n");
  }

  // Polls the node until `done` holds; false after a bounded wait.
  static bool pump(StrategyNode& node, const std::function<bool()>& done,
                   std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      node.poll_once(10);
      if (done()) return true;
    }
    return false;
  }

  // Decoded signals waiting on `pull`, by id (resends collapse).
  static void drain_signals(zmq::socket_t& pull, std::map<std::string, tp::proto::TradingSignal>& out,
                            std::size_t* received = nullptr) {
    tp::proto::Decoder dec;
    zmq::message_t m;
    while (pull.recv(m, zmq::recv_flags::dontwait)) {
      auto s = dec.decode_signal(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
      ASSERT_TRUE(s.ok()) << s.error().message();
      if (received) ++*received;
      out[s->signal_id] = s.value();
    }
  }

  tp::test::TempDir tmp_{"st_node_"};
  fs::path dir_ = tmp_.path();
  zmq::context_t ctx_{1};
  tp::SystemClock clock_;
};

}  // namespace

TEST_F(NodeTest, OwnTicksOnlySignalsResentUntilAcked) {
  const auto cfg = config();
  zmq::socket_t ticks(ctx_, zmq::socket_type::xpub), events(ctx_, zmq::socket_type::xpub);
  zmq::socket_t signals(ctx_, zmq::socket_type::pull), dead(ctx_, zmq::socket_type::pull);
  for (auto* s : {&ticks, &events, &signals, &dead}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvtimeo, 100);
  }
  ticks.bind(ep("ticks"));
  events.bind(ep("events"));
  signals.bind(ep("signals"));
  dead.bind(ep("dl"));

  auto node_owner = std::make_unique<StrategyNode>(ctx_, cfg, 0, 1, clock_);
  auto& node = *node_owner;
  ASSERT_EQ(node.instruments(), std::vector<std::string>{"EURUSD"});
  await_subscriptions(ticks, {"TICK.EURUSD", "HB.gateway"});
  await_subscriptions(events, {"ACK.strategy.0"});

  tp::proto::Encoder enc;
  tp::proto::Heartbeat hb{"gateway", 1, tp::wall_ns(), 0};
  send_frames(ticks, {"HB.gateway", std::string(enc.encode(hb))});
  const double mids[] = {1.0, 1.1, 1.0, 1.1, 1.0, 1.1};
  for (std::uint64_t seq = 1; seq <= 6; ++seq) {
    send_frames(ticks, {"TICK.EURUSD", std::string(enc.encode(tick("EURUSD", seq, mids[seq - 1])))});
    // A prefix-matching instrument that is not ours: counted, never traded.
    if (seq <= 3)
      send_frames(ticks, {"TICK.EURUSDX", std::string(enc.encode(tick("EURUSDX", seq, 2.0 + seq)))});
  }
  send_frames(ticks, {"TICK.EURUSD", std::string(enc.encode(tick("GBPUSD", 7, 1.3)))});  // topic_mismatch
  send_frames(ticks, {"TICK.EURUSD", "\xc1garbage"});                                    // undecodable
  send_frames(ticks, {"TICK.EURUSD", "a", "b"});                                         // bad_frames

  std::map<std::string, tp::proto::TradingSignal> got;
  ASSERT_TRUE(pump(node,
                   [&] {
                     drain_signals(signals, got);
                     const auto s = node.stats_json();
                     return json_number(s, "ticks_received") == 6 && json_number(s, "dead_letters") == 3 &&
                            got.size() == 4;
                   }))
      << node.stats_json() << " signals " << got.size();
  auto stats = node.stats_json();
  EXPECT_EQ(json_number(stats, "wrong_topic"), 3);
  EXPECT_EQ(json_number(stats, "signals_emitted"), 4);
  EXPECT_EQ(json_number(stats, "gaps"), 0);
  EXPECT_EQ(json_number(stats, "feed_alive"), 1);

  // fast=1/slow=2 on an alternating mid: the sign flips on every tick from
  // the third on (the second only establishes it).
  std::map<std::uint64_t, tp::proto::TradingSignal> by_seq;
  for (auto& [id, s] : got) by_seq[s.causation_seq] = s;
  ASSERT_EQ(by_seq.size(), 4u);
  for (std::uint64_t seq = 3; seq <= 6; ++seq) {
    const auto& s = by_seq.at(seq);
    const auto t = tick("EURUSD", seq, mids[seq - 1]);
    EXPECT_EQ(s.action, seq % 2 ? tp::proto::Side::sell : tp::proto::Side::buy) << seq;
    EXPECT_DOUBLE_EQ(s.trigger_price, s.action == tp::proto::Side::buy ? t.ask : t.bid);
    EXPECT_EQ(s.instrument, "EURUSD");
    EXPECT_EQ(s.strategy, "strategy");
    EXPECT_EQ(s.instance, 0u);
    EXPECT_EQ(s.quantity, 250);
    EXPECT_EQ(s.expires_ts_ns - s.created_ts_ns, 5000 * tp::ns_per_ms);
    EXPECT_EQ(s.signal_id.rfind("strategy.0.", 0), 0u) << s.signal_id;
  }

  std::multiset<std::string> reasons;
  {
    tp::proto::Decoder dec;
    zmq::message_t m;
    while (reasons.size() < 3 && dead.recv(m, zmq::recv_flags::none)) {
      auto dl = dec.decode_dead_letter(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
      ASSERT_TRUE(dl.ok());
      EXPECT_EQ(dl->source, "strategy:0");
      reasons.insert(dl->reason);
    }
  }
  EXPECT_EQ(reasons.count("topic_mismatch"), 1u);
  EXPECT_EQ(reasons.count("bad_frames"), 1u);
  EXPECT_EQ(reasons.size(), 3u);

  // Unacked: resent after resend_ms.
  std::size_t received = 0;
  ASSERT_TRUE(pump(node, [&] {
    drain_signals(signals, got, &received);
    return json_number(node.stats_json(), "signals_resent") >= 4 && received >= 4;
  }));
  EXPECT_EQ(got.size(), 4u);  // the same ids again, nothing new

  // An ack on a prefix-matching topic (instance 01) is someone else's.
  tp::proto::SignalAck ack{got.begin()->first, tp::proto::AckStatus::accepted, "", tp::wall_ns()};
  send_frames(events, {"ACK.strategy.01", std::string(enc.encode(ack))});
  ASSERT_TRUE(pump(node, [&] { return json_number(node.stats_json(), "wrong_topic") == 4; }));
  EXPECT_EQ(node.signals_pending(), 4u);

  // Any ack status ends the resends; watch the stats file, as an operator would.
  int i = 0;
  for (auto& [id, s] : got) {
    ack.signal_id = id;
    ack.status = i++ % 2 ? tp::proto::AckStatus::accepted : tp::proto::AckStatus::rejected;
    send_frames(events, {"ACK.strategy.0", std::string(enc.encode(ack))});
  }
  ASSERT_TRUE(pump(node, [&] {
    const auto file = read_text(node.stats_path());
    return json_number(file, "signals_pending") == 0 && json_number(file, "signals_acked") == 4;
  })) << read_text(node.stats_path());

  // The journal is the node's alone while it runs...
  const auto journal_path = (dir_ / "strategy-0.journal").string();
  EXPECT_THROW(tp::strategy::SignalJournal{journal_path}, tp::strategy::JournalLocked);
  // ...and agrees once it is gone: nothing to resend after a restart.
  node_owner.reset();
  tp::strategy::SignalJournal journal(journal_path);
  EXPECT_TRUE(journal.replay().pending.empty());
}

TEST_F(NodeTest, PendingSignalsAreResentAfterARestart) {
  const auto cfg = config();
  zmq::socket_t ticks(ctx_, zmq::socket_type::xpub), signals(ctx_, zmq::socket_type::pull);
  for (auto* s : {&ticks, &signals}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvtimeo, 100);
  }
  ticks.bind(ep("ticks"));
  signals.bind(ep("signals"));

  std::map<std::string, tp::proto::TradingSignal> first;
  {
    StrategyNode node(ctx_, cfg, 0, 1, clock_);
    await_subscriptions(ticks, {"TICK.EURUSD", "HB.gateway"});
    tp::proto::Encoder enc;
    send_frames(
        ticks, {"HB.gateway", std::string(enc.encode(tp::proto::Heartbeat{"gateway", 1, tp::wall_ns(), 0}))});
    for (std::uint64_t seq = 1; seq <= 4; ++seq)
      send_frames(ticks, {"TICK.EURUSD", std::string(enc.encode(tick("EURUSD", seq, seq % 2 ? 1.0 : 1.1)))});
    ASSERT_TRUE(pump(node, [&] {
      drain_signals(signals, first);
      return first.size() == 2;
    }));
  }  // no ack ever came: both stay in the journal

  StrategyNode again(ctx_, cfg, 0, 1, clock_);
  EXPECT_EQ(again.signals_pending(), 2u);
  EXPECT_EQ(again.orders_open(), 2u);  // cancellable: they may have become orders
  std::map<std::string, tp::proto::TradingSignal> resent;
  ASSERT_TRUE(pump(again, [&] {
    drain_signals(signals, resent);
    return resent.size() == 2;
  }));
  for (auto& [id, s] : first) EXPECT_EQ(resent.at(id), s);  // byte-identical resends
}

namespace {

// A signal as shard `shard` would have journaled it.
tp::proto::TradingSignal departed_signal(std::uint32_t shard, int n) {
  tp::proto::TradingSignal s;
  s.signal_id = "strategy." + std::to_string(shard) + ".1700000000000." + std::to_string(n);
  s.strategy = "strategy";
  s.instance = shard;
  s.instrument = "GBPUSD";
  s.action = tp::proto::Side::buy;
  s.quantity = 1000;
  s.trigger_price = 1.265;
  s.confidence = 0.5;
  static const std::int64_t created = tp::wall_ns();  // the same bytes on every call
  s.created_ts_ns = created;
  s.expires_ts_ns = s.created_ts_ns + 60'000 * tp::ns_per_ms;
  s.causation_seq = static_cast<std::uint64_t>(n);
  s.causation_ts_ns = s.created_ts_ns;
  return s;
}

// Writes a journal as a shard that then went away, with `n` pending signals.
void write_departed_journal(const std::string& path, std::uint32_t shard, int n) {
  tp::strategy::SignalJournal j(path);
  j.append_boot(1700000000000);
  tp::strategy::SignalOutbox box(j, tp::ns_per_ms);
  for (int i = 1; i <= n; ++i) {
    const auto s = departed_signal(shard, i);
    box.add(s, tp::proto::encode_to_string(s), 0);
  }
}

}  // namespace

TEST_F(NodeTest, AdoptsDepartedShardsJournalsResendsThemAndReportsWhatCannotBeRead) {
  const auto cfg = config();
  zmq::socket_t events(ctx_, zmq::socket_type::xpub);
  zmq::socket_t signals(ctx_, zmq::socket_type::pull), dead(ctx_, zmq::socket_type::pull);
  for (auto* s : {&events, &signals, &dead}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvtimeo, 100);
  }
  events.bind(ep("events"));
  signals.bind(ep("signals"));
  dead.bind(ep("dl"));

  // This node is shard 0 of 2: it owns journals 2, 4, ... once their shards
  // are gone; 1 (a live shard) and 3 (shard 1's) are not its business.
  const auto path = [&](int k) { return (dir_ / ("strategy-" + std::to_string(k) + ".journal")).string(); };
  for (int k = 1; k <= 4; ++k) write_departed_journal(path(k), static_cast<std::uint32_t>(k), 3);
  // Signal 2.2's record is damaged after its id.
  {
    std::ifstream in(path(2));
    std::stringstream ss;
    ss << in.rdbuf();
    auto text = ss.str();
    const auto s22 = departed_signal(2, 2);
    std::string hex;
    for (unsigned char c : tp::proto::encode_to_string(s22)) {
      hex.push_back("0123456789abcdef"[c >> 4]);
      hex.push_back("0123456789abcdef"[c & 15]);
    }
    const auto at = text.find(hex);
    ASSERT_NE(at, std::string::npos);
    text[at + hex.size() - 4] = '!';
    std::ofstream(path(2), std::ios::trunc) << text;
  }
  const auto size1 = fs::file_size(path(1)), size3 = fs::file_size(path(3));
  // Someone still holds journal 4: adopted only once they let go.
  auto holder = std::make_unique<tp::strategy::SignalJournal>(path(4));

  StrategyNode node(ctx_, cfg, 0, 2, clock_);
  EXPECT_EQ(node.adopted_shards(), std::vector<std::uint32_t>{2});
  EXPECT_EQ(node.signals_pending(), 2u);  // 2.1 and 2.3; 2.2 cannot be resent
  await_subscriptions(events, {"ACK.strategy.0", "ACK.strategy.2"});

  // The damaged record is reported with its id, never dropped.
  {
    tp::proto::Decoder dec;
    zmq::message_t m;
    ASSERT_TRUE(dead.recv(m, zmq::recv_flags::none) || dead.recv(m, zmq::recv_flags::none));
    auto dl = dec.decode_dead_letter(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
    ASSERT_TRUE(dl.ok());
    EXPECT_EQ(dl->source, "strategy:0");
    EXPECT_EQ(dl->reason, "journal_corrupt");
    EXPECT_NE(dl->detail.find("strategy-2.journal offset "), std::string::npos) << dl->detail;
    EXPECT_NE(dl->detail.find(departed_signal(2, 2).signal_id), std::string::npos) << dl->detail;
    EXPECT_EQ(dl->original.rfind("S ", 0), 0u);
  }

  // Resent with their original bytes; journal 4 follows once released.
  std::map<std::string, tp::proto::TradingSignal> got;
  ASSERT_TRUE(pump(node, [&] {
    drain_signals(signals, got);
    return got.size() == 2 && json_number(node.stats_json(), "journal_locked") >= 1;
  })) << node.stats_json();
  EXPECT_EQ(got.at(departed_signal(2, 1).signal_id).signal_id, departed_signal(2, 1).signal_id);
  EXPECT_EQ(got.count(departed_signal(2, 3).signal_id), 1u);
  holder.reset();
  ASSERT_TRUE(pump(node, [&] {
    drain_signals(signals, got);
    return got.size() == 5;
  })) << node.stats_json();
  EXPECT_EQ(node.adopted_shards(), (std::vector<std::uint32_t>{2, 4}));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(got.at(departed_signal(4, i).signal_id), departed_signal(4, i));
  await_subscriptions(events, {"ACK.strategy.4"});
  auto stats = node.stats_json();
  EXPECT_EQ(json_number(stats, "journal_corrupt"), 1);
  EXPECT_EQ(json_number(stats, "journals_adopted"), 2);
  EXPECT_EQ(json_number(stats, "adopted_pending"), 5);

  // Acked on each departed shard's own topic; then both journals shrink to
  // their boot record.
  tp::proto::Encoder enc;
  for (const auto& [id, s] : got) {
    tp::proto::SignalAck ack{id, tp::proto::AckStatus::accepted, "", tp::wall_ns()};
    send_frames(events, {tp::proto::ack_topic(s.strategy, s.instance), std::string(enc.encode(ack))});
  }
  ASSERT_TRUE(pump(node, [&] {
    return json_number(node.stats_json(), "adopted_pending") == 0 && fs::file_size(path(4)) < size3;
  })) << node.stats_json();
  EXPECT_EQ(json_number(node.stats_json(), "signals_acked"), 5);
  EXPECT_EQ(read_text(path(2)), "B 1700000000000\n");
  EXPECT_EQ(read_text(path(4)), "B 1700000000000\n");
  EXPECT_EQ(fs::file_size(path(1)), size1);
  EXPECT_EQ(fs::file_size(path(3)), size3);
  // Shard 2 cannot come back while this node holds its journal.
  EXPECT_THROW(StrategyNode(ctx_, cfg, 2, 3, clock_), tp::strategy::JournalLocked);
}

TEST_F(NodeTest, OwnJournalDamageIsReportedOnceAndTheJournalStaysAppendable) {
  const auto cfg = config();
  zmq::socket_t dead(ctx_, zmq::socket_type::pull);
  dead.set(zmq::sockopt::linger, 0);
  dead.set(zmq::sockopt::rcvtimeo, 100);
  dead.bind(ep("dl"));
  const auto path = (dir_ / "strategy-0.journal").string();
  write_departed_journal(path, 0, 2);
  // A garbled line (no id left in it) and a signal record torn by a crash.
  std::string torn_hex;
  for (unsigned char c : tp::proto::encode_to_string(departed_signal(0, 3))) {
    torn_hex.push_back("0123456789abcdef"[c >> 4]);
    torn_hex.push_back("0123456789abcdef"[c & 15]);
  }
  const auto garbled_at = fs::file_size(path);
  std::ofstream(path, std::ios::app) << "S 9e03??\n"
                                     << "S " << torn_hex.substr(0, 120);

  auto collect = [&](std::map<std::string, std::string>& by_reason, std::size_t want) {
    tp::proto::Decoder dec;
    zmq::message_t m;
    for (int i = 0; i < 30 && by_reason.size() < want; ++i) {
      if (!dead.recv(m, zmq::recv_flags::none)) continue;
      auto dl = dec.decode_dead_letter(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
      ASSERT_TRUE(dl.ok());
      by_reason[dl->reason] = dl->detail;
    }
  };
  tp::test::ScopedLogCapture log;
  {
    StrategyNode node(ctx_, cfg, 0, 1, clock_);
    EXPECT_EQ(node.signals_pending(), 2u);
    EXPECT_EQ(log.sink().count(": torn last record at offset", spdlog::level::warn), 1u) << log.sink().text();
    EXPECT_EQ(log.sink().count("1 unreadable record(s)", spdlog::level::warn), 1u) << log.sink().text();
    std::map<std::string, std::string> got;
    collect(got, 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NE(got["journal_corrupt"].find("offset " + std::to_string(garbled_at)), std::string::npos)
        << got["journal_corrupt"];
    EXPECT_NE(got["journal_corrupt"].find("no signal id recoverable"), std::string::npos);
    EXPECT_NE(got["journal_torn"].find(departed_signal(0, 3).signal_id), std::string::npos)
        << got["journal_torn"];
    const auto stats = node.stats_json();
    EXPECT_EQ(json_number(stats, "journal_corrupt"), 1);
    EXPECT_EQ(json_number(stats, "journal_torn"), 1);
  }
  EXPECT_TRUE(fs::exists(path + ".torn"));
  // Reported once: the next start finds a clean journal with the same
  // pending signals.
  log.sink().clear();
  StrategyNode again(ctx_, cfg, 0, 1, clock_);
  EXPECT_EQ(again.signals_pending(), 2u);
  EXPECT_EQ(log.sink().count("signal journal", spdlog::level::warn), 0u) << log.sink().text();
  const auto stats = again.stats_json();
  EXPECT_EQ(json_number(stats, "journal_corrupt"), 0);
  EXPECT_EQ(json_number(stats, "journal_torn"), 0);
  const auto text = read_text(path);
  EXPECT_EQ(text.find("??"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

namespace {

// The ids of the S records in a journal's text (read while its holder runs).
std::set<std::string> journaled_ids(const std::string& text) {
  std::set<std::string> ids;
  tp::proto::Decoder dec;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("S ", 0) != 0) continue;
    std::string bytes;
    for (std::size_t i = 2; i + 1 < line.size(); i += 2)
      bytes.push_back(static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16)));
    auto s = dec.decode_signal(tp::proto::as_bytes(bytes));
    if (s) ids.insert(s->signal_id);
  }
  return ids;
}

// The n of an id "<strategy>.<shard>.<boot>.<n>".
int id_number(const std::string& id) { return std::stoi(id.substr(id.rfind('.') + 1)); }

}  // namespace

// The run dir on a filesystem that fills up: the strategy sends no signal it
// could not journal, says why (stats, alert), and starts again by itself
// once space returns; the journal replays cleanly.
TEST_F(NodeTest, AFullDiskStopsEmissionWithoutLosingASignalAndEmissionResumes) {
  tp::test::SmallTmpfs disk(256 * 1024);
  if (!disk.ok()) GTEST_SKIP() << disk.why();
  const auto cfg = config(disk.dir());
  const auto journal_path = disk.file("strategy-0.journal");
  zmq::socket_t ticks(ctx_, zmq::socket_type::xpub), signals(ctx_, zmq::socket_type::pull);
  for (auto* s : {&ticks, &signals}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvtimeo, 100);
  }
  ticks.bind(ep("ticks"));
  signals.bind(ep("signals"));

  auto node_owner = std::make_unique<StrategyNode>(ctx_, cfg, 0, 1, clock_);
  auto& node = *node_owner;
  await_subscriptions(ticks, {"TICK.EURUSD", "HB.gateway"});
  tp::proto::Encoder enc;
  send_frames(ticks,
              {"HB.gateway", std::string(enc.encode(tp::proto::Heartbeat{"gateway", 1, tp::wall_ns(), 0}))});
  // fast=1/slow=2 on an alternating mid: every tick from the third on is a signal.
  std::uint64_t seq = 0;
  const auto send_ticks = [&](int count) {
    for (int i = 0; i < count; ++i) {
      ++seq;
      send_frames(ticks, {"TICK.EURUSD", std::string(enc.encode(tick("EURUSD", seq, seq % 2 ? 1.0 : 1.1)))});
    }
    return pump(node,
                [&] { return json_number(node.stats_json(), "ticks_received") == static_cast<double>(seq); });
  };
  std::map<std::string, tp::proto::TradingSignal> got;
  ASSERT_TRUE(send_ticks(4));
  ASSERT_TRUE(pump(node, [&] {
    drain_signals(signals, got);
    return got.size() == 2;
  }));
  EXPECT_TRUE(node.emitting());

  disk.fill();
  // The journal's last page still takes a few records; then the disk refuses.
  for (int round = 0; round < 40 && json_number(node.stats_json(), "signals_not_journaled") < 3; ++round)
    ASSERT_TRUE(send_ticks(5)) << node.stats_json();
  auto stats = node.stats_json();
  ASSERT_GE(json_number(stats, "signals_not_journaled"), 3) << stats;
  EXPECT_FALSE(node.emitting());
  EXPECT_EQ(json_number(stats, "emitting"), 0) << stats;
  EXPECT_EQ(json_string(stats, "journal_state"), "write_failed") << stats;
  EXPECT_EQ(json_string(stats, "alert"),
            "not emitting: cannot write strategy-0.journal: No space left on device")
      << stats;
  EXPECT_GE(json_number(stats, "write_failures"), json_number(stats, "signals_not_journaled")) << stats;
  EXPECT_GE(json_number(stats, "journal_errors"), json_number(stats, "signals_not_journaled")) << stats;
  EXPECT_EQ(tp::test::parse_json(stats)["files_failing"],
            nlohmann::json({{journal_path, "write (signal record): No space left on device"}}))
      << stats;
  EXPECT_EQ(json_number(stats, "disk_low"), 1) << stats;
  // The stats file still gets through (written into blocks its previous
  // write reserved), so the supervisor sees the heartbeat and the alert.
  EXPECT_TRUE(node.write_stats());
  EXPECT_EQ(json_string(read_text(node.stats_path()), "alert"),
            "not emitting: cannot write strategy-0.journal: No space left on device")
      << read_text(node.stats_path());

  // What went out is exactly what the journal holds.
  const auto emitted = static_cast<std::size_t>(json_number(stats, "signals_emitted"));
  ASSERT_TRUE(pump(node,
                   [&] {
                     drain_signals(signals, got);
                     return got.size() == emitted;
                   }))
      << got.size() << " of " << emitted;
  auto in_journal = journaled_ids(read_text(journal_path));
  for (const auto& [id, s] : got)
    EXPECT_EQ(in_journal.count(id), 1u) << id << " was sent but is not in the journal";
  EXPECT_EQ(in_journal.size(), got.size());
  // An id is minted for every decision: those that never went out are the
  // ones counted as not journaled.
  const auto not_journaled = static_cast<int>(json_number(stats, "signals_not_journaled"));
  const int minted = static_cast<int>(emitted) + not_journaled;
  EXPECT_EQ(minted, static_cast<int>(seq) - 2);
  for (const auto& [id, s] : got) EXPECT_LE(id_number(id), minted) << id;

  // Space returns: the probe finds it without another signal.
  disk.free();
  ASSERT_TRUE(pump(
      node, [&] { return node.emitting(); }, 3s))
      << node.stats_json();
  stats = node.stats_json();
  EXPECT_FALSE(tp::test::parse_json(stats).contains("alert")) << stats;
  EXPECT_EQ(json_string(stats, "journal_state"), "ok") << stats;
  EXPECT_EQ(tp::test::parse_json(stats)["files_failing"], nlohmann::json::object())
      << "no longer failing: " << stats;
  EXPECT_TRUE(node.write_stats());
  EXPECT_EQ(json_number(read_text(node.stats_path()), "emitting"), 1);

  ASSERT_TRUE(send_ticks(5));
  ASSERT_TRUE(pump(node, [&] {
    drain_signals(signals, got);
    return got.size() == emitted + 5;
  })) << node.stats_json();
  EXPECT_EQ(json_number(node.stats_json(), "signals_not_journaled"), not_journaled);

  // After the holder is gone the journal parses line by line and holds
  // exactly the signals that were sent (none was acked).
  node_owner.reset();
  tp::strategy::SignalJournal journal(journal_path);
  const auto& r = journal.replay();
  EXPECT_EQ(r.bad_records, 0u);
  EXPECT_FALSE(r.torn_tail);
  std::set<std::string> pending, sent;
  for (const auto& s : r.pending) pending.insert(s.signal_id);
  for (const auto& [id, s] : got) sent.insert(id);
  EXPECT_EQ(pending, sent);
}

// Started on a full disk: the instance comes up (no exit-and-restart loop),
// not emitting, with the alert; space returns and it emits.
TEST_F(NodeTest, StartedOnAFullDiskItRunsWithoutEmittingUntilSpaceReturns) {
  tp::test::SmallTmpfs disk(128 * 1024);
  if (!disk.ok()) GTEST_SKIP() << disk.why();
  disk.fill();
  const auto cfg = config(disk.dir());
  zmq::socket_t ticks(ctx_, zmq::socket_type::xpub), signals(ctx_, zmq::socket_type::pull);
  for (auto* s : {&ticks, &signals}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvtimeo, 100);
  }
  ticks.bind(ep("ticks"));
  signals.bind(ep("signals"));
  StrategyNode node(ctx_, cfg, 0, 1, clock_);
  EXPECT_FALSE(node.emitting());
  EXPECT_EQ(json_string(node.stats_json(), "alert"),
            "not emitting: cannot write strategy-0.journal: No space left on device")
      << node.stats_json();
  await_subscriptions(ticks, {"TICK.EURUSD", "HB.gateway"});
  tp::proto::Encoder enc;
  send_frames(ticks,
              {"HB.gateway", std::string(enc.encode(tp::proto::Heartbeat{"gateway", 1, tp::wall_ns(), 0}))});
  for (std::uint64_t seq = 1; seq <= 4; ++seq)
    send_frames(ticks, {"TICK.EURUSD", std::string(enc.encode(tick("EURUSD", seq, seq % 2 ? 1.0 : 1.1)))});
  ASSERT_TRUE(pump(node, [&] { return json_number(node.stats_json(), "signals_not_journaled") == 2; }))
      << node.stats_json();
  std::map<std::string, tp::proto::TradingSignal> got;
  drain_signals(signals, got);
  EXPECT_TRUE(got.empty());

  disk.free();
  ASSERT_TRUE(pump(
      node, [&] { return node.emitting(); }, 3s))
      << node.stats_json();
  for (std::uint64_t seq = 5; seq <= 6; ++seq)
    send_frames(ticks, {"TICK.EURUSD", std::string(enc.encode(tick("EURUSD", seq, seq % 2 ? 1.0 : 1.1)))});
  ASSERT_TRUE(pump(node, [&] {
    drain_signals(signals, got);
    return got.size() == 2;
  })) << node.stats_json();
  EXPECT_EQ(journaled_ids(read_text(disk.file("strategy-0.journal"))).size(), 2u);
}

// ---- The strategy API as a user's strategy sees it -------------------------

namespace {

// Records what the runtime tells it and acts as each test says.
class Recorder final : public tp::Strategy {
 public:
  std::vector<std::string> log;  // "tick EURUSD 3", "feed gap EURUSD 1", "order <id> 4 7", ...
  std::vector<std::string> emitted;
  std::function<void(Recorder&, const tp::Tick&)> on_tick_do;
  int timer_fired = 0;
  int at_fired = 0;
  tp::Context::TimerId timer = 0;

  void on_start() override {
    threshold_ = ctx().params().number("threshold", 0);
    timer = ctx().every(20, [this] { ++timer_fired; });
    ctx().at(ctx().now_ns() + 30'000'000, [this] { ++at_fired; });
  }
  void on_tick(const tp::Tick& t) override {
    log.push_back("tick " + std::string(t.instrument) + " " + std::to_string(t.seq));
    if (on_tick_do) on_tick_do(*this, t);
  }
  void on_feed(const tp::FeedEvent& e) override {
    static const char* kinds[] = {"dead", "alive", "restarted", "gap"};
    log.push_back(std::string("feed ") + kinds[static_cast<int>(e.kind)] + " " + std::string(e.instrument) +
                  " " + std::to_string(e.missed));
  }
  void on_order(const tp::OrderUpdate& u) override {
    log.push_back("order " + std::string(u.signal_id) + " " + std::to_string(static_cast<int>(u.status)) +
                  " " + std::to_string(static_cast<int>(u.filled_quantity)) +
                  (u.refused ? " refused " : " ") + std::string(u.reason));
  }
  tp::Context& context() { return ctx(); }
  double threshold_ = 0;
};

bool has(const std::vector<std::string>& log, const std::string& line) {
  return std::find(log.begin(), log.end(), line) != log.end();
}

class ApiTest : public NodeTest {
 protected:
  void SetUp() override {
    for (auto* s : {&ticks_, &events_, &signals_, &dead_}) {
      s->set(zmq::sockopt::linger, 0);
      s->set(zmq::sockopt::rcvtimeo, 100);
    }
    ticks_.bind(ep("ticks"));
    events_.bind(ep("events"));
    signals_.bind(ep("signals"));
    dead_.bind(ep("dl"));
  }
  // One group "alpha" trading EURUSD and GBPUSD in one instance; `group_keys`
  // and `strategy_keys` are added to its [[strategy.groups]] and [strategy].
  tp::Config api_config(const std::string& params = "threshold = 0.5\n", const std::string& group_keys = "",
                        const std::string& strategy_keys = "") const {
    return tp::parse_config("[run]\ndir = \"" + dir_.string() +
                            "\"\nstats_interval_ms = 50\n"
                            "[endpoints]\nticks = \"" +
                            ep("ticks") + "\"\nsignals = \"" + ep("signals") + "\"\norder_events = \"" +
                            ep("events") + "\"\ndead_letters = \"" + ep("dl") +
                            "\"\n"
                            "[[instruments]]\nsymbol = \"EURUSD\"\n[[instruments]]\nsymbol = \"GBPUSD\"\n"
                            "[strategy]\nfeed_timeout_ms = 300\n" +
                            strategy_keys +
                            "[[strategy.groups]]\nname = \"alpha\"\nkind = \"every_nth\"\nquantity = 40\n" +
                            group_keys + "[strategy.groups.params]\n" + params);
  }
  std::unique_ptr<StrategyNode> start(Recorder*& rec) { return start(rec, api_config()); }
  std::unique_ptr<StrategyNode> start(Recorder*& rec, const tp::Config& cfg) {
    auto owned = new Recorder();
    rec = owned;
    auto node =
        std::make_unique<StrategyNode>(ctx_, cfg, 0, 1, clock_, tp::Security::none(), "alpha",
                                       tp::strategy::StrategyPtr(owned, [](tp::Strategy* s) { delete s; }));
    await_subscriptions(ticks_, {"TICK.EURUSD", "TICK.GBPUSD", "HB.gateway"});
    await_subscriptions(events_, {"ACK.alpha.0", "ORDER.EURUSD", "ORDER.GBPUSD", "POS.alpha"});
    return node;
  }
  void send_tick(const std::string& sym, std::uint64_t seq, double mid) {
    send_frames(ticks_, {"TICK." + sym, std::string(enc_.encode(tick(sym, seq, mid)))});
  }
  // Makes the feed alive, so that the next tick may emit.
  void send_heartbeat() {
    send_frames(ticks_, {"HB.gateway",
                         std::string(enc_.encode(tp::proto::Heartbeat{"gateway", 1, tp::wall_ns(), 0}))});
  }
  void send_ack(const std::string& id, tp::proto::AckStatus status, bool cancel,
                const std::string& reason = "") {
    tp::proto::SignalAck ack{id, status, reason, tp::wall_ns(), cancel};
    send_frames(events_, {"ACK.alpha.0", std::string(enc_.encode(ack))});
  }
  void send_order(const tp::proto::TradingSignal& s, tp::proto::OrderStatus status, double filled = 0) {
    tp::proto::OrderEvent e;
    e.signal_id = e.client_order_id = s.signal_id;
    e.order_id = "B-" + s.signal_id;
    e.instrument = s.instrument;
    e.side = s.action;
    e.status = status;
    e.quantity = s.quantity;
    e.filled_quantity = filled;
    e.fill_price = filled > 0 ? s.trigger_price : 0;
    send_frames(events_, {"ORDER." + s.instrument, std::string(enc_.encode(e))});
  }
  // What the strategy sent on the signals socket since the last call:
  // signals (by id, resends collapse) and cancel requests (each one).
  void drain_executor(std::map<std::string, tp::proto::TradingSignal>& signals,
                      std::vector<tp::proto::CancelRequest>& cancels) {
    tp::proto::Decoder dec;
    zmq::message_t m;
    while (signals_.recv(m, zmq::recv_flags::dontwait)) {
      const tp::proto::Bytes bytes(static_cast<const std::byte*>(m.data()), m.size());
      auto type = dec.peek_type(bytes);
      ASSERT_TRUE(type.ok()) << type.error().message();
      if (type.value() == tp::proto::MsgType::cancel_request) {
        auto c = dec.decode_cancel_request(bytes);
        ASSERT_TRUE(c.ok()) << c.error().message();
        cancels.push_back(c.value());
      } else {
        auto s = dec.decode_signal(bytes);
        ASSERT_TRUE(s.ok()) << s.error().message();
        signals[s->signal_id] = s.value();
      }
    }
  }
  tp::proto::Encoder enc_;
  zmq::socket_t ticks_{ctx_, zmq::socket_type::xpub}, events_{ctx_, zmq::socket_type::xpub};
  zmq::socket_t signals_{ctx_, zmq::socket_type::pull}, dead_{ctx_, zmq::socket_type::pull};
};

}  // namespace

TEST_F(ApiTest, WholeTicksFeedEventsEmitOrdersPositionsAndTimers) {
  Recorder* rec = nullptr;
  auto node = start(rec);
  EXPECT_EQ(rec->threshold_, 0.5);
  EXPECT_EQ(json_string(node->stats_json(), "group"), "alpha");
  EXPECT_TRUE(fs::exists(dir_ / "alpha-0.journal"));
  rec->on_tick_do = [](Recorder& r, const tp::Tick& t) {
    if (t.seq != 4) return;
    // Defaults from the group (quantity 40) and the tick (ask), a TTL of ours.
    r.emitted.push_back(
        r.context().emit({.instrument = t.instrument, .side = tp::Side::buy, .ttl_ms = 1500}));
    r.emitted.push_back(r.context().emit({.instrument = "USDJPY", .side = tp::Side::sell}));  // not ours
    r.emitted.push_back(r.context().emit(
        {.instrument = t.instrument, .side = tp::Side::sell, .quantity = 5, .confidence = 3}));
  };
  send_tick("EURUSD", 1, 1.1);
  send_tick("EURUSD", 2, 1.1);
  send_tick("EURUSD", 4, 1.2);  // seq 3 lost
  std::map<std::string, tp::proto::TradingSignal> got;
  ASSERT_TRUE(pump(*node, [&] {
    drain_signals(signals_, got);
    return got.size() == 2;
  })) << node->stats_json();
  EXPECT_TRUE(has(rec->log, "feed alive  0"));
  EXPECT_TRUE(has(rec->log, "feed gap EURUSD 1"));
  EXPECT_TRUE(has(rec->log, "tick EURUSD 4"));
  ASSERT_EQ(rec->emitted.size(), 3u);
  EXPECT_EQ(rec->emitted[1], "");
  const auto& buy = got.at(rec->emitted[0]);
  EXPECT_EQ(buy.strategy, "alpha");
  EXPECT_EQ(buy.signal_id.rfind("alpha.0.", 0), 0u);
  EXPECT_DOUBLE_EQ(buy.quantity, 40);
  EXPECT_EQ(buy.expires_ts_ns - buy.created_ts_ns, 1500 * tp::ns_per_ms);
  EXPECT_EQ(buy.causation_seq, 4u);
  EXPECT_GT(buy.trigger_price, 1.2);  // the ask
  const auto& sell = got.at(rec->emitted[2]);
  EXPECT_DOUBLE_EQ(sell.quantity, 5);
  EXPECT_DOUBLE_EQ(sell.confidence, 1);  // clamped
  EXPECT_EQ(json_number(node->stats_json(), "signals_refused"), 1);

  // The executor: the buy filled, the sell refused; another group's fill and
  // a position report for it are not ours.
  tp::proto::OrderEvent fill;
  fill.signal_id = buy.signal_id;
  fill.client_order_id = buy.signal_id;
  fill.order_id = "B-1";
  fill.instrument = "EURUSD";
  fill.side = tp::proto::Side::buy;
  fill.status = tp::proto::OrderStatus::filled;
  fill.quantity = fill.filled_quantity = 40;
  fill.fill_price = 1.2;
  send_frames(events_, {"ORDER.EURUSD", std::string(enc_.encode(fill))});
  send_frames(events_, {"ORDER.EURUSD", std::string(enc_.encode(fill))});  // republished: counts nothing
  auto other = fill;
  other.signal_id = "beta.0.1.1";
  send_frames(events_, {"ORDER.EURUSD", std::string(enc_.encode(other))});
  tp::proto::SignalAck refused{sell.signal_id, tp::proto::AckStatus::rejected, "risk: max_position", 1};
  send_frames(events_, {"ACK.alpha.0", std::string(enc_.encode(refused))});
  tp::proto::SignalAck accepted{buy.signal_id, tp::proto::AckStatus::accepted, "", 1};
  send_frames(events_, {"ACK.alpha.0", std::string(enc_.encode(accepted))});
  ASSERT_TRUE(pump(*node, [&] { return node->signals_pending() == 0 && rec->log.size() >= 8; }))
      << node->stats_json();
  EXPECT_TRUE(has(rec->log, "order " + buy.signal_id + " 4 40 "));
  EXPECT_TRUE(has(rec->log, "order " + sell.signal_id + " 5 0 refused risk: max_position"));
  EXPECT_EQ(
      std::count_if(rec->log.begin(), rec->log.end(), [](const auto& l) { return l.find("beta") != l.npos; }),
      0);
  auto& ctx = rec->context();
  EXPECT_DOUBLE_EQ(ctx.position("EURUSD"), 40) << ::testing::PrintToString(rec->log);
  EXPECT_FALSE(ctx.position_known("EURUSD"));

  // The executor's report replaces the figure; a later fill adds to it.
  tp::proto::StrategyPosition pos{"alpha", "EURUSD", -100, 1};
  send_frames(events_, {"POS.alpha", std::string(enc_.encode(pos))});
  tp::proto::StrategyPosition theirs{"beta", "EURUSD", 7, 1};
  send_frames(events_, {"POS.alpha", std::string(enc_.encode(theirs))});
  ASSERT_TRUE(pump(*node, [&] { return ctx.position_known("EURUSD"); }));
  EXPECT_DOUBLE_EQ(ctx.position("EURUSD"), -100);
  EXPECT_FALSE(ctx.position_known("GBPUSD"));

  // Timers ran on the loop; a cancelled one stops.
  ASSERT_TRUE(pump(*node, [&] { return rec->timer_fired >= 2 && rec->at_fired == 1; }));
  ctx.cancel(rec->timer);
  const int fired = rec->timer_fired;
  pump(
      *node, [] { return false; }, 100ms);
  EXPECT_EQ(rec->timer_fired, fired);
  EXPECT_EQ(rec->at_fired, 1);

  // Silence: the feed dies, and emit() refuses while it is dead.
  ASSERT_TRUE(pump(
      *node, [&] { return has(rec->log, "feed dead  0"); }, 3s));
  EXPECT_EQ(ctx.emit({.instrument = "EURUSD", .side = tp::Side::buy}), "");
  EXPECT_GE(json_number(node->stats_json(), "signals_suppressed"), 1);
}

TEST_F(ApiTest, AStrategyThatThrowsIsDeadLetteredAndCarriesOn) {
  Recorder* rec = nullptr;
  auto node = start(rec);
  rec->on_tick_do = [](Recorder&, const tp::Tick& t) {
    if (t.seq == 1) throw std::runtime_error("boom");
  };
  send_tick("EURUSD", 1, 1.1);
  send_tick("EURUSD", 2, 1.1);
  ASSERT_TRUE(pump(*node, [&] { return has(rec->log, "tick EURUSD 2"); }));
  EXPECT_EQ(json_number(node->stats_json(), "strategy_errors"), 1);
  zmq::message_t m;
  ASSERT_TRUE(dead_.recv(m));
  tp::proto::Decoder dec;
  auto letter = dec.decode_dead_letter(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
  ASSERT_TRUE(letter.ok());
  EXPECT_EQ(letter->reason, "strategy_error");
  EXPECT_NE(letter->detail.find("boom"), std::string::npos);
  EXPECT_EQ(letter->source, "alpha:0");
}

TEST_F(ApiTest, UnreadOrBadParametersRefuseTheStartNamingTheKey) {
  const auto error_of = [&](const std::string& params) {
    try {
      StrategyNode node(ctx_, api_config(params), 0, 1, clock_, tp::Security::none(), "alpha",
                        tp::strategy::StrategyPtr(new Recorder(), [](tp::Strategy* s) { delete s; }));
    } catch (const tp::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("threshold = 1\ntreshold = 2\n")
                .find("strategy.groups[alpha].params: unknown key(s) treshold"),
            std::string::npos);
  EXPECT_NE(
      error_of("threshold = \"high\"\n").find("strategy.groups[alpha].params.threshold must be a number"),
      std::string::npos);
  // The built-in checks its own.
  const auto cfg = api_config("n = 0\n");
  try {
    StrategyNode node(ctx_, cfg, 0, 1, clock_, tp::Security::none(), "alpha");
    ADD_FAILURE() << "n = 0 accepted";
  } catch (const tp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("params.n"), std::string::npos) << e.what();
  }
  try {
    StrategyNode node(ctx_, cfg, 0, 1, clock_, tp::Security::none(), "nosuch");
    ADD_FAILURE() << "unknown group accepted";
  } catch (const tp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no strategy group \"nosuch\" (the groups: alpha)"),
              std::string::npos)
        << e.what();
  }
}

// ---- Orders with a life: order terms and cancels ----------------------------

TEST_F(ApiTest, SignalsCarryTheGroupsOrderTermsUnlessTheRequestSaysOtherwise) {
  Recorder* rec = nullptr;
  auto node =
      start(rec, api_config("threshold = 0.5\n",
                            "order_type = \"limit\"\ntime_in_force = \"gtd\"\nlimit_offset_bps = 10\n"));
  std::vector<tp::SignalRequest> requests{
      {.instrument = "EURUSD", .side = tp::Side::buy},   // all the group's: limit 10 bp below the ask, GTD
      {.instrument = "EURUSD", .side = tp::Side::sell},  // 10 bp above the bid
      {.instrument = "EURUSD", .side = tp::Side::buy, .order_type = tp::OrderType::market},  // IOC
      {.instrument = "EURUSD",
       .side = tp::Side::sell,
       .limit_price = 1.5,
       .time_in_force = tp::TimeInForce::gtc},
      {.instrument = "EURUSD", .side = tp::Side::buy, .good_till_ms = 700},
      {.instrument = "EURUSD", .side = tp::Side::buy, .ttl_ms = 900},  // GTD defaults to the signal's TTL
      // Refused: a resting market order, a market order with a limit price,
      // good_till_ms on a GTC order, a negative limit price.
      {.instrument = "EURUSD",
       .side = tp::Side::buy,
       .order_type = tp::OrderType::market,
       .time_in_force = tp::TimeInForce::gtc},
      {.instrument = "EURUSD",
       .side = tp::Side::buy,
       .order_type = tp::OrderType::market,
       .limit_price = 1.1},
      {.instrument = "EURUSD",
       .side = tp::Side::buy,
       .time_in_force = tp::TimeInForce::gtc,
       .good_till_ms = 5},
      {.instrument = "EURUSD", .side = tp::Side::buy, .limit_price = -1},
  };
  rec->on_tick_do = [&](Recorder& r, const tp::Tick&) {
    for (const auto& q : requests) r.emitted.push_back(r.context().emit(q));
  };
  send_heartbeat();
  send_tick("EURUSD", 1, 1.2);
  std::map<std::string, tp::proto::TradingSignal> got;
  std::vector<tp::proto::CancelRequest> cancels;
  ASSERT_TRUE(pump(*node, [&] {
    drain_executor(got, cancels);
    return got.size() == 6;
  })) << node->stats_json();
  ASSERT_EQ(rec->emitted.size(), requests.size());
  for (std::size_t i = 6; i < requests.size(); ++i) EXPECT_EQ(rec->emitted[i], "") << i;
  EXPECT_EQ(json_number(node->stats_json(), "signals_refused"), 4);
  using tp::proto::OrderType;
  using tp::proto::TimeInForce;
  const auto t = tick("EURUSD", 1, 1.2);
  const auto& buy = got.at(rec->emitted[0]);
  EXPECT_EQ(buy.order_type, OrderType::limit);
  EXPECT_DOUBLE_EQ(buy.limit_price, t.ask * (1 - 10 / 1e4));
  EXPECT_EQ(buy.time_in_force, TimeInForce::gtd);
  EXPECT_EQ(buy.good_till_ns, buy.created_ts_ns + 5000 * tp::ns_per_ms);  // strategy.signal_ttl_ms
  const auto& sell = got.at(rec->emitted[1]);
  EXPECT_DOUBLE_EQ(sell.limit_price, t.bid * (1 + 10 / 1e4));
  const auto& market = got.at(rec->emitted[2]);
  EXPECT_EQ(market.terms(), tp::proto::OrderTerms{});
  const auto& gtc = got.at(rec->emitted[3]);
  EXPECT_EQ(gtc.terms(), (tp::proto::OrderTerms{OrderType::limit, 1.5, TimeInForce::gtc, 0}));
  const auto& short_gtd = got.at(rec->emitted[4]);
  EXPECT_EQ(short_gtd.good_till_ns, short_gtd.created_ts_ns + 700 * tp::ns_per_ms);
  const auto& by_ttl = got.at(rec->emitted[5]);
  EXPECT_EQ(by_ttl.good_till_ns, by_ttl.expires_ts_ns);
  EXPECT_TRUE(cancels.empty());
}

TEST_F(ApiTest, ACancelIsResentUntilItsOwnAckAndNeverConfusedWithTheSignals) {
  Recorder* rec = nullptr;
  auto node = start(rec, api_config("threshold = 0.5\n", "order_type = \"limit\"\ntime_in_force = \"gtc\"\n",
                                    "resend_ms = 100\n"));
  auto& ctx = rec->context();
  rec->on_tick_do = [](Recorder& r, const tp::Tick& t) {
    if (t.seq <= 3)
      r.emitted.push_back(r.context().emit({.instrument = t.instrument, .side = tp::Side::buy}));
  };
  send_heartbeat();
  for (std::uint64_t seq = 1; seq <= 3; ++seq) send_tick("EURUSD", seq, 1.2);
  std::map<std::string, tp::proto::TradingSignal> got;
  std::vector<tp::proto::CancelRequest> cancels;
  ASSERT_TRUE(pump(*node, [&] {
    drain_executor(got, cancels);
    return got.size() == 3;
  })) << node->stats_json();
  const auto a = got.at(rec->emitted[0]), b = got.at(rec->emitted[1]), c = got.at(rec->emitted[2]);
  EXPECT_EQ(node->orders_open(), 3u);

  // Asked while its signal is unacked: held, so that it cannot overtake it.
  EXPECT_TRUE(ctx.cancel(a.signal_id, "changed my mind"));
  EXPECT_EQ(node->cancels_pending(), 1u);
  // A cancel's ack does not ack the signal; the signal's ack does not end the
  // cancel.
  send_ack(a.signal_id, tp::proto::AckStatus::rejected, true, "unknown_order");
  send_ack(b.signal_id, tp::proto::AckStatus::accepted, true);  // no cancel of b: unmatched
  ASSERT_TRUE(pump(*node, [&] { return json_number(node->stats_json(), "cancel_acks_unmatched") == 1; }));
  EXPECT_EQ(node->signals_pending(), 3u);
  EXPECT_EQ(json_number(node->stats_json(), "cancels_refused"), 1);  // a's cancel: ended, refused
  EXPECT_EQ(json_number(node->stats_json(), "cancels_sent"), 0);
  EXPECT_EQ(node->orders_open(), 3u);  // a refused cancel leaves the order as it is

  // Once the signal is acked the cancel goes out, and again every resend_ms
  // until acked.
  for (const auto* s : {&a, &b, &c}) send_ack(s->signal_id, tp::proto::AckStatus::accepted, false);
  ASSERT_TRUE(pump(*node, [&] { return node->signals_pending() == 0; })) << node->stats_json();
  EXPECT_TRUE(ctx.cancel(a.signal_id, "changed my mind"));
  EXPECT_TRUE(ctx.cancel(a.signal_id, "again"));  // under way: nothing more
  ASSERT_TRUE(pump(*node, [&] {
    drain_executor(got, cancels);
    return cancels.size() >= 3;
  })) << node->stats_json();
  for (const auto& r : cancels) {
    EXPECT_EQ(r.signal_id, a.signal_id);
    EXPECT_EQ(r.strategy, "alpha");
    EXPECT_EQ(r.instance, 0u);
    EXPECT_EQ(r.reason, "changed my mind");
  }
  EXPECT_EQ(json_number(node->stats_json(), "cancels_sent"), 1);
  EXPECT_GE(json_number(node->stats_json(), "cancels_resent"), 2);
  // A repeated ack of the signal does not end it; its own ack does.
  send_ack(a.signal_id, tp::proto::AckStatus::duplicate, false);
  send_ack(a.signal_id, tp::proto::AckStatus::duplicate, true);
  ASSERT_TRUE(pump(*node, [&] { return node->cancels_pending() == 0; })) << node->stats_json();
  EXPECT_EQ(json_number(node->stats_json(), "cancels_acked"), 1);
  const auto resent = json_number(node->stats_json(), "cancels_resent");
  pump(
      *node, [] { return false; }, 350ms);
  EXPECT_EQ(json_number(node->stats_json(), "cancels_resent"), resent);
  // Its outcome arrives as an order event; then the order is no longer open.
  send_order(a, tp::proto::OrderStatus::canceled);
  ASSERT_TRUE(pump(*node, [&] { return node->orders_open() == 2; }));
  EXPECT_TRUE(has(rec->log, "order " + a.signal_id + " 6 0 "));
  EXPECT_FALSE(ctx.cancel(a.signal_id, "too late"));
  EXPECT_FALSE(ctx.cancel("alpha.0.1.999", "never emitted"));
  EXPECT_EQ(json_number(node->stats_json(), "cancels_not_open"), 2);

  // A final order event (it filled first) ends a cancel without an ack.
  EXPECT_TRUE(ctx.cancel(b.signal_id, ""));
  send_order(b, tp::proto::OrderStatus::filled, b.quantity);
  ASSERT_TRUE(pump(*node, [&] { return node->cancels_pending() == 0; })) << node->stats_json();
  EXPECT_EQ(json_number(node->stats_json(), "cancels_overtaken"), 1);
  // A resting order that expires is final too.
  send_order(c, tp::proto::OrderStatus::partially_filled, 10);
  send_order(c, tp::proto::OrderStatus::expired, 10);
  ASSERT_TRUE(pump(*node, [&] { return has(rec->log, "order " + c.signal_id + " 8 10 "); }));
  EXPECT_EQ(node->orders_open(), 0u);
  EXPECT_DOUBLE_EQ(ctx.position("EURUSD"), b.quantity + 10);
}

TEST_F(ApiTest, ASignalRefusedOrAnOrderLearnedFromItsEventsIsOrIsNotCancellable) {
  Recorder* rec = nullptr;
  auto node =
      start(rec, api_config("threshold = 0.5\n", "order_type = \"limit\"\ntime_in_force = \"gtc\"\n"));
  auto& ctx = rec->context();
  rec->on_tick_do = [](Recorder& r, const tp::Tick& t) {
    r.emitted.push_back(r.context().emit({.instrument = t.instrument, .side = tp::Side::sell}));
  };
  send_heartbeat();
  send_tick("GBPUSD", 1, 1.3);
  std::map<std::string, tp::proto::TradingSignal> got;
  std::vector<tp::proto::CancelRequest> cancels;
  ASSERT_TRUE(pump(*node, [&] {
    drain_executor(got, cancels);
    return got.size() == 1;
  }));
  const auto refused = got.begin()->second;
  send_ack(refused.signal_id, tp::proto::AckStatus::rejected, false, "risk_rejected");
  ASSERT_TRUE(pump(*node, [&] { return node->signals_pending() == 0; }));
  EXPECT_FALSE(ctx.cancel(refused.signal_id));
  // An open order of this group that this run did not emit (it was emitted
  // before a restart) becomes cancellable from its first event.
  auto earlier = refused;
  earlier.signal_id = "alpha.0.1.7";
  send_order(earlier, tp::proto::OrderStatus::accepted);
  ASSERT_TRUE(pump(*node, [&] { return node->orders_open() == 1; }));
  EXPECT_TRUE(ctx.cancel(earlier.signal_id, "from before"));
  ASSERT_TRUE(pump(*node, [&] {
    drain_executor(got, cancels);
    return cancels.size() == 1;
  }));
  EXPECT_EQ(cancels[0].signal_id, earlier.signal_id);
}

TEST_F(ApiTest, ABuiltinCancelsItsOrderStillOpenAfterCancelAfterMs) {
  // every_nth with n = 1: a signal per tick, BUY then SELL.
  const auto cfg =
      api_config("n = 1\n", "order_type = \"limit\"\ntime_in_force = \"gtc\"\ncancel_after_ms = 1000\n",
                 "resend_ms = 100\n");
  StrategyNode node(ctx_, cfg, 0, 1, clock_, tp::Security::none(), "alpha");
  await_subscriptions(ticks_, {"TICK.EURUSD", "TICK.GBPUSD", "HB.gateway"});
  await_subscriptions(events_, {"ACK.alpha.0", "ORDER.EURUSD", "ORDER.GBPUSD", "POS.alpha"});
  send_heartbeat();
  send_tick("EURUSD", 1, 1.2);
  send_tick("EURUSD", 2, 1.2);
  std::map<std::string, tp::proto::TradingSignal> got;
  std::vector<tp::proto::CancelRequest> cancels;
  ASSERT_TRUE(pump(node, [&] {
    drain_executor(got, cancels);
    return got.size() == 2;
  })) << node.stats_json();
  const tp::proto::TradingSignal* filled = nullptr;
  const tp::proto::TradingSignal* resting = nullptr;
  for (const auto& [id, s] : got) {
    EXPECT_EQ(s.order_type, tp::proto::OrderType::limit);
    EXPECT_EQ(s.time_in_force, tp::proto::TimeInForce::gtc);
    (s.action == tp::proto::Side::buy ? filled : resting) = &s;
    send_ack(id, tp::proto::AckStatus::accepted, false);
  }
  ASSERT_TRUE(filled && resting);
  // One fills at once; the other rests and is cancelled a second after its
  // emission, once, until the executor acks the cancel.
  send_order(*filled, tp::proto::OrderStatus::filled, filled->quantity);
  send_order(*resting, tp::proto::OrderStatus::accepted);
  ASSERT_TRUE(pump(node, [&] { return node.orders_open() == 1 && node.signals_pending() == 0; }))
      << node.stats_json();
  ASSERT_TRUE(pump(node, [&] {
    drain_executor(got, cancels);
    return !cancels.empty();
  })) << node.stats_json();
  EXPECT_GE(tp::wall_ns() - resting->created_ts_ns, 1000 * tp::ns_per_ms);
  EXPECT_EQ(cancels[0].signal_id, resting->signal_id);
  EXPECT_EQ(cancels[0].reason, "cancel_after_ms 1000");
  send_ack(resting->signal_id, tp::proto::AckStatus::accepted, true);
  ASSERT_TRUE(pump(node, [&] { return node.cancels_pending() == 0; }));
  send_order(*resting, tp::proto::OrderStatus::canceled);
  ASSERT_TRUE(pump(node, [&] { return node.orders_open() == 0; }));
  drain_executor(got, cancels);
  for (const auto& r : cancels) EXPECT_EQ(r.signal_id, resting->signal_id);  // never the filled one
  EXPECT_EQ(json_number(node.stats_json(), "cancels_sent"), 1);
}

// The backlog of a pause or of a returning link reaches the strategy (its
// indicators move on) but no signal comes from it, whether the strategy
// emits from on_tick or later; and heartbeats stamped long ago (a gateway
// clock behind) do not keep the feed alive.
TEST_F(ApiTest, NoSignalFromATickOlderThanTheSignalBoundNorFromAFeedOnlyOldHeartbeatsKeepAlive) {
  Recorder* rec = nullptr;
  auto node = start(rec);
  rec->on_tick_do = [](Recorder& r, const tp::Tick& t) {
    r.emitted.push_back(r.context().emit({.instrument = t.instrument, .side = tp::Side::buy}));
  };
  const auto stat = [&](const char* key) { return json_number(node->stats_json(), key); };
  const auto send_aged_tick = [&](std::uint64_t seq, std::int64_t age_ms) {
    const tp::proto::TickEvent t =
        tp::test::a_tick("EURUSD", seq, 1.1).stamped(tp::wall_ns() - age_ms * tp::ns_per_ms);
    send_frames(ticks_, {"TICK.EURUSD", std::string(enc_.encode(t))});
  };
  send_heartbeat();
  ASSERT_TRUE(pump(*node, [&] { return has(rec->log, "feed alive  0"); }));
  send_heartbeat();
  send_aged_tick(1, 3000);  // believed (max_tick_age_ms 5000), not traded (max_signal_tick_age_ms 250)
  ASSERT_TRUE(pump(*node, [&] { return rec->emitted.size() == 1; })) << node->stats_json();
  EXPECT_EQ(rec->emitted[0], "");
  EXPECT_TRUE(has(rec->log, "tick EURUSD 1"));
  EXPECT_EQ(rec->context().emit({.instrument = "EURUSD", .side = tp::Side::sell}), "");  // as from a timer
  EXPECT_EQ(stat("signals_stale"), 2);
  EXPECT_EQ(stat("signals_suppressed"), 0);

  send_aged_tick(2, 0);
  std::map<std::string, tp::proto::TradingSignal> got;
  ASSERT_TRUE(pump(*node, [&] {
    drain_signals(signals_, got);
    return got.size() == 1;
  })) << node->stats_json();
  const auto& s = got.begin()->second;
  EXPECT_EQ(s.causation_seq, 2u);
  EXPECT_LE(s.created_ts_ns - s.causation_ts_ns, 250 * tp::ns_per_ms);

  // A gateway 6 s behind: its heartbeats arrive, and the feed dies all the
  // same once feed_timeout_ms (300 here) has passed since the last believed one.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!has(rec->log, "feed dead  0") && std::chrono::steady_clock::now() < deadline) {
    send_frames(ticks_, {"HB.gateway", std::string(enc_.encode(tp::proto::Heartbeat{
                                           "gateway", 2, tp::wall_ns() - 6000 * tp::ns_per_ms, 0}))});
    send_aged_tick(3, 6000);  // refused: dead letter "stale"
    pump(
        *node, [] { return false; }, 50ms);
  }
  ASSERT_TRUE(has(rec->log, "feed dead  0")) << node->stats_json();
  EXPECT_FALSE(rec->context().feed_alive());
  EXPECT_GE(stat("heartbeats_refused"), 3);
  EXPECT_NE(node->stats_json().find("\"feed_alive\":false"), std::string::npos) << node->stats_json();
}
