// MetricsServer over loopback tcp: 503 before the first snapshot, the
// snapshot then the process metrics after, a port taken by another server is
// a start-up error, a client that connects and sends nothing does not hold
// up a scrape, and stop right after start returns.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

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

TEST(MetricsServer, HeadAnswersWithoutTheBodyAndOtherMethodsAre405) {
  MetricsServer server("127.0.0.1", 0, {});
  server.publish("tp_a 1\n", 0);
  httplib::Client client("127.0.0.1", server.port());
  auto head = client.Head("/metrics");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  auto post = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(server.scrapes(), 1u);
}

// Connected on loopback; the server has the connection once connect returns.
int connect_silently(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

TEST(MetricsServer, ClientsThatSendNothingDoNotHoldUpAScrape) {
  MetricsServer server("127.0.0.1", 0, {});
  server.publish("tp_a 1\n", 0);
  // Two silent clients take both workers until their 2 s deadline; the
  // scrape waits for that, no longer, and gets its answer.
  std::vector<int> silent{connect_silently(server.port()), connect_silently(server.port())};
  const auto start = std::chrono::steady_clock::now();
  auto res = get(server.port());
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  // The silent ones were closed without an answer.
  for (int fd : silent) {
    char c;
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
    ::close(fd);
  }
}

TEST(MetricsServer, StopsRightAfterStartAndTwice) {
  MetricsServer server("127.0.0.1", 0, {});
  server.stop();
  server.stop();
  EXPECT_FALSE(get(server.port()));
}

}  // namespace
