#include <gtest/gtest.h>

#include "dead_letter/sink.hpp"

namespace {

TEST(DeadLetterSink, Base64MatchesRfc4648Vectors) {
  using tp::dead_letter::base64_encode;
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(DeadLetterSink, FormatsUtcWithNanoseconds) {
  EXPECT_EQ(tp::dead_letter::format_utc(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(tp::dead_letter::format_utc(1'700'000'000'123'456'789), "2023-11-14T22:13:20.123456789Z");
}

TEST(DeadLetterSink, JsonLineKeepsEverything) {
  tp::proto::DeadLetter d{.source = "strategy:1",
                          .reason = "malformed",
                          .detail = "bad \"frame\"\n",
                          .ts_ns = 0,
                          .original = std::string("\x00\x01", 2)};
  EXPECT_EQ(
      tp::dead_letter::to_json_line(d),
      R"({"ts_ns":0,"time":"1970-01-01T00:00:00.000000000Z","source":"strategy:1","reason":"malformed",)"
      R"("detail":"bad \"frame\"\n","original_size":2,"original_b64":"AAE="})");
}

TEST(DeadLetterSink, JsonLineNamesTheKeyAfterTheDetail) {
  tp::proto::DeadLetter d{.source = "executor",
                          .reason = "trading_halted",
                          .detail = "refused",
                          .ts_ns = 0,
                          .original = "",
                          .key = "signal/s\"1"};
  EXPECT_EQ(
      tp::dead_letter::to_json_line(d, false),
      R"({"ts_ns":0,"time":"1970-01-01T00:00:00.000000000Z","source":"executor","reason":"trading_halted",)"
      R"("detail":"refused","key":"signal/s\"1","original_size":0,"original_b64":"","original_stored":false})");
}

}  // namespace
