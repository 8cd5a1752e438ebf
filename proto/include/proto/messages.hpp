// The pipeline's messages as plain values. proto/ is the single source of
// truth for the wire format; docs/PROTOCOL.md describes the same on one page.
// Every time field is nanoseconds since the Unix epoch (UTC, wall clock) so
// that processes can compare stamps; quantities are in units of the
// instrument, prices in its quote currency.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace proto {

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
};
// The highest type number this reader knows.
inline constexpr std::uint8_t max_msg_type = 11;

enum class Side : std::uint8_t { buy = 1, sell = 2 };

enum class OrderStatus : std::uint8_t {
  new_order = 1,  // accepted by the executor, not yet answered by the broker
  accepted = 2,   // broker working it
  partially_filled = 3,
  filled = 4,
  rejected = 5,
  canceled = 6,
  unknown = 7,    // the broker never saw this id (query), or its answer was lost: retry
};

enum class AckStatus : std::uint8_t {
  accepted = 1,   // durably recorded; the executor owns it now
  duplicate = 2,  // seen before; nothing else happened
  rejected = 3,   // invalid, expired or refused by risk; dead-lettered
};

std::string_view to_string(MsgType) noexcept;
std::string_view to_string(Side) noexcept;
std::string_view to_string(OrderStatus) noexcept;
std::string_view to_string(AckStatus) noexcept;

// True for statuses after which the broker will not change the order again.
bool is_final(OrderStatus) noexcept;

struct TickEvent {
  static constexpr MsgType type = MsgType::tick;
  std::string instrument;
  double bid = 0;
  double ask = 0;
  double bid_volume = 0;
  double ask_volume = 0;
  std::int64_t source_ts_ns = 0;  // when the source (exchange, CSV row) stamped it
  std::uint64_t seq = 0;          // per instrument, starts at 1, +1 per tick
  std::int64_t gateway_ts_ns = 0; // when the gateway published it
  bool operator==(const TickEvent&) const = default;
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
};

struct TradingSignal {
  static constexpr MsgType type = MsgType::signal;
  std::string signal_id;  // unique across instances and restarts
  std::string strategy;   // strategy name, e.g. "sma_crossover"
  std::uint32_t instance = 0;  // shard index of the emitting instance
  std::string instrument;
  Side action = Side::buy;
  double quantity = 0;
  double trigger_price = 0;
  double confidence = 0;  // 0..1
  std::int64_t created_ts_ns = 0;
  std::int64_t expires_ts_ns = 0;  // not to be traded at or after this time
  std::uint64_t causation_seq = 0;  // seq of the tick that caused it
  std::int64_t causation_ts_ns = 0; // gateway_ts_ns of that tick (latency)
  bool operator==(const TradingSignal&) const = default;
};

// executor -> dll_gateway: place a market order.
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
  bool operator==(const OrderRequest&) const = default;
};

// executor -> dll_gateway: what became of this client order id?
struct OrderQuery {
  static constexpr MsgType type = MsgType::order_query;
  std::string client_order_id;
  std::int64_t sent_ts_ns = 0;
  bool operator==(const OrderQuery&) const = default;
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
  std::int64_t created_ts_ns = 0;  // when the executor accepted the signal
  std::int64_t event_ts_ns = 0;    // when this event happened
  std::int64_t causation_ts_ns = 0; // gateway_ts_ns of the causing tick
  bool operator==(const OrderEvent&) const = default;
};

// executor PUB, topic "ACK.<strategy>.<instance>": the signal's fate.
struct SignalAck {
  static constexpr MsgType type = MsgType::signal_ack;
  std::string signal_id;
  AckStatus status = AckStatus::accepted;
  std::string reason;
  std::int64_t ts_ns = 0;
  bool operator==(const SignalAck&) const = default;
};

// any program PUSH -> dead-letter sink.
struct DeadLetter {
  static constexpr MsgType type = MsgType::dead_letter;
  std::string source;    // program and instance, e.g. "strategy:1"
  std::string reason;    // short code, e.g. "malformed", "expired"
  std::string detail;    // human-readable
  std::int64_t ts_ns = 0;
  std::string original;  // the offending bytes, verbatim (msgpack bin)
  bool operator==(const DeadLetter&) const = default;
};

// executor -> dll_gateway: the broker's net position in one instrument (the
// executor compares its own book with it at start).
struct PositionQuery {
  static constexpr MsgType type = MsgType::position_query;
  std::string instrument;
  std::int64_t sent_ts_ns = 0;
  bool operator==(const PositionQuery&) const = default;
};

// dll_gateway -> executor: the answer to a PositionQuery.
struct PositionReply {
  static constexpr MsgType type = MsgType::position_reply;
  std::string instrument;
  bool known = false;    // false: the broker could not tell (reason says why)
  double quantity = 0;   // signed net position: > 0 long, < 0 short
  std::string reason;
  std::int64_t ts_ns = 0;
  bool operator==(const PositionReply&) const = default;
};

// Topics. SUB filters are byte prefixes, so a subscriber must also compare the
// whole topic frame on receipt (see topic_matches).
inline constexpr std::string_view tick_topic_prefix = "TICK.";
inline constexpr std::string_view heartbeat_topic = "HB.gateway";
inline constexpr std::string_view order_topic_prefix = "ORDER.";
inline constexpr std::string_view ack_topic_prefix = "ACK.";

std::string tick_topic(std::string_view instrument);
std::string order_topic(std::string_view instrument);
std::string ack_topic(std::string_view strategy, std::uint32_t instance);

}  // namespace proto
