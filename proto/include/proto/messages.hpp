// The pipeline's messages as plain values, each with its wire schema
// (wire_fields(): the fields in wire order, see schema.hpp). proto/ is the
// single source of truth for the wire format; docs/PROTOCOL.md describes the
// same on one page and a test holds it (and scripts/tp_proto.py) to it.
// Every time field is nanoseconds since the Unix epoch (UTC, wall clock) so
// that processes can compare stamps; quantities are in units of the
// instrument, prices in its quote currency.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/schema.hpp"

namespace tp::proto {

// Bumped only for incompatible changes. New optional fields are appended to a
// message without a bump; readers ignore fields they do not know.
inline constexpr std::uint32_t schema_version = 1;

// Longest instrument name accepted anywhere (an over-long name is refused,
// not truncated).
inline constexpr std::size_t max_instrument_length = 32;
// Longest id (signal_id, client order id, order id) and free-text field.
inline constexpr std::size_t max_id_length = 128;
inline constexpr std::size_t max_text_length = 1024;

enum class MsgType : std::uint8_t {
  tick = 1,
  heartbeat = 2,
  signal = 3,
  order_request = 4,
  order_query = 5,
  order_reply = 6,
  order_event = 7,
  signal_ack = 8,
  dead_letter = 9,
  position_query = 10,
  position_reply = 11,
  strategy_position = 12,
  cancel_request = 13,
  order_cancel = 14,
  execution_report = 15,
  report_query = 16,
  report_batch = 17,
  open_orders_query = 18,
  portfolio_event = 19,
  instrument_pnl = 20,
  control_request = 21,
  control_reply = 22,
};
// The highest type number this reader knows.
inline constexpr std::uint8_t max_msg_type = 22;

enum class Side : std::uint8_t { buy = 1, sell = 2 };

enum class OrderStatus : std::uint8_t {
  new_order = 1,  // accepted by the executor, not yet answered by the broker
  accepted = 2,   // broker working it
  partially_filled = 3,
  filled = 4,
  rejected = 5,
  canceled = 6,
  unknown = 7,  // the broker never saw this id (query), or its answer was lost: retry
  expired = 8,  // a GTD order's good-till time passed while it rested
};

// Zero is the default of each, so that a message without these optional
// fields (an older sender) means what it always did: a market order,
// immediate-or-cancel.
enum class OrderType : std::uint8_t { market = 0, limit = 1 };
enum class TimeInForce : std::uint8_t {
  ioc = 0,  // immediate or cancel: what cannot fill at once is canceled
  gtc = 1,  // good till canceled: the rest rests at the broker
  gtd = 2,  // good till a time (good_till_ns), then EXPIRED
};

// What the executor lets through (its kill switch). ACTIVE: everything the
// limits allow; REDUCING: only signals that shrink a position; HALTED:
// nothing but cancels.
enum class TradingState : std::uint8_t { active = 1, reducing = 2, halted = 3 };

// An operator's command to the executor (tpctl). STATUS only asks.
enum class ControlCommand : std::uint8_t { status = 1, halt = 2, reduce = 3, flatten = 4, resume = 5 };

enum class AckStatus : std::uint8_t {
  accepted = 1,   // durably recorded; the executor owns it now
  duplicate = 2,  // seen before; nothing else happened
  rejected = 3,   // invalid, expired or refused by risk; dead-lettered
};

// The enums' names in docs/PROTOCOL.md and the values a reader accepts.
}  // namespace tp::proto
template <>
struct tp::proto::wire::EnumInfo<tp::proto::Side> {
  static constexpr const char* name = "Side";
  static constexpr std::uint64_t lo = 1, hi = 2;
};
template <>
struct tp::proto::wire::EnumInfo<tp::proto::OrderStatus> {
  static constexpr const char* name = "OrderStatus";
  static constexpr std::uint64_t lo = 1, hi = 8;
};
template <>
struct tp::proto::wire::EnumInfo<tp::proto::OrderType> {
  static constexpr const char* name = "OrderType";
  static constexpr std::uint64_t lo = 0, hi = 1;
};
template <>
struct tp::proto::wire::EnumInfo<tp::proto::TimeInForce> {
  static constexpr const char* name = "TimeInForce";
  static constexpr std::uint64_t lo = 0, hi = 2;
};
template <>
struct tp::proto::wire::EnumInfo<tp::proto::TradingState> {
  static constexpr const char* name = "TradingState";
  static constexpr std::uint64_t lo = 1, hi = 3;
};
template <>
struct tp::proto::wire::EnumInfo<tp::proto::ControlCommand> {
  static constexpr const char* name = "ControlCommand";
  static constexpr std::uint64_t lo = 1, hi = 5;
};
template <>
struct tp::proto::wire::EnumInfo<tp::proto::AckStatus> {
  static constexpr const char* name = "AckStatus";
  static constexpr std::uint64_t lo = 1, hi = 3;
};
namespace tp::proto {

std::string_view to_string(MsgType) noexcept;
std::string_view to_string(Side) noexcept;
std::string_view to_string(OrderStatus) noexcept;
std::string_view to_string(AckStatus) noexcept;
std::string_view to_string(OrderType) noexcept;
std::string_view to_string(TimeInForce) noexcept;
std::string_view to_string(TradingState) noexcept;
std::string_view to_string(ControlCommand) noexcept;

// True for statuses after which the broker will not change the order again:
// FILLED, REJECTED, CANCELED (an IOC order's unfilled rest included) and
// EXPIRED. PARTIALLY_FILLED is not: the rest of the order still works.
bool is_final(OrderStatus) noexcept;

// How an order is to be placed; carried by a TradingSignal and its
// OrderRequest as optional appended fields (absent: market, IOC).
struct OrderTerms {
  OrderType order_type = OrderType::market;
  double limit_price = 0;  // LIMIT: > 0; MARKET: 0
  TimeInForce time_in_force = TimeInForce::ioc;
  std::int64_t good_till_ns = 0;  // GTD: when a resting order expires; else 0
  bool operator==(const OrderTerms&) const = default;
};

struct TickEvent {
  static constexpr MsgType type = MsgType::tick;
  std::string instrument;
  double bid = 0;
  double ask = 0;
  double bid_volume = 0;
  double ask_volume = 0;
  std::int64_t source_ts_ns = 0;   // when the source (exchange, CSV row) stamped it
  std::uint64_t seq = 0;           // per instrument, starts at 1, +1 per tick
  std::int64_t gateway_ts_ns = 0;  // when the gateway published it
  bool operator==(const TickEvent&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = TickEvent;
    return std::tuple{str("instrument", &M::instrument, max_instrument_length),
                      f64("bid", &M::bid),
                      f64("ask", &M::ask),
                      f64("bid_volume", &M::bid_volume),
                      f64("ask_volume", &M::ask_volume),
                      i64("source_ts_ns", &M::source_ts_ns),
                      u64("seq", &M::seq),
                      i64("gateway_ts_ns", &M::gateway_ts_ns)};
  }
};

// Published by the gateway on topic "HB.gateway" so that a strategy can tell a
// quiet market from a dead feed.
struct Heartbeat {
  static constexpr MsgType type = MsgType::heartbeat;
  std::string source;
  std::uint64_t seq = 0;
  std::int64_t ts_ns = 0;
  std::uint64_t ticks_sent = 0;
  bool operator==(const Heartbeat&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = Heartbeat;
    return std::tuple{str("source", &M::source, max_id_length), u64("seq", &M::seq), i64("ts_ns", &M::ts_ns),
                      u64("ticks_sent", &M::ticks_sent)};
  }
};

struct TradingSignal {
  static constexpr MsgType type = MsgType::signal;
  std::string signal_id;       // unique across instances and restarts
  std::string strategy;        // the strategy group's name, e.g. "trend"
  std::uint32_t instance = 0;  // shard index of the emitting instance
  std::string instrument;
  Side action = Side::buy;
  double quantity = 0;
  double trigger_price = 0;
  double confidence = 0;  // 0..1
  std::int64_t created_ts_ns = 0;
  std::int64_t expires_ts_ns = 0;    // not to be traded at or after this time
  std::uint64_t causation_seq = 0;   // seq of the tick that caused it
  std::int64_t causation_ts_ns = 0;  // gateway_ts_ns of that tick (latency)
  // Optional (appended): the order's terms; absent = market IOC.
  OrderType order_type = OrderType::market;
  double limit_price = 0;
  TimeInForce time_in_force = TimeInForce::ioc;
  std::int64_t good_till_ns = 0;
  OrderTerms terms() const noexcept { return {order_type, limit_price, time_in_force, good_till_ns}; }
  bool operator==(const TradingSignal&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = TradingSignal;
    return std::tuple{str("signal_id", &M::signal_id, max_id_length),
                      str("strategy", &M::strategy, max_id_length),
                      u32("instance", &M::instance),
                      str("instrument", &M::instrument, max_instrument_length),
                      enumeration("action", &M::action),
                      f64("quantity", &M::quantity),
                      f64("trigger_price", &M::trigger_price),
                      f64("confidence", &M::confidence),
                      i64("created_ts_ns", &M::created_ts_ns),
                      i64("expires_ts_ns", &M::expires_ts_ns),
                      u64("causation_seq", &M::causation_seq),
                      i64("causation_ts_ns", &M::causation_ts_ns),
                      optional(enumeration("order_type", &M::order_type)),
                      optional(f64("limit_price", &M::limit_price)),
                      optional(enumeration("time_in_force", &M::time_in_force)),
                      optional(i64("good_till_ns", &M::good_till_ns))};
  }
};

// executor -> dll_gateway: place an order.
struct OrderRequest {
  static constexpr MsgType type = MsgType::order_request;
  std::string client_order_id;  // derived from signal_id; the dedupe key
  std::string signal_id;
  std::string instrument;
  Side side = Side::buy;
  double quantity = 0;
  double price_hint = 0;  // the signal's trigger price; market orders ignore it
  std::int64_t sent_ts_ns = 0;
  // The signal's expiry: no broker may receive the order at or after it.
  // 0 = no deadline. Optional on the wire (appended field): a request from an
  // older executor has none.
  std::int64_t expires_ts_ns = 0;
  // Optional (appended): the order's terms, as the signal's; absent = market IOC.
  OrderType order_type = OrderType::market;
  double limit_price = 0;
  TimeInForce time_in_force = TimeInForce::ioc;
  std::int64_t good_till_ns = 0;
  OrderTerms terms() const noexcept { return {order_type, limit_price, time_in_force, good_till_ns}; }
  void set_terms(const OrderTerms& t) noexcept {
    order_type = t.order_type;
    limit_price = t.limit_price;
    time_in_force = t.time_in_force;
    good_till_ns = t.good_till_ns;
  }
  bool operator==(const OrderRequest&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = OrderRequest;
    return std::tuple{str("client_order_id", &M::client_order_id, max_id_length),
                      str("signal_id", &M::signal_id, max_id_length),
                      str("instrument", &M::instrument, max_instrument_length),
                      enumeration("side", &M::side),
                      f64("quantity", &M::quantity),
                      f64("price_hint", &M::price_hint),
                      i64("sent_ts_ns", &M::sent_ts_ns),
                      optional(i64("expires_ts_ns", &M::expires_ts_ns)),
                      optional(enumeration("order_type", &M::order_type)),
                      optional(f64("limit_price", &M::limit_price)),
                      optional(enumeration("time_in_force", &M::time_in_force)),
                      optional(i64("good_till_ns", &M::good_till_ns))};
  }
};

// executor -> dll_gateway: what became of this client order id?
struct OrderQuery {
  static constexpr MsgType type = MsgType::order_query;
  std::string client_order_id;
  std::int64_t sent_ts_ns = 0;
  bool operator==(const OrderQuery&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = OrderQuery;
    return std::tuple{str("client_order_id", &M::client_order_id, max_id_length),
                      i64("sent_ts_ns", &M::sent_ts_ns)};
  }
};

// dll_gateway -> executor: the answer to an OrderRequest or OrderQuery.
struct OrderReply {
  static constexpr MsgType type = MsgType::order_reply;
  std::string client_order_id;
  std::string order_id;  // broker's id; empty when rejected before placement
  OrderStatus status = OrderStatus::unknown;
  double filled_quantity = 0;
  double fill_price = 0;
  std::string reason;
  bool duplicate = false;  // this id was seen before: the original outcome
  std::int64_t broker_ts_ns = 0;
  bool operator==(const OrderReply&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = OrderReply;
    return std::tuple{str("client_order_id", &M::client_order_id, max_id_length),
                      str("order_id", &M::order_id, max_id_length),
                      enumeration("status", &M::status),
                      f64("filled_quantity", &M::filled_quantity),
                      f64("fill_price", &M::fill_price),
                      str("reason", &M::reason, max_text_length),
                      boolean("duplicate", &M::duplicate),
                      i64("broker_ts_ns", &M::broker_ts_ns)};
  }
};

// An order refused because its deadline (OrderRequest::expires_ts_ns) had
// passed, by dll_gateway or by the broker, has status REJECTED and a reason
// that starts with this.
inline constexpr std::string_view expired_reason_prefix = "expired:";
inline bool is_expiry_refusal(const OrderReply& r) noexcept {
  return r.status == OrderStatus::rejected && r.reason.starts_with(expired_reason_prefix);
}

// executor PUB, topic "ORDER.<instrument>": every change of an order.
struct OrderEvent {
  static constexpr MsgType type = MsgType::order_event;
  std::string order_id;
  std::string client_order_id;
  std::string signal_id;
  std::string instrument;
  Side side = Side::buy;
  OrderStatus status = OrderStatus::new_order;
  double quantity = 0;
  double filled_quantity = 0;
  double fill_price = 0;
  std::string reason;
  std::int64_t created_ts_ns = 0;    // when the executor accepted the signal
  std::int64_t event_ts_ns = 0;      // when this event happened
  std::int64_t causation_ts_ns = 0;  // gateway_ts_ns of the causing tick
  bool operator==(const OrderEvent&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = OrderEvent;
    return std::tuple{str("order_id", &M::order_id, max_id_length),
                      str("client_order_id", &M::client_order_id, max_id_length),
                      str("signal_id", &M::signal_id, max_id_length),
                      str("instrument", &M::instrument, max_instrument_length),
                      enumeration("side", &M::side),
                      enumeration("status", &M::status),
                      f64("quantity", &M::quantity),
                      f64("filled_quantity", &M::filled_quantity),
                      f64("fill_price", &M::fill_price),
                      str("reason", &M::reason, max_text_length),
                      i64("created_ts_ns", &M::created_ts_ns),
                      i64("event_ts_ns", &M::event_ts_ns),
                      i64("causation_ts_ns", &M::causation_ts_ns)};
  }
};

// executor PUB, topic "ACK.<strategy>.<instance>": the signal's fate.
struct SignalAck {
  static constexpr MsgType type = MsgType::signal_ack;
  std::string signal_id;
  AckStatus status = AckStatus::accepted;
  std::string reason;
  std::int64_t ts_ns = 0;
  // Optional (appended): this acks a CancelRequest for the signal, not the
  // signal itself.
  bool cancel = false;
  bool operator==(const SignalAck&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = SignalAck;
    return std::tuple{str("signal_id", &M::signal_id, max_id_length), enumeration("status", &M::status),
                      str("reason", &M::reason, max_text_length), i64("ts_ns", &M::ts_ns),
                      optional(boolean("cancel", &M::cancel))};
  }
};

// any program PUSH -> dead-letter sink.
struct DeadLetter {
  static constexpr MsgType type = MsgType::dead_letter;
  std::string source;  // program and instance, e.g. "strategy:1"
  std::string reason;  // short code, e.g. "malformed", "expired"
  std::string detail;  // human-readable
  std::int64_t ts_ns = 0;
  std::string original;  // the offending bytes, verbatim (msgpack bin)
  // Set on a letter its sender may send again (the executor's letters about an
  // outcome are stored with it and sent again after a restart): the sink
  // writes one line per (source, key) it remembers. Empty: no key.
  std::string key;
  bool operator==(const DeadLetter&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = DeadLetter;
    return std::tuple{str("source", &M::source, max_id_length),
                      str("reason", &M::reason, max_id_length),
                      str("detail", &M::detail, max_text_length),
                      i64("ts_ns", &M::ts_ns),
                      bin("original", &M::original),
                      optional(str("key", &M::key, max_id_length))};
  }
};

// executor -> dll_gateway: the broker's net position in one instrument (the
// executor compares its own book with it at start).
struct PositionQuery {
  static constexpr MsgType type = MsgType::position_query;
  std::string instrument;
  std::int64_t sent_ts_ns = 0;
  bool operator==(const PositionQuery&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = PositionQuery;
    return std::tuple{str("instrument", &M::instrument, max_instrument_length),
                      i64("sent_ts_ns", &M::sent_ts_ns)};
  }
};

// dll_gateway -> executor: the answer to a PositionQuery.
struct PositionReply {
  static constexpr MsgType type = MsgType::position_reply;
  std::string instrument;
  bool known = false;   // false: the broker could not tell (reason says why)
  double quantity = 0;  // signed net position: > 0 long, < 0 short
  std::string reason;
  std::int64_t ts_ns = 0;
  bool operator==(const PositionReply&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = PositionReply;
    return std::tuple{str("instrument", &M::instrument, max_instrument_length), boolean("known", &M::known),
                      f64("quantity", &M::quantity), str("reason", &M::reason, max_text_length),
                      i64("ts_ns", &M::ts_ns)};
  }
};

// executor PUB, topic "POS.<strategy>": one strategy group's signed net
// position in one instrument, as the executor's book holds it. Published
// every run.stats_interval_ms and right after each fill that changes it, on
// the same socket as the OrderEvents, so a subscriber's position is the last
// report plus the fills of the OrderEvents received after it.
struct StrategyPosition {
  static constexpr MsgType type = MsgType::strategy_position;
  std::string strategy;  // the strategy group's name, as TradingSignal::strategy
  std::string instrument;
  double quantity = 0;  // signed net: > 0 long, < 0 short
  std::int64_t ts_ns = 0;
  bool operator==(const StrategyPosition&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = StrategyPosition;
    return std::tuple{str("strategy", &M::strategy, max_id_length),
                      str("instrument", &M::instrument, max_instrument_length), f64("quantity", &M::quantity),
                      i64("ts_ns", &M::ts_ns)};
  }
};

// strategy PUSH -> executor (the signals socket): cancel the order of one of
// the strategy's own signals. Keyed by the signal id: a repeat is answered
// DUPLICATE and reaches the broker no more than the first. Acked like a
// signal (SignalAck with cancel = true); the outcome follows as OrderEvents.
struct CancelRequest {
  static constexpr MsgType type = MsgType::cancel_request;
  std::string signal_id;       // the signal whose order is to be canceled
  std::string strategy;        // the requesting group: it must be the signal's
  std::uint32_t instance = 0;  // the requesting instance (its ack topic)
  std::string reason;          // free text, kept with the order
  std::int64_t created_ts_ns = 0;
  bool operator==(const CancelRequest&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = CancelRequest;
    return std::tuple{str("signal_id", &M::signal_id, max_id_length),
                      str("strategy", &M::strategy, max_id_length), u32("instance", &M::instance),
                      str("reason", &M::reason, max_text_length), i64("created_ts_ns", &M::created_ts_ns)};
  }
};

// executor -> dll_gateway: cancel a resting order. Answered with an
// OrderReply holding the order's status after the attempt (CANCELED, or the
// final status it reached first). dll_gateway passes one cancel per client
// order id to the broker; a repeat gets the stored answer (duplicate = true).
struct OrderCancel {
  static constexpr MsgType type = MsgType::order_cancel;
  std::string client_order_id;
  std::string reason;
  std::int64_t sent_ts_ns = 0;
  bool operator==(const OrderCancel&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = OrderCancel;
    return std::tuple{str("client_order_id", &M::client_order_id, max_id_length),
                      str("reason", &M::reason, max_text_length), i64("sent_ts_ns", &M::sent_ts_ns)};
  }
};

// dll_gateway PUB, topic "REPORT.<instrument>": one change of one order at
// the broker, numbered by dll_gateway (seq: 1, 2, ... per stream, no gaps),
// stored before it is published. Its id is "<stream>:<seq>". The quantities
// are cumulative (as FIX's CumQty), so that applying a report already known
// changes nothing; last_quantity/last_price are this report's own fill.
struct ExecutionReport {
  static constexpr MsgType type = MsgType::execution_report;
  std::string stream;  // names dll_gateway's store; a new one restarts seq at 1
  std::uint64_t seq = 0;
  std::string client_order_id;
  std::string order_id;
  std::string instrument;
  Side side = Side::buy;
  OrderStatus status = OrderStatus::accepted;
  double quantity = 0;         // the order's
  double last_quantity = 0;    // filled by this report; 0 when it fills nothing
  double last_price = 0;       // its price; 0 when none
  double filled_quantity = 0;  // cumulative
  double avg_price = 0;        // of filled_quantity; 0 when none
  std::string reason;
  std::int64_t broker_ts_ns = 0;  // when the broker decided
  std::int64_t ts_ns = 0;         // when dll_gateway stored it
  std::uint64_t quote_seq = 0;    // the tick a simulated fill was matched on (TickEvent seq); 0: none
  std::int64_t quote_ts_ns = 0;   // its gateway_ts_ns
  bool operator==(const ExecutionReport&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = ExecutionReport;
    return std::tuple{str("stream", &M::stream, max_id_length),
                      u64("seq", &M::seq),
                      str("client_order_id", &M::client_order_id, max_id_length),
                      str("order_id", &M::order_id, max_id_length),
                      str("instrument", &M::instrument, max_instrument_length),
                      enumeration("side", &M::side),
                      enumeration("status", &M::status),
                      f64("quantity", &M::quantity),
                      f64("last_quantity", &M::last_quantity),
                      f64("last_price", &M::last_price),
                      f64("filled_quantity", &M::filled_quantity),
                      f64("avg_price", &M::avg_price),
                      str("reason", &M::reason, max_text_length),
                      i64("broker_ts_ns", &M::broker_ts_ns),
                      i64("ts_ns", &M::ts_ns),
                      u64("quote_seq", &M::quote_seq),
                      i64("quote_ts_ns", &M::quote_ts_ns)};
  }
};

// executor -> dll_gateway: the stored reports from from_seq on (FIX's resend
// request). Answered with a ReportBatch.
struct ReportQuery {
  static constexpr MsgType type = MsgType::report_query;
  std::uint64_t from_seq = 0;   // >= 1
  std::uint32_t max_count = 0;  // at most this many (dll_gateway may send fewer: 64 KiB per reply)
  std::int64_t sent_ts_ns = 0;
  bool operator==(const ReportQuery&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = ReportQuery;
    return std::tuple{u64("from_seq", &M::from_seq), u32("max_count", &M::max_count),
                      i64("sent_ts_ns", &M::sent_ts_ns)};
  }
};

// executor -> dll_gateway: the broker's open orders (reconciliation at
// start), from the offset-th on. Answered with a ReportBatch whose reports
// have seq 0: each is an open order's current state, not a stored change.
struct OpenOrdersQuery {
  static constexpr MsgType type = MsgType::open_orders_query;
  std::uint32_t offset = 0;
  std::int64_t sent_ts_ns = 0;
  bool operator==(const OpenOrdersQuery&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = OpenOrdersQuery;
    return std::tuple{u32("offset", &M::offset), i64("sent_ts_ns", &M::sent_ts_ns)};
  }
};

// dll_gateway -> executor: the answer to a ReportQuery or OpenOrdersQuery.
// `reports` holds `count` ExecutionReport payloads back to back (each a whole
// msgpack array as published); a reader unpacks them one after the other.
struct ReportBatch {
  static constexpr MsgType type = MsgType::report_batch;
  std::string stream;
  std::uint64_t last_seq = 0;  // the highest seq stored when answering
  std::uint32_t count = 0;
  bool complete = true;  // open orders: false when more follow (ask from offset + count)
  std::string reports;   // bin
  std::string reason;    // non-empty when the query could not be answered
  std::int64_t ts_ns = 0;
  bool operator==(const ReportBatch&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = ReportBatch;
    return std::tuple{str("stream", &M::stream, max_id_length),
                      u64("last_seq", &M::last_seq),
                      u32("count", &M::count),
                      boolean("complete", &M::complete),
                      bin("reports", &M::reports),
                      str("reason", &M::reason, max_text_length),
                      i64("ts_ns", &M::ts_ns)};
  }
};

// executor PUB, topic "PNL.<instrument>": one instrument's share of the
// portfolio, valued at the latest tick's mid. Published every
// portfolio.interval_ms (and soon after a fill), each instrument's first,
// then the PortfolioEvent that sums them.
struct InstrumentPnl {
  static constexpr MsgType type = MsgType::instrument_pnl;
  std::string instrument;
  std::string quote_currency;     // the currency realized_pnl and unrealized_pnl are in
  double position = 0;            // signed net: > 0 long, < 0 short
  double avg_price = 0;           // average entry price of the open position; 0 when flat
  double mark_price = 0;          // the latest tick's mid; 0 = no tick seen yet
  double realized_pnl = 0;        // quote currency
  double unrealized_pnl = 0;      // quote currency: (mark - avg_price) x position; 0 without a mark
  double rate_to_account = 0;     // quote currency -> account currency; 0 = no conversion known
  double realized_account = 0;    // account currency; 0 when the rate is unknown
  double unrealized_account = 0;  // account currency; 0 when the rate is unknown
  std::int64_t ts_ns = 0;
  bool operator==(const InstrumentPnl&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = InstrumentPnl;
    return std::tuple{str("instrument", &M::instrument, max_instrument_length),
                      str("quote_currency", &M::quote_currency, max_instrument_length),
                      f64("position", &M::position),
                      f64("avg_price", &M::avg_price),
                      f64("mark_price", &M::mark_price),
                      f64("realized_pnl", &M::realized_pnl),
                      f64("unrealized_pnl", &M::unrealized_pnl),
                      f64("rate_to_account", &M::rate_to_account),
                      f64("realized_account", &M::realized_account),
                      f64("unrealized_account", &M::unrealized_account),
                      i64("ts_ns", &M::ts_ns)};
  }
};

// executor PUB, topic "PORTFOLIO": the whole account in its currency.
struct PortfolioEvent {
  static constexpr MsgType type = MsgType::portfolio_event;
  std::string account_currency;
  double equity = 0;          // portfolio.capital + realized_pnl + unrealized_pnl
  double realized_pnl = 0;    // account currency, every instrument whose rate is known
  double unrealized_pnl = 0;  // account currency, the same
  double daily_pnl = 0;       // realized + unrealized now minus at the UTC day's start
  std::int64_t day_start_ns = 0;
  bool complete = true;  // false: some instrument's PnL could not be converted (left out)
  TradingState state = TradingState::active;
  std::uint32_t open_orders = 0;  // not final
  std::int64_t ts_ns = 0;
  bool operator==(const PortfolioEvent&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = PortfolioEvent;
    return std::tuple{str("account_currency", &M::account_currency, max_instrument_length),
                      f64("equity", &M::equity),
                      f64("realized_pnl", &M::realized_pnl),
                      f64("unrealized_pnl", &M::unrealized_pnl),
                      f64("daily_pnl", &M::daily_pnl),
                      i64("day_start_ns", &M::day_start_ns),
                      boolean("complete", &M::complete),
                      enumeration("state", &M::state),
                      u32("open_orders", &M::open_orders),
                      i64("ts_ns", &M::ts_ns)};
  }
};

// tpctl REQ -> executor REP (endpoints.control): change or read the trading
// state. The executor stores the new state before it answers, so a command
// answered ok survives a kill -9 of the executor.
struct ControlRequest {
  static constexpr MsgType type = MsgType::control_request;
  ControlCommand command = ControlCommand::status;
  std::string reason;   // the operator's words, kept with the state
  std::string sent_by;  // who asks, e.g. "tpctl:alice@host"
  std::int64_t sent_ts_ns = 0;
  bool operator==(const ControlRequest&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = ControlRequest;
    return std::tuple{enumeration("command", &M::command), str("reason", &M::reason, max_text_length),
                      str("sent_by", &M::sent_by, max_id_length), i64("sent_ts_ns", &M::sent_ts_ns)};
  }
};

// executor -> tpctl: the trading state after the command.
struct ControlReply {
  static constexpr MsgType type = MsgType::control_reply;
  bool ok = false;  // false: refused or not stored (detail says why); the state is as before
  TradingState state = TradingState::active;
  std::string cause;  // why the executor is in this state
  std::int64_t since_ns = 0;
  bool flatten_pending = false;   // a flatten is still closing positions
  std::uint32_t open_orders = 0;  // not final
  std::string detail;
  std::int64_t ts_ns = 0;
  bool operator==(const ControlReply&) const = default;
  static constexpr auto wire_fields() {
    using namespace wire;
    using M = ControlReply;
    return std::tuple{boolean("ok", &M::ok),
                      enumeration("state", &M::state),
                      str("cause", &M::cause, max_text_length),
                      i64("since_ns", &M::since_ns),
                      boolean("flatten_pending", &M::flatten_pending),
                      u32("open_orders", &M::open_orders),
                      str("detail", &M::detail, max_text_length),
                      i64("ts_ns", &M::ts_ns)};
  }
};

// Every message type, in type-number order (the schema dump walks it).
template <class... T>
struct MessageList {};
using AllMessages =
    MessageList<TickEvent, Heartbeat, TradingSignal, OrderRequest, OrderQuery, OrderReply, OrderEvent,
                SignalAck, DeadLetter, PositionQuery, PositionReply, StrategyPosition, CancelRequest,
                OrderCancel, ExecutionReport, ReportQuery, ReportBatch, OpenOrdersQuery, PortfolioEvent,
                InstrumentPnl, ControlRequest, ControlReply>;

// Topics. SUB filters are byte prefixes, so a subscriber must also compare the
// whole topic frame on receipt (see topic_matches).
inline constexpr std::string_view tick_topic_prefix = "TICK.";
inline constexpr std::string_view heartbeat_topic = "HB.gateway";
inline constexpr std::string_view order_topic_prefix = "ORDER.";
inline constexpr std::string_view ack_topic_prefix = "ACK.";
inline constexpr std::string_view position_topic_prefix = "POS.";
inline constexpr std::string_view report_topic_prefix = "REPORT.";
inline constexpr std::string_view pnl_topic_prefix = "PNL.";
inline constexpr std::string_view portfolio_topic = "PORTFOLIO";

std::string tick_topic(std::string_view instrument);
std::string order_topic(std::string_view instrument);
std::string ack_topic(std::string_view strategy, std::uint32_t instance);
// "POS.<strategy>": the StrategyPosition reports of one strategy group.
std::string position_topic(std::string_view strategy);
std::string report_topic(std::string_view instrument);
std::string pnl_topic(std::string_view instrument);

}  // namespace tp::proto
