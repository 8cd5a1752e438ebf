// The encoder's BytePacker must write exactly what msgpack-c's packer writes
// (peers, test vectors and the reference decoder were all built on it): each
// call is compared byte for byte at every format boundary.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "proto/byte_packer.hpp"
#include "proto/codec.hpp"

namespace {

template <class Write>
void expect_same_bytes(Write write, const std::string& what) {
  std::vector<char> buf(3, 'g');  // small and dirty: packing grows and overwrites it
  tp::proto::BytePacker packer(buf);
  write(packer);
  msgpack::sbuffer theirs;
  msgpack::packer<msgpack::sbuffer> reference(theirs);
  write(reference);
  EXPECT_EQ(packer.view(), std::string_view(theirs.data(), theirs.size())) << what;
}

TEST(BytePacker, IntegersMatchMsgpackAtEveryBoundary) {
  const std::vector<std::int64_t> signed_values = {0,
                                                   1,
                                                   31,
                                                   32,
                                                   127,
                                                   128,
                                                   255,
                                                   256,
                                                   65535,
                                                   65536,
                                                   4294967295LL,
                                                   4294967296LL,
                                                   std::numeric_limits<std::int64_t>::max(),
                                                   -1,
                                                   -31,
                                                   -32,
                                                   -33,
                                                   -127,
                                                   -128,
                                                   -129,
                                                   -32767,
                                                   -32768,
                                                   -32769,
                                                   -2147483647LL,
                                                   -2147483648LL,
                                                   -2147483649LL,
                                                   std::numeric_limits<std::int64_t>::min()};
  for (auto v : signed_values) {
    expect_same_bytes([v](auto& p) { p.pack(v); }, "int64 " + std::to_string(v));
  }
  const std::vector<std::uint64_t> unsigned_values = {
      0,     127,   128,           255,           256,
      65535, 65536, 4294967295ULL, 4294967296ULL, std::numeric_limits<std::uint64_t>::max()};
  for (auto v : unsigned_values) {
    expect_same_bytes([v](auto& p) { p.pack(v); }, "uint64 " + std::to_string(v));
    const auto v32 = static_cast<std::uint32_t>(v);
    expect_same_bytes([v32](auto& p) { p.pack(v32); }, "uint32 " + std::to_string(v32));
    const auto v8 = static_cast<std::uint8_t>(v);
    expect_same_bytes([v8](auto& p) { p.pack(v8); }, "uint8 " + std::to_string(v8));
  }
}

TEST(BytePacker, DoublesAndBoolsMatchMsgpack) {
  // msgpack-c packs whole numbers as integers: the boundaries of that rule too.
  for (double v : {0.0,
                   -0.0,
                   1.0850,
                   -3.5,
                   -0.5,
                   1e6,
                   -1e6,
                   127.0,
                   -32.0,
                   -33.0,
                   9223372036854775808.0,
                   -9223372036854775808.0,
                   18446744073709549568.0,
                   18446744073709551616.0,
                   1e19,
                   -1e19,
                   1e300,
                   5e-324,
                   std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()}) {
    expect_same_bytes([v](auto& p) { p.pack(v); }, "double " + std::to_string(v));
  }
  expect_same_bytes([](auto& p) { p.pack(true).pack(false); }, "bools");
}

TEST(BytePacker, StringsArraysAndBinMatchMsgpackAtEveryLengthBoundary) {
  for (std::size_t n : {0, 1, 31, 32, 255, 256, 65535, 65536, 70000}) {
    const std::string s(n, 'x');
    expect_same_bytes([&s](auto& p) { p.pack(s); }, "str of " + std::to_string(n));
    expect_same_bytes(
        [&s](auto& p) {
          p.pack_bin(static_cast<std::uint32_t>(s.size()));
          p.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
        },
        "bin of " + std::to_string(n));
  }
  for (std::uint32_t n : {0u, 15u, 16u, 65535u, 65536u}) {
    expect_same_bytes([n](auto& p) { p.pack_array(n); }, "array of " + std::to_string(n));
  }
}

TEST(BytePacker, EncoderOutputOfATickIsMsgpackOfItsFields) {
  tp::proto::TickEvent t;
  t.instrument = "EURUSD";
  t.bid = 1.0850;
  t.ask = 1.0851;
  t.bid_volume = 1e6;
  t.ask_volume = 2.5e6;
  t.source_ts_ns = 1'750'000'000'000'000'000;
  t.seq = 300;
  t.gateway_ts_ns = 1'750'000'000'000'000'123;
  msgpack::sbuffer expected;
  msgpack::packer<msgpack::sbuffer> p(expected);
  p.pack_array(10);
  p.pack(static_cast<std::uint8_t>(tp::proto::MsgType::tick)).pack(tp::proto::schema_version);
  p.pack(t.instrument)
      .pack(t.bid)
      .pack(t.ask)
      .pack(t.bid_volume)
      .pack(t.ask_volume)
      .pack(t.source_ts_ns)
      .pack(t.seq)
      .pack(t.gateway_ts_ns);
  tp::proto::Encoder enc;
  EXPECT_EQ(enc.encode(t), std::string_view(expected.data(), expected.size()));
  t.instrument = "GBPUSD";  // the buffer is reused: the second message replaces the first
  EXPECT_EQ(enc.encode(t).size(), expected.size());
  EXPECT_EQ(enc.encode(t).substr(4, 6), "GBPUSD");
}

}  // namespace
