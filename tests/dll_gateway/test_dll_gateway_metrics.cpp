// dll_gateway's metrics without sockets: the text add_dll_gateway_metrics
// renders from a figures struct, and the desk timing each broker call (a
// broker that takes a known time on a fake clock).
#include <gtest/gtest.h>

#include <string>

#include "common/clock.hpp"
#include "dll_gateway/dll_gateway_metrics.hpp"
#include "dll_gateway/order_desk.hpp"
#include "dll_gateway/order_store.hpp"
#include "test_support/builders.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::dll_gateway;
using tp::metrics::MetricsText;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

// Fills everything; each submit takes 3 ms and each query 200 us of the
// fake clock's time.
class TimedBroker final : public Broker {
 public:
  explicit TimedBroker(tp::FakeClock& clock) : clock_(clock) {}
  BrokerAnswer submit(const tp::proto::OrderRequest& o) override {
    clock_.advance_ms(3);
    BrokerAnswer a;
    a.ok = true;
    a.reply.client_order_id = o.client_order_id;
    a.reply.status = tp::proto::OrderStatus::filled;
    a.reply.filled_quantity = o.quantity;
    a.reply.fill_price = 1.5;
    a.reply.broker_ts_ns = clock_.now_ns();
    return a;
  }
  BrokerAnswer query(const std::string& id) override {
    clock_.advance_ns(200'000);
    BrokerAnswer a;
    a.ok = true;
    a.reply.client_order_id = id;
    a.reply.status = tp::proto::OrderStatus::unknown;
    return a;
  }

 private:
  tp::FakeClock& clock_;
};

}  // namespace

TEST(DllGatewayMetrics, RendersTheFiguresWithTheirNames) {
  DllGatewayFigures f;
  f.desk.orders_received = 10;
  f.desk.duplicates = 2;
  f.desk.submitted = 8;
  f.desk.fills = 7;
  f.desk.rejects = 1;
  f.desk.rejects_by_reason = {{"stale quote", 1}};
  f.node.reports.sent = 8;
  f.node.replies.dropped = 1;
  f.report_seq = 8;
  f.store_checkpoints = 4;
  f.dead_letters_sent = 3;
  f.dead_letters_by_reason = {{"bad_frames", 3}};

  MetricsText m({{"program", "dll_gateway"}, {"process", "dll_gateway"}});
  add_dll_gateway_metrics(m, f);
  const std::string& t = m.str();
  const std::string l = "{program=\"dll_gateway\",process=\"dll_gateway\"";
  for (const std::string& line : {
           "tp_dll_gateway_orders_received_total" + l + "} 10",
           "tp_dll_gateway_duplicates_total" + l + "} 2",
           "tp_dll_gateway_orders_submitted_total" + l + "} 8",
           "tp_dll_gateway_fills_total" + l + "} 7",
           "tp_dll_gateway_rejects_by_reason_total" + l + ",reason=\"stale quote\"} 1",
           "tp_dll_gateway_reports_published_total" + l + "} 8",
           "tp_dll_gateway_replies_dropped_total" + l + "} 1",
           "tp_dll_gateway_report_seq" + l + "} 8",
           "tp_dll_gateway_store_checkpoints_total" + l + "} 4",
           "tp_dead_letters_sent_total" + l + "} 3",
           "tp_dead_letters_dropped_total" + l + "} 0",
           "tp_dll_gateway_dead_letters_total" + l + ",reason=\"bad_frames\"} 3",
       })
    EXPECT_TRUE(has_line(t, line)) << line << "\n" << t;
  EXPECT_TRUE(has_line(t, "# TYPE tp_dll_gateway_report_seq gauge"));
}

TEST(DllGatewayMetrics, TheDeskTimesEachBrokerCall) {
  tp::test::TempDir dir;
  tp::FakeClock clock;
  TimedBroker broker(clock);
  OrderStore store(dir.file("dg.db"));
  OrderDesk desk(store, broker, clock);
  desk.handle(tp::proto::OrderRequest(tp::test::an_order("C-1").signal_id("s")));
  desk.handle(tp::proto::OrderRequest(tp::test::an_order("C-2").signal_id("s")));
  tp::proto::OrderQuery q;
  q.client_order_id = "C-unknown";
  desk.handle(q);  // no row: asks the broker

  const auto submit = desk.broker_latency(BrokerCall::submit).sample();
  EXPECT_EQ(submit.count, 2u);
  EXPECT_DOUBLE_EQ(submit.sum, 0.006);
  EXPECT_EQ(desk.broker_latency(BrokerCall::query).sample().count, 1u);
  EXPECT_EQ(desk.broker_latency(BrokerCall::cancel).sample().count, 0u);

  MetricsText m;
  add_broker_call_metrics(m, desk);
  const std::string& t = m.str();
  EXPECT_TRUE(has_line(t, "tp_dll_gateway_broker_call_seconds_bucket{call=\"submit\",le=\"0.0025\"} 0")) << t;
  EXPECT_TRUE(has_line(t, "tp_dll_gateway_broker_call_seconds_bucket{call=\"submit\",le=\"0.005\"} 2"));
  EXPECT_TRUE(has_line(t, "tp_dll_gateway_broker_call_seconds_count{call=\"query\"} 1"));
  EXPECT_TRUE(has_line(t, "tp_dll_gateway_broker_call_seconds_count{call=\"cancel\"} 0"));
}
