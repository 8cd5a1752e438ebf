#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <msgpack.hpp>
#include <string>
#include <utility>
#include <vector>

#include "proto/codec.hpp"

namespace {

using tp::proto::ErrorCode;

tp::proto::TickEvent sample_tick() {
  return {.instrument = "EURUSD",
          .bid = 1.08501,
          .ask = 1.08512,
          .bid_volume = 1.5,
          .ask_volume = 2.25,
          .source_ts_ns = 1'700'000'000'000'000'000,
          .seq = 42,
          .gateway_ts_ns = 1'700'000'000'000'001'000};
}

tp::proto::TradingSignal sample_signal() {
  return {.signal_id = "sma_crossover.0.1700000000000.7",
          .strategy = "sma_crossover",
          .instance = 0,
          .instrument = "EURUSD",
          .action = tp::proto::Side::sell,
          .quantity = 1000,
          .trigger_price = 1.085,
          .confidence = 0.75,
          .created_ts_ns = 100,
          .expires_ts_ns = 200,
          .causation_seq = 9,
          .causation_ts_ns = 90};
}

// Packs an arbitrary envelope: lets tests build what no Encoder would.
template <class... Fields>
std::string pack_array(const Fields&... fields) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(sizeof...(fields));
  (p.pack(fields), ...);
  return {buf.data(), buf.size()};
}

template <class T, class F>
void expect_round_trip(const T& msg, F decode) {
  tp::proto::Encoder enc;
  auto bytes = std::string(enc.encode(msg));
  tp::proto::Decoder dec;
  auto r = (dec.*decode)(tp::proto::as_bytes(bytes));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r.value(), msg);
}

TEST(Codec, EveryMessageRoundTrips) {
  expect_round_trip(sample_tick(), &tp::proto::Decoder::decode_tick);
  expect_round_trip(tp::proto::Heartbeat{.source = "gateway", .seq = 3, .ts_ns = 5, .ticks_sent = 7},
                    &tp::proto::Decoder::decode_heartbeat);
  expect_round_trip(sample_signal(), &tp::proto::Decoder::decode_signal);
  expect_round_trip(tp::proto::OrderRequest{.client_order_id = "C-x",
                                            .signal_id = "x",
                                            .instrument = "GBPUSD",
                                            .side = tp::proto::Side::buy,
                                            .quantity = 10,
                                            .price_hint = 1.2,
                                            .sent_ts_ns = 4,
                                            .expires_ts_ns = 9},
                    &tp::proto::Decoder::decode_order_request);
  expect_round_trip(tp::proto::OrderQuery{.client_order_id = "C-x", .sent_ts_ns = 4},
                    &tp::proto::Decoder::decode_order_query);
  expect_round_trip(tp::proto::OrderReply{.client_order_id = "C-x",
                                          .order_id = "B-1",
                                          .status = tp::proto::OrderStatus::partially_filled,
                                          .filled_quantity = 3.5,
                                          .fill_price = 1.26,
                                          .reason = "ioc remainder canceled",
                                          .duplicate = true,
                                          .broker_ts_ns = 8},
                    &tp::proto::Decoder::decode_order_reply);
  expect_round_trip(tp::proto::OrderEvent{.order_id = "B-1",
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
                                          .causation_ts_ns = 3},
                    &tp::proto::Decoder::decode_order_event);
  expect_round_trip(
      tp::proto::SignalAck{
          .signal_id = "x", .status = tp::proto::AckStatus::duplicate, .reason = "seen", .ts_ns = 9},
      &tp::proto::Decoder::decode_signal_ack);
  expect_round_trip(tp::proto::DeadLetter{.source = "executor",
                                          .reason = "malformed",
                                          .detail = "d",
                                          .ts_ns = 1,
                                          .original = std::string("\x00\xff\xc1", 3)},
                    &tp::proto::Decoder::decode_dead_letter);
  expect_round_trip(tp::proto::DeadLetter{.source = "executor",
                                          .reason = "trading_halted",
                                          .detail = "signal x: trading halted",
                                          .ts_ns = 2,
                                          .original = "o",
                                          .key = "signal/x"},
                    &tp::proto::Decoder::decode_dead_letter);
  auto limit = sample_signal();
  limit.order_type = tp::proto::OrderType::limit;
  limit.limit_price = 1.0845;
  limit.time_in_force = tp::proto::TimeInForce::gtd;
  limit.good_till_ns = 300;
  expect_round_trip(limit, &tp::proto::Decoder::decode_signal);
  expect_round_trip(tp::proto::SignalAck{.signal_id = "x",
                                         .status = tp::proto::AckStatus::rejected,
                                         .reason = "not_owner",
                                         .ts_ns = 9,
                                         .cancel = true},
                    &tp::proto::Decoder::decode_signal_ack);
  expect_round_trip(
      tp::proto::CancelRequest{
          .signal_id = "x", .strategy = "g", .instance = 2, .reason = "r", .created_ts_ns = 3},
      &tp::proto::Decoder::decode_cancel_request);
  expect_round_trip(tp::proto::OrderCancel{.client_order_id = "C-x", .reason = "r", .sent_ts_ns = 4},
                    &tp::proto::Decoder::decode_order_cancel);
  expect_round_trip(tp::proto::ReportQuery{.from_seq = 5, .max_count = 6, .sent_ts_ns = 7},
                    &tp::proto::Decoder::decode_report_query);
  expect_round_trip(tp::proto::OpenOrdersQuery{.offset = 8, .sent_ts_ns = 9},
                    &tp::proto::Decoder::decode_open_orders_query);
}

TEST(Codec, PositionMessagesRoundTripAndRefuseNonsense) {
  expect_round_trip(tp::proto::PositionQuery{.instrument = "EURUSD", .sent_ts_ns = 4},
                    &tp::proto::Decoder::decode_position_query);
  expect_round_trip(
      tp::proto::PositionReply{
          .instrument = "EURUSD", .known = true, .quantity = -1234.5, .reason = "", .ts_ns = 9},
      &tp::proto::Decoder::decode_position_reply);
  tp::proto::Decoder dec;
  auto nan = tp::proto::encode_to_string(tp::proto::PositionReply{
      .instrument = "EURUSD", .known = true, .quantity = std::nan(""), .reason = "", .ts_ns = 9});
  auto r = dec.decode_position_reply(tp::proto::as_bytes(nan));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, tp::proto::ErrorCode::out_of_range);
  auto peek = dec.peek_type(
      tp::proto::as_bytes(tp::proto::encode_to_string(tp::proto::PositionQuery{.instrument = "X"})));
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(peek.value(), tp::proto::MsgType::position_query);
}

TEST(Codec, StrategyPositionRoundTripsAndRefusesNonsense) {
  expect_round_trip(
      tp::proto::StrategyPosition{.strategy = "trend", .instrument = "EURUSD", .quantity = -2000, .ts_ns = 7},
      &tp::proto::Decoder::decode_strategy_position);
  EXPECT_EQ(tp::proto::position_topic("trend"), "POS.trend");
  tp::proto::Decoder dec;
  auto refused = [&](tp::proto::StrategyPosition p) {
    auto r = dec.decode_strategy_position(tp::proto::as_bytes(tp::proto::encode_to_string(p)));
    return !r.ok() && r.error().code == tp::proto::ErrorCode::out_of_range;
  };
  EXPECT_TRUE(refused({.strategy = "", .instrument = "EURUSD", .quantity = 1, .ts_ns = 1}));
  EXPECT_TRUE(refused({.strategy = "trend", .instrument = "EUR.USD", .quantity = 1, .ts_ns = 1}));
  EXPECT_TRUE(refused({.strategy = "trend", .instrument = "EURUSD", .quantity = std::nan(""), .ts_ns = 1}));
}

TEST(Codec, PortfolioAndControlMessagesRoundTrip) {
  expect_round_trip(tp::proto::InstrumentPnl{.instrument = "USDJPY",
                                             .quote_currency = "JPY",
                                             .position = -2500,
                                             .avg_price = 151.234,
                                             .mark_price = 151.25,
                                             .realized_pnl = 12345.5,
                                             .unrealized_pnl = -40,
                                             .rate_to_account = 1 / 151.25,
                                             .realized_account = 12345.5 / 151.25,
                                             .unrealized_account = -40 / 151.25,
                                             .ts_ns = 7},
                    &tp::proto::Decoder::decode_instrument_pnl);
  // No mark and no rate yet: every figure 0, the currency unknown.
  expect_round_trip(tp::proto::InstrumentPnl{.instrument = "AAPL", .ts_ns = 8},
                    &tp::proto::Decoder::decode_instrument_pnl);
  for (auto state : {tp::proto::TradingState::active, tp::proto::TradingState::reducing,
                     tp::proto::TradingState::halted}) {
    expect_round_trip(tp::proto::PortfolioEvent{.account_currency = "USD",
                                                .equity = 1000081.5,
                                                .realized_pnl = 81.5,
                                                .unrealized_pnl = 0,
                                                .daily_pnl = -12.25,
                                                .day_start_ns = 1699920000000000000,
                                                .complete = state != tp::proto::TradingState::halted,
                                                .state = state,
                                                .open_orders = 4'000'000'000u,
                                                .ts_ns = 9},
                      &tp::proto::Decoder::decode_portfolio_event);
    expect_round_trip(tp::proto::ControlReply{.ok = state != tp::proto::TradingState::active,
                                              .state = state,
                                              .cause = "HALT by tpctl:alice@host: spread",
                                              .since_ns = -3,
                                              .flatten_pending = state == tp::proto::TradingState::reducing,
                                              .open_orders = 12,
                                              .detail = "",
                                              .ts_ns = 10},
                      &tp::proto::Decoder::decode_control_reply);
  }
  for (auto command :
       {tp::proto::ControlCommand::status, tp::proto::ControlCommand::halt, tp::proto::ControlCommand::reduce,
        tp::proto::ControlCommand::flatten, tp::proto::ControlCommand::resume})
    expect_round_trip(
        tp::proto::ControlRequest{.command = command, .reason = "", .sent_by = "tpctl:a@b", .sent_ts_ns = 11},
        &tp::proto::Decoder::decode_control_request);
  EXPECT_EQ(tp::proto::pnl_topic("USDJPY"), "PNL.USDJPY");
  EXPECT_EQ(tp::proto::portfolio_topic, "PORTFOLIO");
  EXPECT_FALSE(tp::proto::topic_matches("PORTFOLIOX", tp::proto::portfolio_topic));
  EXPECT_EQ(tp::proto::to_string(tp::proto::TradingState::reducing), "REDUCING");
  EXPECT_EQ(tp::proto::to_string(tp::proto::ControlCommand::flatten), "FLATTEN");
  EXPECT_EQ(tp::proto::to_string(tp::proto::MsgType::control_reply), "control_reply");
}

TEST(Codec, PortfolioAndControlMessagesRefuseNonsense) {
  tp::proto::Decoder dec;
  // An unknown state or command: out_of_range, naming the field.
  auto state = pack_array(19, 1, std::string("USD"), 1.5, 0.5, 1.0, 0.0, 0, true, 4, 0, 1);
  auto r = dec.decode_portfolio_event(tp::proto::as_bytes(state));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "out_of_range: state has unknown value 4");
  auto command = pack_array(21, 1, 0, std::string(""), std::string("tpctl"), 1);
  auto c = dec.decode_control_request(tp::proto::as_bytes(command));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), "out_of_range: command has unknown value 0");
  // A PnL line names a valid instrument, as a tick does.
  auto pnl = dec.decode_instrument_pnl(tp::proto::as_bytes(tp::proto::encode_to_string(
      tp::proto::InstrumentPnl{.instrument = "EUR.USD", .quote_currency = "USD"})));
  ASSERT_FALSE(pnl.ok());
  EXPECT_EQ(pnl.error().code, ErrorCode::out_of_range);
  // A reason longer than free text may be: out_of_range, before the executor acts on it.
  auto long_reason = tp::proto::encode_to_string(tp::proto::ControlRequest{
      .command = tp::proto::ControlCommand::halt, .reason = std::string(1025, 'x'), .sent_by = "tpctl"});
  auto l = dec.decode_control_request(tp::proto::as_bytes(long_reason));
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, ErrorCode::out_of_range);
  // Amounts are finite: a NaN would not even equal itself (the fuzz target found it).
  auto nan_pnl = tp::proto::encode_to_string(
      tp::proto::InstrumentPnl{.instrument = "USDJPY", .unrealized_pnl = std::nan("")});
  auto n = dec.decode_instrument_pnl(tp::proto::as_bytes(nan_pnl));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().message(), "out_of_range: unrealized_pnl must be finite");
  auto inf_equity = tp::proto::encode_to_string(tp::proto::PortfolioEvent{
      .account_currency = "USD", .equity = -std::numeric_limits<double>::infinity()});
  auto i = dec.decode_portfolio_event(tp::proto::as_bytes(inf_equity));
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().message(), "out_of_range: equity must be finite");
  // A reply is not a request.
  auto reply = tp::proto::encode_to_string(tp::proto::ControlReply{.ok = true});
  auto w = dec.decode_control_request(tp::proto::as_bytes(reply));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::wrong_message);
}

TEST(Codec, TickIsCompactArrayForm) {
  tp::proto::Encoder enc;
  auto bytes = enc.encode(sample_tick());
  EXPECT_LT(bytes.size(), 80u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x9a);  // fixarray of 10
}

TEST(Codec, ReaderIgnoresAppendedFields) {
  auto t = sample_tick();
  auto bytes =
      pack_array(std::uint8_t{1}, std::uint32_t{1}, t.instrument, t.bid, t.ask, t.bid_volume, t.ask_volume,
                 t.source_ts_ns, t.seq, t.gateway_ts_ns, std::string("new optional"), 42);
  tp::proto::Decoder dec;
  auto r = dec.decode_tick(tp::proto::as_bytes(bytes));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r.value(), t);
}

TEST(Codec, AnOrderRequestWithoutItsOptionalDeadlineHasNone) {
  // What an executor older than the deadline field sends: 7 fields.
  auto bytes = pack_array(std::uint8_t{4}, std::uint32_t{1}, std::string("C-x"), std::string("x"),
                          std::string("EURUSD"), std::uint8_t{1}, 10.0, 1.2, std::int64_t{4});
  for (auto path : {tp::proto::DecodePath::fast, tp::proto::DecodePath::reference}) {
    tp::proto::Decoder dec(path);
    auto r = dec.decode_order_request(tp::proto::as_bytes(bytes));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->expires_ts_ns, 0);
    EXPECT_EQ(r->sent_ts_ns, 4);
  }
  // ...with it and no terms (an executor older than the terms): market IOC...
  auto deadline =
      pack_array(std::uint8_t{4}, std::uint32_t{1}, std::string("C-x"), std::string("x"),
                 std::string("EURUSD"), std::uint8_t{1}, 10.0, 1.2, std::int64_t{4}, std::int64_t{99});
  // ...and with the terms, plus a field from a newer writer after them.
  auto newer =
      pack_array(std::uint8_t{4}, std::uint32_t{1}, std::string("C-x"), std::string("x"),
                 std::string("EURUSD"), std::uint8_t{1}, 10.0, 1.2, std::int64_t{4}, std::int64_t{99},
                 std::uint8_t{1}, 1.25, std::uint8_t{2}, std::int64_t{500}, std::string("newer"));
  for (auto path : {tp::proto::DecodePath::fast, tp::proto::DecodePath::reference}) {
    tp::proto::Decoder dec(path);
    auto r = dec.decode_order_request(tp::proto::as_bytes(deadline));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->expires_ts_ns, 99);
    EXPECT_EQ(r->terms(), tp::proto::OrderTerms{});
    r = dec.decode_order_request(tp::proto::as_bytes(newer));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->expires_ts_ns, 99);
    EXPECT_EQ(r->terms(),
              (tp::proto::OrderTerms{tp::proto::OrderType::limit, 1.25, tp::proto::TimeInForce::gtd, 500}));
  }
}

TEST(Codec, ADeadLetterWithoutItsKeyIsUnkeyedAndALongKeyIsRefused) {
  // What a sender older than the key sends: 5 fields.
  auto older = pack_array(std::uint8_t{9}, std::uint32_t{1}, std::string("strategy:1"),
                          std::string("malformed"), std::string("d"), std::int64_t{4}, std::string("o"));
  // A key of the longest length an id may have, then one byte more.
  auto keyed = [](std::size_t key_length) {
    return tp::proto::encode_to_string(tp::proto::DeadLetter{.source = "executor",
                                                             .reason = "expired",
                                                             .detail = "d",
                                                             .ts_ns = 4,
                                                             .original = "o",
                                                             .key = std::string(key_length, 'k')});
  };
  for (auto path : {tp::proto::DecodePath::fast, tp::proto::DecodePath::reference}) {
    tp::proto::Decoder dec(path);
    auto r = dec.decode_dead_letter(tp::proto::as_bytes(older));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->key, "");
    EXPECT_EQ(r->original, "o");
    auto longest = keyed(tp::proto::max_id_length);
    r = dec.decode_dead_letter(tp::proto::as_bytes(longest));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->key.size(), tp::proto::max_id_length);
    auto too_long = keyed(tp::proto::max_id_length + 1);
    r = dec.decode_dead_letter(tp::proto::as_bytes(too_long));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
    EXPECT_EQ(r.error().detail, "key is longer than 128");
  }
}

TEST(Codec, CheckTermsAllowsTheFourValidCombinationsOnly) {
  using tp::proto::OrderTerms;
  using enum tp::proto::OrderType;
  using enum tp::proto::TimeInForce;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& ok : {OrderTerms{}, OrderTerms{limit, 1.1, ioc, 0}, OrderTerms{limit, 1.1, gtc, 0},
                         OrderTerms{limit, 1.1, gtd, 7}})
    EXPECT_FALSE(tp::proto::check_terms(ok).has_value());
  const std::pair<OrderTerms, const char*> bad[] = {
      {{limit, 0, gtc, 0}, "limit_price must be positive and finite for a LIMIT order"},
      {{limit, -1, ioc, 0}, "limit_price must be positive and finite for a LIMIT order"},
      {{limit, nan, ioc, 0}, "limit_price must be positive and finite for a LIMIT order"},
      {{limit, inf, ioc, 0}, "limit_price must be positive and finite for a LIMIT order"},
      {{market, 1.1, ioc, 0}, "limit_price must be 0 for a MARKET order"},
      {{market, 0, gtc, 0}, "a MARKET order is IOC"},
      {{market, 0, gtd, 7}, "a MARKET order is IOC"},
      {{limit, 1.1, gtd, 0}, "good_till_ns must be set for a GTD order"},
      {{limit, 1.1, gtd, -5}, "good_till_ns must be set for a GTD order"},
      {{limit, 1.1, gtc, 7}, "good_till_ns is for GTD orders only"},
      {{market, 0, ioc, 7}, "good_till_ns is for GTD orders only"},
  };
  for (const auto& [terms, why] : bad) EXPECT_EQ(tp::proto::check_terms(terms).value_or("ok"), why);
  // A signal and an order request carrying such terms are refused as out of range.
  auto s = sample_signal();
  s.order_type = limit;
  auto err = tp::proto::validate(s);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, ErrorCode::out_of_range);
  tp::proto::OrderRequest o{.client_order_id = "C-x", .instrument = "EURUSD", .quantity = 1};
  o.set_terms({market, 0, gtc, 0});
  EXPECT_EQ(tp::proto::validate(o).value_or(tp::proto::DecodeError{}).message(),
            "out_of_range: a MARKET order is IOC");
}

tp::proto::ExecutionReport sample_report(std::uint64_t seq, tp::proto::OrderStatus status) {
  return {.stream = "S",
          .seq = seq,
          .client_order_id = "C-x",
          .order_id = "B-1",
          .instrument = "EURUSD",
          .side = tp::proto::Side::buy,
          .status = status,
          .quantity = 10,
          .last_quantity = 4,
          .last_price = 1.25,
          .filled_quantity = 4 * static_cast<double>(seq),
          .avg_price = 1.25,
          .broker_ts_ns = 5,
          .ts_ns = 6,
          .quote_seq = 7,
          .quote_ts_ns = 8};
}

TEST(Codec, ReportBatchCarriesReportsBackToBack) {
  const auto first = sample_report(1, tp::proto::OrderStatus::partially_filled);
  const auto second = sample_report(2, tp::proto::OrderStatus::expired);
  tp::proto::ReportBatch batch{.stream = "S", .last_seq = 2, .complete = false, .ts_ns = 9};
  EXPECT_TRUE(tp::proto::unpack_reports(batch).value().empty());
  tp::proto::append_report(batch, tp::proto::encode_to_string(first));
  tp::proto::append_report(batch, tp::proto::encode_to_string(second));
  EXPECT_EQ(batch.count, 2u);
  // Through the wire and back: the same two reports, in order.
  tp::proto::Decoder dec;
  auto wire = tp::proto::encode_to_string(batch);
  auto got = dec.decode_report_batch(tp::proto::as_bytes(wire));
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got.value(), batch);
  auto reports = tp::proto::unpack_reports(got.value());
  ASSERT_TRUE(reports.ok()) << reports.error().message();
  EXPECT_EQ(reports.value(), (std::vector{first, second}));

  // Refused: a count that lies, a report cut short, something else than a
  // report, a report that does not validate.
  auto lie = batch;
  lie.count = 3;
  EXPECT_EQ(tp::proto::unpack_reports(lie).error().message(), "out_of_range: count is 3 but reports holds 2");
  auto cut = batch;
  cut.reports.pop_back();
  EXPECT_EQ(tp::proto::unpack_reports(cut).error().code, ErrorCode::malformed);
  tp::proto::ReportBatch other{.count = 1, .reports = tp::proto::encode_to_string(sample_tick())};
  EXPECT_EQ(tp::proto::unpack_reports(other).error().code, ErrorCode::wrong_message);
  auto nonsense = first;
  nonsense.instrument = "EUR.USD";
  tp::proto::ReportBatch invalid{.count = 1, .reports = tp::proto::encode_to_string(nonsense)};
  auto err = tp::proto::unpack_reports(invalid);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().code, ErrorCode::out_of_range);
  EXPECT_EQ(err.error().detail.rfind("reports[0]: ", 0), 0u) << err.error().detail;
}

TEST(Codec, SignalSenderIsReadFromASignalThatFailsFurtherOn) {
  tp::proto::Decoder dec;
  auto s = sample_signal();
  s.confidence = 7;  // out of range
  auto bad = tp::proto::encode_to_string(s);
  ASSERT_FALSE(dec.decode_signal(tp::proto::as_bytes(bad)).ok());
  auto who = dec.signal_sender(tp::proto::as_bytes(bad));
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->signal_id, s.signal_id);
  EXPECT_EQ(who->strategy, s.strategy);
  EXPECT_EQ(who->instance, s.instance);

  // Nothing to name: not a signal, garbage, or an empty id.
  EXPECT_FALSE(
      dec.signal_sender(tp::proto::as_bytes(tp::proto::encode_to_string(sample_tick()))).has_value());
  EXPECT_FALSE(dec.signal_sender(tp::proto::as_bytes(std::string("\xc1"))).has_value());
  s.signal_id.clear();
  EXPECT_FALSE(dec.signal_sender(tp::proto::as_bytes(tp::proto::encode_to_string(s))).has_value());
}

TEST(Codec, AcceptsIntegersWhereFloatsAreExpected) {
  auto bytes = pack_array(1, 1, std::string("USDJPY"), 151, 152, 1, 2, std::int64_t{5}, 1u, std::int64_t{6});
  tp::proto::Decoder dec;
  auto r = dec.decode_tick(tp::proto::as_bytes(bytes));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_DOUBLE_EQ(r->bid, 151.0);
  EXPECT_DOUBLE_EQ(r->ask, 152.0);
}

struct BadCase {
  const char* name;
  std::string bytes;
  ErrorCode code;
};

TEST(Codec, RefusesBadTicksWithTheRightReason) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto tick = [](auto... f) { return pack_array(1, 1, f...); };
  std::vector<BadCase> cases{
      {"empty", "", ErrorCode::malformed},
      {"not msgpack", "\xc1", ErrorCode::malformed},
      {"truncated", std::string(tp::proto::encode_to_string(sample_tick())).substr(0, 20),
       ErrorCode::malformed},
      {"trailing bytes", tp::proto::encode_to_string(sample_tick()) + "x", ErrorCode::malformed},
      {"array32 bomb", std::string("\xdd\xff\xff\xff\xff", 5), ErrorCode::malformed},
      {"map32 bomb", std::string("\xdf\xff\xff\xff\xff", 5), ErrorCode::malformed},
      {"str32 bomb", std::string("\xdb\xff\xff\xff\xff", 5), ErrorCode::malformed},
      {"bin32 bomb", std::string("\xc6\xff\xff\xff\xff", 5), ErrorCode::malformed},
      {"deep nesting", std::string(200, '\x91') + '\x01', ErrorCode::malformed},
      {"not an array",
       pack_array().substr(0, 0) + std::string("\xa3"
                                               "abc"),
       ErrorCode::not_an_array},
      {"short envelope", pack_array(1), ErrorCode::missing_field},
      {"unknown type", pack_array(77, 1), ErrorCode::unknown_type},
      {"unknown version", pack_array(1, 2), ErrorCode::unknown_version},
      {"wrong message", tp::proto::encode_to_string(sample_signal()), ErrorCode::wrong_message},
      {"missing field", tick(std::string("EURUSD"), 1.0, 1.1), ErrorCode::missing_field},
      {"wrong type", tick(1.0, 1.0, 1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::wrong_type},
      {"negative seq", tick(std::string("EURUSD"), 1.0, 1.1, 1.0, 1.0, 1, -5, 1), ErrorCode::out_of_range},
      {"nan bid", tick(std::string("EURUSD"), nan, 1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"inf ask", tick(std::string("EURUSD"), 1.0, inf, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"zero bid", tick(std::string("EURUSD"), 0.0, 1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"negative ask", tick(std::string("EURUSD"), 1.0, -1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"crossed book", tick(std::string("EURUSD"), 1.2, 1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"negative volume", tick(std::string("EURUSD"), 1.0, 1.1, -1.0, 1.0, 1, 1u, 1),
       ErrorCode::out_of_range},
      {"long instrument", tick(std::string(33, 'X'), 1.0, 1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"empty instrument", tick(std::string(), 1.0, 1.1, 1.0, 1.0, 1, 1u, 1), ErrorCode::out_of_range},
      {"dotted instrument", tick(std::string("EUR.USD"), 1.0, 1.1, 1.0, 1.0, 1, 1u, 1),
       ErrorCode::out_of_range},
      {"zero seq", tick(std::string("EURUSD"), 1.0, 1.1, 1.0, 1.0, 1, 0u, 1), ErrorCode::out_of_range},
      {"too large", std::string(tp::proto::max_payload_bytes + 1, '\x90'), ErrorCode::too_large},
  };
  tp::proto::Decoder dec;
  for (const auto& c : cases) {
    auto r = dec.decode_tick(tp::proto::as_bytes(c.bytes));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().code, c.code) << c.name << ": " << r.error().message();
    EXPECT_FALSE(r.error().detail.empty()) << c.name;
  }
  // The decoder is still fine after all that.
  auto good = tp::proto::encode_to_string(sample_tick());
  EXPECT_TRUE(dec.decode_tick(tp::proto::as_bytes(good)).ok());
}

TEST(Codec, RefusesBadSignalValues) {
  tp::proto::Decoder dec;
  auto check = [&](auto mutate, const char* what) {
    auto s = sample_signal();
    mutate(s);
    auto bytes = tp::proto::encode_to_string(s);
    auto r = dec.decode_signal(tp::proto::as_bytes(bytes));
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.error().code, ErrorCode::out_of_range) << what;
  };
  check([](auto& s) { s.quantity = 0; }, "zero quantity");
  check([](auto& s) { s.quantity = -5; }, "negative quantity");
  check([](auto& s) { s.quantity = std::numeric_limits<double>::infinity(); }, "infinite quantity");
  check([](auto& s) { s.trigger_price = std::numeric_limits<double>::quiet_NaN(); }, "NaN price");
  check([](auto& s) { s.confidence = 1.5; }, "confidence above 1");
  check([](auto& s) { s.signal_id.clear(); }, "empty id");
  check([](auto& s) { s.expires_ts_ns = s.created_ts_ns - 1; }, "expires before created");
}

TEST(Codec, RefusesUnknownEnumValues) {
  auto s = sample_signal();
  auto bytes =
      pack_array(3, 1, s.signal_id, s.strategy, s.instance, s.instrument, 9, s.quantity, s.trigger_price,
                 s.confidence, s.created_ts_ns, s.expires_ts_ns, s.causation_seq, s.causation_ts_ns);
  tp::proto::Decoder dec;
  auto r = dec.decode_signal(tp::proto::as_bytes(bytes));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
  EXPECT_NE(r.error().detail.find("action"), std::string::npos);
}

TEST(Codec, PeekTypeReadsTheEnvelopeOnly) {
  tp::proto::Decoder dec;
  auto ack = tp::proto::encode_to_string(
      tp::proto::SignalAck{.signal_id = "a", .status = tp::proto::AckStatus::accepted});
  auto r = dec.peek_type(tp::proto::as_bytes(ack));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), tp::proto::MsgType::signal_ack);
  auto bad = pack_array(4, 9);
  EXPECT_EQ(dec.peek_type(tp::proto::as_bytes(bad)).error().code, ErrorCode::unknown_version);
}

TEST(Topics, AreExactAndUnambiguous) {
  EXPECT_EQ(tp::proto::tick_topic("EURUSD"), "TICK.EURUSD");
  EXPECT_EQ(tp::proto::ack_topic("sma_crossover", 3), "ACK.sma_crossover.3");
  EXPECT_TRUE(tp::proto::topic_matches("TICK.EURUSD", "TICK.EURUSD"));
  EXPECT_FALSE(tp::proto::topic_matches("TICK.EURUSDX", "TICK.EURUSD"));
}

}  // namespace
