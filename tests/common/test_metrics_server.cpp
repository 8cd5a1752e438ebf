// MetricsServer over loopback tcp: 503 before the first snapshot, the
// snapshot then the process metrics after, a port taken by another server is
// a start-up error, and stop right after start returns.
#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "common/metrics.hpp"

namespace {

using tp::metrics::MetricsServer;

httplib::Result get(int port, const std::string& path = "/metrics") {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(5));
  return client.Get(path.c_str());
}

TEST(MetricsServer, ServesTheLastSnapshotThenTheProcessMetrics) {
  MetricsServer server("127.0.0.1", 0, {{"program", "test"}, {"process", "test-0"}});
  ASSERT_GT(server.port(), 0);

  auto before = get(server.port());
  ASSERT_TRUE(before) << httplib::to_string(before.error());
  EXPECT_EQ(before->status, 503);

  server.publish("# HELP tp_a_total A.\n# TYPE tp_a_total counter\ntp_a_total 1\n",
                 1'700'000'000'500'000'000);
  server.publish("# HELP tp_a_total A.\n# TYPE tp_a_total counter\ntp_a_total 2\n",
                 1'700'000'001'500'000'000);
  auto after = get(server.port());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(after->body.rfind("# HELP tp_a_total A.\n# TYPE tp_a_total counter\ntp_a_total 2\n", 0), 0u);
  EXPECT_NE(after->body.find("process_open_fds{program=\"test\",process=\"test-0\"} "), std::string::npos);
  EXPECT_NE(after->body.find("tp_metrics_snapshot_timestamp_seconds{program=\"test\",process=\"test-0\"} "
                             "1700000001.5\n"),
            std::string::npos);
  EXPECT_EQ(server.scrapes(), 2u);

  auto other = get(server.port(), "/other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

TEST(MetricsServer, APortInUseIsAStartError) {
  MetricsServer first("127.0.0.1", 0, {});
  try {
    MetricsServer second("127.0.0.1", first.port(), {});
    FAIL() << "a second server listened on port " << first.port();
  } catch (const tp::metrics::MetricsBindError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
              std::string::npos);
  }
  // The first one still answers.
  first.publish("", 0);
  auto res = get(first.port());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(MetricsServer, StopsRightAfterStartAndTwice) {
  MetricsServer server("127.0.0.1", 0, {});
  server.stop();
  server.stop();
  EXPECT_FALSE(get(server.port()));
}

}  // namespace
