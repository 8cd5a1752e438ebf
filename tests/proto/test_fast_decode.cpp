// The fast decode path (bytes read in place) against the reference path
// (msgpack-c unpack + object tree): for every input both must give the same
// value or the same error code and detail. Also: which inputs the fast path
// takes itself (valid messages in every msgpack form a sender may use), and
// that decode_into allocates nothing in steady state.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <msgpack.hpp>
#include <new>
#include <string>
#include <vector>

#include "proto/codec.hpp"

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
// GCC pairs the free() below with the builtin new, not the malloc() above.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using tp::proto::Bytes;
using tp::proto::DecodePath;
using tp::proto::Decoder;
using tp::proto::ErrorCode;

// One decoder entry point per message type, by name, for table-driven tests.
struct Kind {
  const char* name;
  std::string sample;  // a valid payload
  // Decodes with `d`; "" for a value equal to the sample's decode, else "code: detail".
  std::function<std::string(Decoder&, Bytes)> describe;
  unsigned optional_fields = 0;  // trailing fields a reader may go without
};

template <class T>
std::function<std::string(Decoder&, Bytes)> describer(tp::proto::Result<T> (Decoder::*fn)(Bytes)) {
  return [fn](Decoder& d, Bytes b) -> std::string {
    auto r = (d.*fn)(b);
    if (!r.ok()) return r.error().message();
    // Re-encode: equal values give equal bytes (the encoder is canonical).
    return "ok:" + tp::proto::encode_to_string(r.value());
  };
}

std::vector<Kind> kinds() {
  std::vector<Kind> k;
  k.push_back({"tick",
               tp::proto::encode_to_string(tp::proto::TickEvent{.instrument = "EURUSD",
                                                                .bid = 1.08501,
                                                                .ask = 1.08512,
                                                                .bid_volume = 1.5,
                                                                .ask_volume = 2.25,
                                                                .source_ts_ns = 1'700'000'000'000'000'000,
                                                                .seq = 42,
                                                                .gateway_ts_ns = 1'700'000'000'000'001'000}),
               describer(&Decoder::decode_tick)});
  k.push_back({"heartbeat",
               tp::proto::encode_to_string(
                   tp::proto::Heartbeat{.source = "gateway", .seq = 3, .ts_ns = -5, .ticks_sent = 7}),
               describer(&Decoder::decode_heartbeat)});
  k.push_back(
      {"signal",
       tp::proto::encode_to_string(tp::proto::TradingSignal{.signal_id = "sma_crossover.0.1700000000000.7",
                                                            .strategy = "sma_crossover",
                                                            .instance = 70000,
                                                            .instrument = "EURUSD",
                                                            .action = tp::proto::Side::sell,
                                                            .quantity = 1000,
                                                            .trigger_price = 1.085,
                                                            .confidence = 0.75,
                                                            .created_ts_ns = 100,
                                                            .expires_ts_ns = 200,
                                                            .causation_seq = 9,
                                                            .causation_ts_ns = -90,
                                                            .order_type = tp::proto::OrderType::limit,
                                                            .limit_price = 1.0845,
                                                            .time_in_force = tp::proto::TimeInForce::gtd,
                                                            .good_till_ns = 300}),
       describer(&Decoder::decode_signal), 4});
  k.push_back(
      {"order_request",
       tp::proto::encode_to_string(tp::proto::OrderRequest{.client_order_id = "C-x",
                                                           .signal_id = "x",
                                                           .instrument = "GBPUSD",
                                                           .side = tp::proto::Side::buy,
                                                           .quantity = 10.5,
                                                           .price_hint = 1.2,
                                                           .sent_ts_ns = 4,
                                                           .expires_ts_ns = 5,
                                                           .order_type = tp::proto::OrderType::limit,
                                                           .limit_price = 1.25,
                                                           .time_in_force = tp::proto::TimeInForce::gtc}),
       describer(&Decoder::decode_order_request), 5});
  k.push_back({"order_query",
               tp::proto::encode_to_string(tp::proto::OrderQuery{.client_order_id = "C-x", .sent_ts_ns = 4}),
               describer(&Decoder::decode_order_query)});
  k.push_back(
      {"order_reply",
       tp::proto::encode_to_string(tp::proto::OrderReply{.client_order_id = "C-x",
                                                         .order_id = "B-1",
                                                         .status = tp::proto::OrderStatus::partially_filled,
                                                         .filled_quantity = 3.5,
                                                         .fill_price = 1.26,
                                                         .reason = "ioc remainder canceled",
                                                         .duplicate = true,
                                                         .broker_ts_ns = 8}),
       describer(&Decoder::decode_order_reply)});
  k.push_back({"order_event",
               tp::proto::encode_to_string(tp::proto::OrderEvent{.order_id = "B-1",
                                                                 .client_order_id = "C-x",
                                                                 .signal_id = "x",
                                                                 .instrument = "GBPUSD",
                                                                 .side = tp::proto::Side::sell,
                                                                 .status = tp::proto::OrderStatus::filled,
                                                                 .quantity = 10,
                                                                 .filled_quantity = 10,
                                                                 .fill_price = 1.25,
                                                                 .reason = "",
                                                                 .created_ts_ns = 1,
                                                                 .event_ts_ns = 2,
                                                                 .causation_ts_ns = 3}),
               describer(&Decoder::decode_order_event)});
  k.push_back({"signal_ack",
               tp::proto::encode_to_string(tp::proto::SignalAck{.signal_id = "x",
                                                                .status = tp::proto::AckStatus::duplicate,
                                                                .reason = "seen",
                                                                .ts_ns = 9,
                                                                .cancel = true}),
               describer(&Decoder::decode_signal_ack), 1});
  k.push_back({"dead_letter",
               tp::proto::encode_to_string(tp::proto::DeadLetter{.source = "executor",
                                                                 .reason = "malformed",
                                                                 .detail = "d",
                                                                 .ts_ns = 1,
                                                                 .original = std::string("\x00\xff\xc1", 3),
                                                                 .key = "signal/x"}),
               describer(&Decoder::decode_dead_letter), 1});
  k.push_back(
      {"position_query",
       tp::proto::encode_to_string(tp::proto::PositionQuery{.instrument = "EURUSD", .sent_ts_ns = -3}),
       describer(&Decoder::decode_position_query)});
  k.push_back({"position_reply",
               tp::proto::encode_to_string(tp::proto::PositionReply{
                   .instrument = "EURUSD", .known = true, .quantity = -1500.25, .reason = "r", .ts_ns = 4}),
               describer(&Decoder::decode_position_reply)});
  k.push_back({"strategy_position",
               tp::proto::encode_to_string(tp::proto::StrategyPosition{
                   .strategy = "trend", .instrument = "EURUSD", .quantity = -2500.5, .ts_ns = 6}),
               describer(&Decoder::decode_strategy_position)});
  k.push_back({"cancel_request",
               tp::proto::encode_to_string(tp::proto::CancelRequest{
                   .signal_id = "x", .strategy = "trend", .instance = 3, .reason = "r", .created_ts_ns = -2}),
               describer(&Decoder::decode_cancel_request)});
  k.push_back({"order_cancel",
               tp::proto::encode_to_string(
                   tp::proto::OrderCancel{.client_order_id = "C-x", .reason = "r", .sent_ts_ns = 5}),
               describer(&Decoder::decode_order_cancel)});
  const tp::proto::ExecutionReport report{.stream = "S",
                                          .seq = 70000,
                                          .client_order_id = "C-x",
                                          .order_id = "B-1",
                                          .instrument = "EURUSD",
                                          .side = tp::proto::Side::sell,
                                          .status = tp::proto::OrderStatus::expired,
                                          .quantity = 10,
                                          .last_quantity = 2.5,
                                          .last_price = 1.25,
                                          .filled_quantity = 7.5,
                                          .avg_price = 1.2525,
                                          .reason = "good till passed",
                                          .broker_ts_ns = 1,
                                          .ts_ns = 2,
                                          .quote_seq = 3,
                                          .quote_ts_ns = -4};
  k.push_back({"execution_report", tp::proto::encode_to_string(report),
               describer(&Decoder::decode_execution_report)});
  k.push_back({"report_query",
               tp::proto::encode_to_string(
                   tp::proto::ReportQuery{.from_seq = 1ull << 40, .max_count = 256, .sent_ts_ns = 6}),
               describer(&Decoder::decode_report_query)});
  tp::proto::ReportBatch batch{.stream = "S", .last_seq = 9, .complete = false, .reason = "", .ts_ns = 7};
  tp::proto::append_report(batch, tp::proto::encode_to_string(report));
  k.push_back({"report_batch", tp::proto::encode_to_string(batch), describer(&Decoder::decode_report_batch)});
  k.push_back({"open_orders_query",
               tp::proto::encode_to_string(tp::proto::OpenOrdersQuery{.offset = 64, .sent_ts_ns = 8}),
               describer(&Decoder::decode_open_orders_query)});
  k.push_back(
      {"portfolio_event",
       tp::proto::encode_to_string(tp::proto::PortfolioEvent{.account_currency = "USD",
                                                             .equity = 1000250,
                                                             .realized_pnl = 331.25,
                                                             .unrealized_pnl = -81.25,
                                                             .daily_pnl = -1250.75,
                                                             .day_start_ns = 1699920000000000000,
                                                             .complete = false,
                                                             .state = tp::proto::TradingState::reducing,
                                                             .open_orders = 70000,
                                                             .ts_ns = -9}),
       describer(&Decoder::decode_portfolio_event)});
  k.push_back({"instrument_pnl",
               tp::proto::encode_to_string(tp::proto::InstrumentPnl{.instrument = "USDJPY",
                                                                    .quote_currency = "JPY",
                                                                    .position = -2500,
                                                                    .avg_price = 151.234,
                                                                    .mark_price = 151.25,
                                                                    .realized_pnl = 12345.5,
                                                                    .unrealized_pnl = -40,
                                                                    .rate_to_account = 0.0066,
                                                                    .realized_account = 81.5,
                                                                    .unrealized_account = -0.25,
                                                                    .ts_ns = 10}),
               describer(&Decoder::decode_instrument_pnl)});
  k.push_back(
      {"control_request",
       tp::proto::encode_to_string(tp::proto::ControlRequest{.command = tp::proto::ControlCommand::halt,
                                                             .reason = "spread blew out",
                                                             .sent_by = "tpctl:alice@host",
                                                             .sent_ts_ns = 11}),
       describer(&Decoder::decode_control_request)});
  k.push_back(
      {"control_reply",
       tp::proto::encode_to_string(tp::proto::ControlReply{.ok = true,
                                                           .state = tp::proto::TradingState::halted,
                                                           .cause = "HALT by tpctl:alice@host: spread",
                                                           .since_ns = 12,
                                                           .flatten_pending = true,
                                                           .open_orders = 3,
                                                           .detail = "d",
                                                           .ts_ns = -13}),
       describer(&Decoder::decode_control_reply)});
  return k;
}

std::string peek(Decoder& d, Bytes b) {
  auto r = d.peek_type(b);
  return r.ok() ? "ok:" + std::string(tp::proto::to_string(r.value())) : r.error().message();
}

// Both paths on one input; returns the fast path's answer.
std::string expect_same(const Kind& k, const std::string& bytes, const std::string& what) {
  Decoder fast;
  Decoder reference(DecodePath::reference);
  auto a = k.describe(fast, tp::proto::as_bytes(bytes));
  auto b = k.describe(reference, tp::proto::as_bytes(bytes));
  EXPECT_EQ(a, b) << k.name << ", " << what;
  EXPECT_EQ(peek(fast, tp::proto::as_bytes(bytes)), peek(reference, tp::proto::as_bytes(bytes)))
      << k.name << ", " << what;
  return a;
}

// The envelope header's size: a fixarray (up to 15 elements) or an array16
// (a signal with its terms has 18).
std::size_t header_size(const std::string& payload) {
  return static_cast<unsigned char>(payload[0]) == 0xdc ? std::min<std::size_t>(3, payload.size()) : 1;
}

// The payload with its header saying `n` elements: fixarray below 16, array16
// from 16.
std::string with_count(const std::string& payload, unsigned n) {
  const auto body = payload.substr(header_size(payload));
  if (n < 16) return static_cast<char>(0x90 | n) + body;
  return std::string("\xdc\x00", 2) + static_cast<char>(n) + body;
}

unsigned count_of(const std::string& payload) {
  const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  return p[0] == 0xdc ? (p[1] << 8 | p[2]) : (p[0] & 0x0f);
}

// `levels` arrays nested inside each other around a 1, e.g. 2 -> 0x91 0x91 0x01.
std::string nested(int levels) { return std::string(static_cast<std::size_t>(levels), '\x91') + '\x01'; }

TEST(FastDecode, ValidMessagesNeverReachTheReferencePath) {
  for (const auto& k : kinds()) {
    Decoder d;
    EXPECT_EQ(k.describe(d, tp::proto::as_bytes(k.sample)).substr(0, 3), "ok:") << k.name;
    EXPECT_EQ(peek(d, tp::proto::as_bytes(k.sample)).substr(0, 3), "ok:") << k.name;
    EXPECT_EQ(d.reference_decodes(), 0u) << k.name;
  }
}

TEST(FastDecode, EveryTruncationIsRefusedLikeTheReference) {
  for (const auto& k : kinds()) {
    for (std::size_t n = 0; n < k.sample.size(); ++n) {
      auto cut = k.sample.substr(0, n);
      auto got = expect_same(k, cut, "cut at " + std::to_string(n));
      EXPECT_EQ(got.rfind("malformed", 0), 0u) << k.name << " cut at " << n << ": " << got;
      // The same prefix with the array header shrunk to the fields it holds
      // completely is a short message: missing_field, never a crash.
    }
    for (unsigned n = 0; n < count_of(k.sample); ++n) {
      auto got = expect_same(k, with_count(k.sample, n), "count " + std::to_string(n));
      EXPECT_EQ(got.rfind("ok:", 0), std::string::npos) << k.name << " count " << n;
    }
  }
}

TEST(FastDecode, ShortEnvelopesAreMissingFields) {
  for (const auto& k : kinds()) {
    // Keep the first `fields` elements whole and say so in the header.
    Decoder probe;
    const unsigned total = count_of(k.sample) - k.optional_fields;
    for (unsigned keep = 2; keep < total; ++keep) {
      // Find where element `keep` starts by decoding prefixes: the shortest
      // prefix that the reference accepts with count `keep` as a complete
      // msgpack object.
      for (std::size_t len = 1; len <= k.sample.size(); ++len) {
        auto candidate = with_count(k.sample.substr(0, len), keep);
        Decoder ref(DecodePath::reference);
        auto r = k.describe(ref, tp::proto::as_bytes(candidate));
        if (r.rfind("malformed", 0) == 0) continue;
        auto got = expect_same(k, candidate, "keep " + std::to_string(keep));
        EXPECT_EQ(got.rfind("missing_field", 0), 0u) << k.name << " keep " << keep << ": " << got;
        break;
      }
    }
  }
}

TEST(FastDecode, EverySingleByteMutationMatchesTheReference) {
  const unsigned char values[] = {0x00, 0x01, 0x7f, 0x80, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                  0xc2, 0xc3, 0xc4, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4,
                                  0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
  for (const auto& k : kinds()) {
    for (std::size_t i = 0; i < k.sample.size(); ++i) {
      for (auto v : values) {
        auto m = k.sample;
        m[i] = static_cast<char>(v);
        expect_same(k, m, "byte " + std::to_string(i) + " = " + std::to_string(v));
      }
      auto flipped = k.sample;
      flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
      expect_same(k, flipped, "byte " + std::to_string(i) + " flipped");
    }
  }
}

// Appended unknown fields: skipped within msgpack-c's limits, refused beyond.
TEST(FastDecode, AppendedFieldsAreSkippedWithinTheLimits) {
  struct Extra {
    const char* what;
    std::string bytes;
    bool fast_takes_it;  // false: the reference path decides (error or ext)
  };
  std::string map64("\xde\x00\x40", 3);
  for (int i = 0; i < 64; ++i) map64 += std::string(1, static_cast<char>(i)) + "\xc0";
  std::string map65("\xde\x00\x41", 3);
  for (int i = 0; i < 65; ++i) map65 += std::string(1, static_cast<char>(i)) + "\xc0";
  const std::vector<Extra> extras{
      {"nil", "\xc0", true},
      {"true", "\xc3", true},
      {"str8",
       std::string("\xd9\x03"
                   "abc"),
       true},
      {"str16",
       std::string("\xda\x00\x03"
                   "abc",
                   6),
       true},
      {"bin8", std::string("\xc4\x02\x00\x01", 4), true},
      {"float32", std::string("\xca\x3f\x80\x00\x00", 5), true},
      {"int64", std::string("\xd3\xff\xff\xff\xff\xff\xff\xff\xff", 9), true},
      {"array depth 2", nested(1), true},
      {"array depth 4", nested(3), true},
      {"array depth 5", nested(4), false},
      {"map depth 4", std::string("\x81\x01\x81\x01\x91\x01"), true},
      {"map depth 5", std::string("\x81\x01\x81\x01\x81\x01\x91\x01"), false},
      {"array 64", std::string("\xdc\x00\x40", 3) + std::string(64, '\x01'), true},
      {"array 65", std::string("\xdc\x00\x41", 3) + std::string(65, '\x01'), false},
      {"map 64", map64, true},
      {"map 65", map65, false},
      {"fixext", std::string("\xd4\x01\x02", 3), false},
      {"ext8", std::string("\xc7\x01\x05\x09", 4), false},
      {"never used", "\xc1", false},
      {"truncated str",
       std::string("\xd9\x09"
                   "abc"),
       false},
  };
  for (const auto& k : kinds()) {
    for (const auto& e : extras) {
      auto m = with_count(k.sample, count_of(k.sample) + 1) + e.bytes;
      Decoder fast;
      auto got = expect_same(k, m, e.what);
      EXPECT_EQ(fast.reference_decodes(), 0u);
      (void)k.describe(fast, tp::proto::as_bytes(m));
      EXPECT_EQ(fast.reference_decodes() == 0, e.fast_takes_it) << k.name << ", " << e.what << ": " << got;
      // And with trailing bytes after the envelope: always malformed.
      auto trailing = expect_same(k, m + "\x01", std::string(e.what) + " + trailing byte");
      EXPECT_EQ(trailing.rfind("malformed", 0), 0u) << k.name << ", " << e.what;
    }
  }
}

// Every msgpack form a sender may use for a number decodes on the fast path to
// the value the reference gives.
// Packs each value in the exact msgpack form asked for, as another sender
// (not msgpack-c's smallest-form packer) might.
struct Raw {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p{buf};
  explicit Raw(std::uint32_t n) { p.pack_array(n); }
  std::string str() const { return {buf.data(), buf.size()}; }
};

TEST(FastDecode, AcceptsEveryIntegerAndFloatForm) {
  const Kind tick = kinds()[0];
  std::vector<std::pair<const char*, std::string>> cases;
  {
    Raw r(10);  // signed forms holding non-negative values read as unsigned
    r.p.pack_fix_int8(1)
        .pack_fix_int16(1)
        .pack(std::string("USDJPY"))
        .pack_fix_int32(151)
        .pack_fix_int64(152);
    r.p.pack_fix_int8(0).pack_fix_int16(2).pack_fix_int64(-5).pack_fix_int64(1).pack_fix_int32(-6);
    cases.emplace_back("signed forms", r.str());
  }
  {
    Raw r(10);
    r.p.pack_fix_uint64(1)
        .pack_fix_uint32(1)
        .pack(std::string("USDJPY"))
        .pack_fix_uint16(300)
        .pack_fix_uint32(70000);
    r.p.pack_fix_uint8(200)
        .pack_fix_uint64(std::uint64_t{1} << 40)
        .pack_fix_int64(std::numeric_limits<std::int64_t>::min());
    r.p.pack_fix_uint64(std::numeric_limits<std::uint64_t>::max())
        .pack_fix_uint64(std::numeric_limits<std::int64_t>::max());
    cases.emplace_back("wide unsigned forms", r.str());
  }
  {
    Raw r(10);
    r.p.pack(1).pack(1).pack(std::string("USDJPY")).pack_float(1.5f).pack_float(2.25f).pack_float(-0.0f);
    r.p.pack_float(1e30f).pack_fix_int8(-1).pack(1).pack_fix_int16(-300);
    cases.emplace_back("float32 and negative forms", r.str());
  }
  {
    Raw r(10);  // a negative volume: refused by validate(), still on the fast path
    r.p.pack(1)
        .pack(1)
        .pack(std::string("USDJPY"))
        .pack(1.5)
        .pack(2.5)
        .pack(-3)
        .pack(0)
        .pack(1)
        .pack(1)
        .pack(1);
    cases.emplace_back("negative fixint volume", r.str());
  }
  {
    Raw r(10);  // str16 instrument
    r.p.pack(1).pack(1).pack_str(6).pack_str_body("USDJPY", 6);
    r.p.pack(1.5).pack(2.5).pack(0).pack(0).pack(1).pack(1).pack(1);
    auto s = r.str();
    s.replace(3, 1, std::string("\xda\x00\x06", 3));  // fixstr header -> str16
    cases.emplace_back("str16 instrument", s);
  }
  for (const auto& [what, bytes] : cases) {
    Decoder fast;
    auto got = expect_same(tick, bytes, what);
    (void)tick.describe(fast, tp::proto::as_bytes(bytes));
    EXPECT_EQ(fast.reference_decodes(), 0u) << what << ": " << got;
  }
  EXPECT_EQ(expect_same(tick, cases[0].second, "").substr(0, 3), "ok:");
  EXPECT_EQ(expect_same(tick, cases[1].second, "").substr(0, 3), "ok:");
  EXPECT_EQ(expect_same(tick, cases[2].second, "").substr(0, 3), "ok:");
  EXPECT_EQ(expect_same(tick, cases[3].second, "").rfind("out_of_range", 0), 0u);
  // gateway_ts_ns above int64 is out of range for the reference and the fast path.
  Raw big(10);
  big.p.pack(1).pack(1).pack(std::string("USDJPY")).pack(1.5).pack(2.5).pack(1).pack(1).pack(1).pack(1);
  big.p.pack(std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(expect_same(tick, big.str(), "i64 overflow").rfind("out_of_range", 0), 0u);
}

TEST(FastDecode, DecodeIntoReusesTheMessageWithoutAllocating) {
  tp::proto::TradingSignal s{.signal_id = "a-signal-id-well-beyond-the-small-string-buffer",
                             .strategy = "sma_crossover_long_name",
                             .instance = 1,
                             .instrument = "EURUSD",
                             .action = tp::proto::Side::buy,
                             .quantity = 1,
                             .trigger_price = 1.1,
                             .confidence = 0.5,
                             .created_ts_ns = 1,
                             .expires_ts_ns = 2,
                             .causation_seq = 3,
                             .causation_ts_ns = 4};
  const auto bytes = tp::proto::encode_to_string(s);
  Decoder d;
  tp::proto::TradingSignal out;
  ASSERT_FALSE(d.decode_into(tp::proto::as_bytes(bytes), out).has_value());  // warms the strings' capacity
  const auto before = g_allocs.load();
  for (int i = 0; i < 1000; ++i) {
    auto err = d.decode_into(tp::proto::as_bytes(bytes), out);
    ASSERT_FALSE(err.has_value());
  }
  EXPECT_EQ(g_allocs.load() - before, 0u);
  EXPECT_EQ(out, s);

  // A tick with a short instrument allocates nothing even through Result.
  const auto tick = kinds()[0].sample;
  const auto before_tick = g_allocs.load();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(d.decode_tick(tp::proto::as_bytes(tick)).ok());
  EXPECT_EQ(g_allocs.load() - before_tick, 0u);
}

TEST(FastDecode, ErrorsFromDecodeIntoMatchTheResultForm) {
  const auto bytes = tp::proto::encode_to_string(
      tp::proto::SignalAck{.signal_id = "", .status = tp::proto::AckStatus::accepted});
  Decoder d;
  tp::proto::SignalAck out;
  auto err = d.decode_into(tp::proto::as_bytes(bytes), out);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, ErrorCode::out_of_range);
  EXPECT_EQ(err->message(), d.decode_signal_ack(tp::proto::as_bytes(bytes)).error().message());
}

}  // namespace
