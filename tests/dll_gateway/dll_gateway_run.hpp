// A fixture for tests that run the real dll_gateway binary: a temp dir with
// its ipc:// endpoints, the command line, and the test as executor (one REQ
// per call) and as tick feed. Shared by the process and limits tests; one
// test thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "proto/codec.hpp"
#include "test_support/builders.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"

namespace tp::dll_gateway::test {

class DllGatewayRun : public ::testing::Test {
 protected:
  std::string ep(const std::string& name) const { return dir.ipc(name); }

  // The command line: the sim broker, endpoints in the temp dir, stats every
  // 50 ms; `extra` words appended. quote() is stamped long ago, so the sim
  // broker's stale-quote bound is off (test_sim_broker_orders covers it).
  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{DLL_GATEWAY_BIN,
                               "--run-dir",
                               dir.path().string(),
                               "--plugin",
                               SIM_BROKER_PATH,
                               "--set",
                               "endpoints.ticks=\"" + ep("ticks") + "\"",
                               "--set",
                               "endpoints.orders=\"" + ep("orders") + "\"",
                               "--set",
                               "endpoints.dead_letters=\"" + ep("dead_letters") + "\"",
                               "--set",
                               "dll_gateway.settings.journal_path=\"" + dir.file("sim.journal") + "\"",
                               "--set",
                               "dll_gateway.settings.max_quote_age_ms=\"0\"",
                               "--set",
                               "run.stats_interval_ms=50"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string stats() const { return tp::test::read_text(dir.file("dll_gateway.stats.json")); }

  // One request, one reply within 5 s; a fresh REQ each time so that a lost
  // reply cannot wedge the next call.
  std::optional<std::string> call(std::string_view payload) {
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(ep("orders"));
    req.send(zmq::buffer(payload), zmq::send_flags::none);
    zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(5000)) == 0) return std::nullopt;
    zmq::message_t m;
    if (!req.recv(m)) return std::nullopt;
    return m.to_string();
  }

  // 1000 EURUSD of `id`, answered; an empty reply (and a failure) otherwise.
  proto::OrderReply order(const std::string& id, proto::Side side = proto::Side::buy) {
    auto raw =
        call(proto::encode_to_string(tp::test::an_order(id).side(side).price_hint(1.085).sent_ns(1).build()));
    EXPECT_TRUE(raw) << "no reply to " << id;
    if (!raw) return {};
    auto r = decoder.decode_order_reply(proto::as_bytes(*raw));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? r.value() : proto::OrderReply{};
  }

  // The quote every test trades against: EURUSD 1.0850 / 1.0852.
  static proto::TickEvent quote() {
    return tp::test::a_tick("EURUSD", 1).bid_ask(1.0850, 1.0852).stamped(1'700'000'000'000'000'000);
  }

  // Publishes `tick` until the gateway's stats say it has one (PUB/SUB joins
  // late), bounded by 10 s.
  bool feed_quote(zmq::socket_t& pub, const proto::TickEvent& tick = quote()) {
    const auto payload = proto::encode_to_string(tick);
    const auto topic = proto::tick_topic(tick.instrument);
    return tp::test::wait_until(
        [&] {
          pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
          pub.send(zmq::buffer(payload), zmq::send_flags::none);
          return tp::test::json_number(stats(), "ticks_received") > 0;
        },
        std::chrono::seconds(10), std::chrono::milliseconds(30));
  }

  tp::test::TempDir dir;
  zmq::context_t ctx{1};
  proto::Decoder decoder;
};

}  // namespace tp::dll_gateway::test
