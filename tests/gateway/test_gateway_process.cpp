// Runs the real gateway binary (GATEWAY_BIN) against sockets in the test:
// a SUB on the ticks endpoint and a PULL as the dead-letter sink, both on
// ipc:// endpoints in a temporary directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/zmq_util.hpp"
#include "proto/codec.hpp"
#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using tp::test::Child;
using tp::test::json_number;
using tp::test::read_text;

class GatewayProcess : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::cerr << "--- gateway log ---\n" << read_text(log_path()) << "---\n";
  }

  std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> a{GATEWAY_BIN,
                               "--run-dir",
                               dir_.path().string(),
                               "--log-level",
                               "warn",
                               "--set",
                               "endpoints.ticks=" + ticks_ep_,
                               "--set",
                               "endpoints.dead_letters=" + dl_ep_};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // The gateway's stdout and stderr, both, appended across its runs.
  tp::test::ChildOptions logged() const {
    return {.stdout_path = log_path(), .stderr_path = log_path(), .append = true};
  }
  std::string log_path() const { return dir_.file("gateway.log"); }
  std::string stats() const { return read_text(dir_.file("gateway.stats.json")); }

  // A SUB for ticks and heartbeats, connected before the gateway binds; a
  // short reconnect interval so that it joins soon after the bind.
  zmq::socket_t make_sub() {
    auto s = tp::make_socket(ctx_, zmq::socket_type::sub);
    s.set(zmq::sockopt::reconnect_ivl, 10);
    s.set(zmq::sockopt::subscribe, "TICK.");
    s.set(zmq::sockopt::subscribe, std::string(tp::proto::heartbeat_topic));
    tp::connect(s, ticks_ep_);
    return s;
  }

  // Receives one [topic, payload] message within `timeout`.
  static bool recv2(zmq::socket_t& s, std::string& topic, std::string& payload,
                    std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return false;
    std::vector<zmq::message_t> frames;
    std::size_t total = 0;
    if (!tp::recv_message(s, frames, 2, total)) return false;
    EXPECT_EQ(total, 2u);
    topic = std::string(tp::view_of(frames[0]));
    payload = total > 1 ? std::string(tp::view_of(frames[1])) : "";
    return true;
  }

  tp::test::TempDir dir_{"gw_test."};
  std::string ticks_ep_ = dir_.ipc("ticks.ipc");
  std::string dl_ep_ = dir_.ipc("dl.ipc");
  zmq::context_t ctx_{1};
};

TEST_F(GatewayProcess, HelpWorksAndBadConfigExitsOne) {
  {
    Child help({GATEWAY_BIN, "--help"}, logged());
    ASSERT_TRUE(help.started());
    EXPECT_EQ(help.wait_exit(10s), 0);
  }
  EXPECT_NE(read_text(log_path()).find("--exit-when-done"), std::string::npos);
  Child bad(args({"--set", "gateway.rate=-1"}), logged());
  EXPECT_EQ(bad.wait_exit(10s), 1);
  EXPECT_NE(read_text(log_path()).find("gateway.rate"), std::string::npos);
}

TEST_F(GatewayProcess, SyntheticTicksArriveInOrderAndItExitsWhenDone) {
  auto sub = make_sub();
  // 200 ticks round-robin over the 4 default instruments: seq 1..50 each.
  Child gw(
      args({"--max-ticks", "200", "--rate", "400", "--set", "gateway.heartbeat_ms=50", "--exit-when-done"}),
      logged());
  ASSERT_TRUE(gw.started());

  tp::proto::Decoder dec;
  std::map<std::string, std::uint64_t> first_seq, last_seq;
  std::size_t ticks = 0, heartbeats = 0;
  std::uint64_t first_hb_seq = 0, last_hb_seq = 0;
  std::int64_t first_tick_ns = 0, last_tick_ns = 0;  // gateway stamps of the ticks seen
  auto deadline = Clock::now() + 15s;
  auto all_done = [&] {
    if (last_seq.size() < 4) return false;
    for (auto& [sym, seq] : last_seq)
      if (seq < 50) return false;
    return true;
  };
  std::string topic, payload;
  while (!all_done() && Clock::now() < deadline && recv2(sub, topic, payload, 200ms)) {
    if (topic == tp::proto::heartbeat_topic) {
      auto hb = dec.decode_heartbeat(tp::proto::as_bytes(payload));
      ASSERT_TRUE(hb.ok()) << hb.error().message();
      EXPECT_EQ(hb->source, "gateway");
      if (first_hb_seq == 0)
        first_hb_seq = hb->seq;
      else
        EXPECT_EQ(hb->seq, last_hb_seq + 1) << "a heartbeat lost after the subscription joined";
      last_hb_seq = hb->seq;
      ++heartbeats;
      continue;
    }
    auto t = dec.decode_tick(tp::proto::as_bytes(payload));
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(topic, tp::proto::tick_topic(t->instrument));
    EXPECT_GT(t->source_ts_ns, 0);
    EXPECT_GE(t->gateway_ts_ns, t->source_ts_ns);
    // PUB drops what is sent before the subscription arrives, so the first
    // tick seen may be later than seq 1; from then on there is no gap.
    auto it = last_seq.find(t->instrument);
    if (it != last_seq.end()) {
      EXPECT_EQ(t->seq, it->second + 1) << t->instrument;
    } else {
      first_seq[t->instrument] = t->seq;
    }
    last_seq[t->instrument] = t->seq;
    if (first_tick_ns == 0) first_tick_ns = t->gateway_ts_ns;
    last_tick_ns = t->gateway_ts_ns;
    ++ticks;
  }
  EXPECT_TRUE(all_done()) << "received " << ticks << " ticks";
  // Every tick from the first one seen to seq 50, per instrument.
  std::size_t expected_ticks = 0;
  for (auto& [sym, seq] : last_seq) {
    EXPECT_EQ(seq, 50u) << sym;
    expected_ticks += seq - first_seq[sym] + 1;
  }
  EXPECT_EQ(ticks, expected_ticks);
  // A heartbeat every 50 ms while the ticks flowed (half that rate allowed for
  // a loaded machine), and none lost once the subscription joined.
  const auto span_ms = (last_tick_ns - first_tick_ns) / tp::ns_per_ms;
  EXPECT_GE(static_cast<std::int64_t>(heartbeats), std::max<std::int64_t>(1, span_ms / 100))
      << span_ms << " ms";
  EXPECT_EQ(heartbeats, last_hb_seq - first_hb_seq + 1);

  EXPECT_EQ(gw.wait_exit(10s), 0);
  auto s = stats();
  EXPECT_EQ(tp::test::json_string(s, "program"), "gateway") << s;
  EXPECT_EQ(json_number(s, "ticks_published"), 200) << s;
  EXPECT_EQ(json_number(s, "csv_rows_skipped"), 0) << s;
  EXPECT_GE(json_number(s, "heartbeats"), static_cast<double>(last_hb_seq)) << s;
}

TEST_F(GatewayProcess, CsvBadRowsAreDeadLetteredWithLineNumbers) {
  auto sink = tp::make_socket(
      ctx_, zmq::socket_type::pull,
      tp::SocketOptions{.max_msg_size = static_cast<std::int64_t>(tp::proto::max_dead_letter_bytes)});
  tp::bind(sink, dl_ep_);
  const std::string csv = std::string(GATEWAY_TEST_DATA) + "/ticks_bad_rows.csv";
  Child gw(args({"--csv", csv, "--speed", "0", "--exit-when-done"}), logged());
  ASSERT_TRUE(gw.started());

  // Rows 4..13 of the file are malformed, one kind each.
  std::vector<std::string> lines;
  {
    std::ifstream in(csv);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  tp::proto::Decoder dec;
  for (std::size_t line = 4; line <= 13; ++line) {
    zmq::pollitem_t item{sink.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, 10s), 1) << "no dead letter for line " << line;
    zmq::message_t m;
    ASSERT_TRUE(sink.recv(m, zmq::recv_flags::none));
    auto dl = dec.decode_dead_letter(tp::bytes_of(m));
    ASSERT_TRUE(dl.ok()) << dl.error().message();
    EXPECT_EQ(dl->source, "gateway");
    EXPECT_EQ(dl->reason, "bad_csv_row");
    EXPECT_NE(dl->detail.find("line " + std::to_string(line) + ":"), std::string::npos) << dl->detail;
    EXPECT_EQ(dl->original, lines[line - 1]);
  }
  EXPECT_EQ(gw.wait_exit(10s), 0);
  auto s = stats();
  EXPECT_EQ(json_number(s, "ticks_published"), 4) << s;
  EXPECT_EQ(json_number(s, "csv_rows_skipped"), 10) << s;
  EXPECT_EQ(json_number(s, "dead_letters"), 10) << s;
}

TEST_F(GatewayProcess, KeepsHeartbeatingAfterMaxTicksAndExitsZeroOnSigterm) {
  auto sub = make_sub();
  Child gw(args({"--max-ticks", "10", "--rate", "1000", "--set", "gateway.heartbeat_ms=50"}), logged());
  ASSERT_TRUE(gw.started());

  // Heartbeats that report all 10 ticks sent: the source is done, the process
  // must stay up (the supervisor would see an exit as a crash).
  tp::proto::Decoder dec;
  int done_heartbeats = 0;
  std::uint64_t last_hb_seq = 0;
  auto deadline = Clock::now() + 15s;
  std::string topic, payload;
  while (done_heartbeats < 3 && Clock::now() < deadline) {
    if (!recv2(sub, topic, payload, 500ms)) continue;
    if (topic != tp::proto::heartbeat_topic) continue;
    auto hb = dec.decode_heartbeat(tp::proto::as_bytes(payload));
    ASSERT_TRUE(hb.ok()) << hb.error().message();
    EXPECT_GT(hb->seq, last_hb_seq);
    last_hb_seq = hb->seq;
    if (hb->ticks_sent == 10) ++done_heartbeats;
  }
  ASSERT_EQ(done_heartbeats, 3);
  EXPECT_TRUE(gw.running());

  gw.terminate();
  EXPECT_EQ(gw.wait_exit(5s), 0);
  auto s = stats();
  EXPECT_EQ(json_number(s, "ticks_published"), 10) << s;
  EXPECT_GE(json_number(s, "heartbeats"), static_cast<double>(last_hb_seq)) << s;
}

}  // namespace
