// common/http_get.hpp: what a request head says (complete or not, good or
// which error) and the exact bytes of a response.
#include <gtest/gtest.h>

#include <string>

#include "common/http_get.hpp"

namespace {

using tp::http::parse_request_head;

TEST(HttpGet, AScrapersHeadIsAGetOfItsPath) {
  const auto h = parse_request_head(
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Prometheus/2.42.0\r\n"
      "Accept-Encoding: gzip\r\n\r\n");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/metrics");
}

TEST(HttpGet, TheQueryIsNotPartOfThePath) {
  EXPECT_EQ(parse_request_head("GET /metrics?x=1 HTTP/1.0\r\n\r\n").path, "/metrics");
}

TEST(HttpGet, BareLineFeedsEndAHeadToo) {
  const auto h = parse_request_head("HEAD /metrics HTTP/1.1\nHost: x\n\n");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.method, "HEAD");
}

TEST(HttpGet, AHeadWithoutItsBlankLineIsIncomplete) {
  EXPECT_EQ(parse_request_head("").status, 0);
  EXPECT_EQ(parse_request_head("GET /metrics HTTP/1.1\r\nHost: x\r\n").status, 0);
  EXPECT_EQ(parse_request_head(std::string(tp::http::kMaxHeadBytes, 'a')).status, 0);
}

TEST(HttpGet, AnOversizedHeadIs431WithOrWithoutItsEnd) {
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(tp::http::kMaxHeadBytes, 'a');
  EXPECT_EQ(parse_request_head(big).status, 431);
  EXPECT_EQ(parse_request_head(big + "\r\n\r\n").status, 431);
}

TEST(HttpGet, BadRequestLinesAre400) {
  for (const char* bad :
       {"\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n", "GET /metrics FTP/1.1\r\n\r\n",
        "G(T /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/11\r\n\r\n"})
    EXPECT_EQ(parse_request_head(bad).status, 400) << bad;
}

TEST(HttpGet, OtherMethodsAre405AndOtherVersions505) {
  EXPECT_EQ(parse_request_head("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status, 405);
  EXPECT_EQ(parse_request_head("GET /metrics HTTP/2.0\r\n\r\n").status, 505);
}

TEST(HttpGet, AResponseAnnouncesItsLengthAndCloses) {
  EXPECT_EQ(tp::http::response(200, "text/plain", "abc\n"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\nabc\n");
  EXPECT_EQ(tp::http::response(503, "text/plain", "abc\n", /*head_only=*/true),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_NE(tp::http::response(405, "text/plain", "").find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
}

}  // namespace
