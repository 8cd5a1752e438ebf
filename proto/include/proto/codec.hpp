// msgpack codec for the messages in messages.hpp.
//
// Wire form: one msgpack array per payload,
//   [type:uint, version:uint, field_1, field_2, ...]
// with the fields in the order of the message's wire_fields() (messages.hpp,
// listed on docs/PROTOCOL.md). A reader needs at least the fields it knows
// (but the optional appended ones) and ignores any that follow (forward
// compatibility).
//
// Decoding never throws: untrusted bytes give a value or a DecodeError that
// names the problem. Unpacking is bounded (unpack_limit) so that a hostile
// header cannot make it allocate more than the input justifies. Decoded
// messages are also checked for values no sender may produce (NaN prices,
// non-positive quantities, crossed books, over-long names).
//
// Encoder and Decoder reuse their buffers; each instance is for one thread.
#pragma once

#include <cstddef>
#include <msgpack/zone.hpp>  // the Decoder's zone; codec.cpp includes the rest
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "proto/messages.hpp"

namespace tp::proto {

// Largest payload any program accepts (also each socket's ZMQ_MAXMSGSIZE,
// except the dead-letter sink's, which must take a dead letter wrapping one).
inline constexpr std::size_t max_payload_bytes = 64 * 1024;
inline constexpr std::size_t max_dead_letter_bytes = 2 * max_payload_bytes;

enum class ErrorCode : std::uint8_t {
  malformed,      // not msgpack, truncated, trailing bytes, too deep or big
  not_an_array,   // valid msgpack but not the envelope
  wrong_message,  // a known type, but not the one this reader expects
  unknown_type,
  unknown_version,
  missing_field,
  wrong_type,    // a field of the wrong msgpack type
  out_of_range,  // a value no sender may produce (NaN, <= 0, too long...)
  too_large,     // payload above max_payload_bytes
};

std::string_view to_string(ErrorCode) noexcept;

struct DecodeError {
  ErrorCode code = ErrorCode::malformed;
  std::string detail;  // names the field and the problem
  // "code: detail", the form used in logs and dead letters.
  std::string message() const;
};

// A decoded value or the reason there is none.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(DecodeError error) : v_(std::move(error)) {}
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const DecodeError& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, DecodeError> v_;
};

using Bytes = std::span<const std::byte>;

inline Bytes as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(Bytes b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Packs messages into one reused buffer. The returned view is valid until the
// next call on the same Encoder.
class Encoder {
 public:
  std::string_view encode(const TickEvent&);
  std::string_view encode(const Heartbeat&);
  std::string_view encode(const TradingSignal&);
  std::string_view encode(const OrderRequest&);
  std::string_view encode(const OrderQuery&);
  std::string_view encode(const OrderReply&);
  std::string_view encode(const OrderEvent&);
  std::string_view encode(const SignalAck&);
  std::string_view encode(const DeadLetter&);
  std::string_view encode(const PositionQuery&);
  std::string_view encode(const PositionReply&);
  std::string_view encode(const StrategyPosition&);
  std::string_view encode(const CancelRequest&);
  std::string_view encode(const OrderCancel&);
  std::string_view encode(const ExecutionReport&);
  std::string_view encode(const ReportQuery&);
  std::string_view encode(const ReportBatch&);
  std::string_view encode(const OpenOrdersQuery&);
  std::string_view encode(const PortfolioEvent&);
  std::string_view encode(const InstrumentPnl&);
  std::string_view encode(const ControlRequest&);
  std::string_view encode(const ControlReply&);

 private:
  std::vector<char> buf_;  // reused: no allocation per message once grown
};

// One-off encoding into a fresh string (tests, tools, cold paths).
template <class T>
std::string encode_to_string(const T& msg) {
  Encoder e;
  return std::string(e.encode(msg));
}

// How a Decoder reads: `fast` walks the bytes in place for every message
// type and hands anything it does not accept to `reference` (msgpack-c's
// unpack into a zone, then the fields), so both give the same value or the
// same DecodeError for any input. `reference` alone exists for tests,
// benchmarks and differential fuzzing.
enum class DecodePath : std::uint8_t { fast, reference };

// Decodes payloads. The fast path allocates nothing but the decoded strings
// (none with decode_into when their capacity suffices); the reference path
// reuses one msgpack zone across calls.
class Decoder {
 public:
  explicit Decoder(DecodePath path = DecodePath::fast) : path_(path) {}

  // Reads only the envelope: the message type, after checking the version.
  Result<MsgType> peek_type(Bytes payload);

  Result<TickEvent> decode_tick(Bytes payload);
  Result<Heartbeat> decode_heartbeat(Bytes payload);
  Result<TradingSignal> decode_signal(Bytes payload);
  Result<OrderRequest> decode_order_request(Bytes payload);
  Result<OrderQuery> decode_order_query(Bytes payload);
  Result<OrderReply> decode_order_reply(Bytes payload);
  Result<OrderEvent> decode_order_event(Bytes payload);
  Result<SignalAck> decode_signal_ack(Bytes payload);
  Result<DeadLetter> decode_dead_letter(Bytes payload);
  Result<PositionQuery> decode_position_query(Bytes payload);
  Result<PositionReply> decode_position_reply(Bytes payload);
  Result<StrategyPosition> decode_strategy_position(Bytes payload);
  Result<CancelRequest> decode_cancel_request(Bytes payload);
  Result<OrderCancel> decode_order_cancel(Bytes payload);
  Result<ExecutionReport> decode_execution_report(Bytes payload);
  Result<ReportQuery> decode_report_query(Bytes payload);
  Result<ReportBatch> decode_report_batch(Bytes payload);
  Result<OpenOrdersQuery> decode_open_orders_query(Bytes payload);
  Result<PortfolioEvent> decode_portfolio_event(Bytes payload);
  Result<InstrumentPnl> decode_instrument_pnl(Bytes payload);
  Result<ControlRequest> decode_control_request(Bytes payload);
  Result<ControlReply> decode_control_reply(Bytes payload);

  // The same checks into an existing message whose strings keep their
  // capacity: no allocation per call in steady state. Returns the error, or
  // nothing when `out` holds the decoded value (after an error `out` holds
  // garbage). T is any message type of messages.hpp.
  template <class T>
  std::optional<DecodeError> decode_into(Bytes payload, T& out);

  // Who sent a signal that did not decode: its three leading fields
  // (signal_id, strategy, instance) when the envelope is a signal's and those
  // fields read as valid, whatever is wrong further on, so that the refusal
  // can be acked; nothing otherwise. Only `signal_id`, `strategy` and
  // `instance` of the result are set.
  std::optional<TradingSignal> signal_sender(Bytes payload);

  // Payloads (including peek_type's) the fast path handed to the reference
  // path: in a healthy pipeline only invalid ones.
  std::uint64_t reference_decodes() const noexcept { return reference_decodes_; }

 private:
  template <class T>
  Result<T> decode(Bytes payload);
  DecodePath path_;
  std::uint64_t reference_decodes_ = 0;
  msgpack::zone zone_;
};

// The checks decode applies after reading the fields; exposed so that a
// program can check what it is about to send. Empty when the value is sane.
std::optional<DecodeError> validate(const TickEvent&);
std::optional<DecodeError> validate(const Heartbeat&);
std::optional<DecodeError> validate(const TradingSignal&);
std::optional<DecodeError> validate(const OrderRequest&);
std::optional<DecodeError> validate(const OrderQuery&);
std::optional<DecodeError> validate(const OrderReply&);
std::optional<DecodeError> validate(const OrderEvent&);
std::optional<DecodeError> validate(const SignalAck&);
std::optional<DecodeError> validate(const DeadLetter&);
std::optional<DecodeError> validate(const PositionQuery&);
std::optional<DecodeError> validate(const PositionReply&);
std::optional<DecodeError> validate(const StrategyPosition&);
std::optional<DecodeError> validate(const CancelRequest&);
std::optional<DecodeError> validate(const OrderCancel&);
std::optional<DecodeError> validate(const ExecutionReport&);
std::optional<DecodeError> validate(const ReportQuery&);
std::optional<DecodeError> validate(const ReportBatch&);
std::optional<DecodeError> validate(const OpenOrdersQuery&);
std::optional<DecodeError> validate(const PortfolioEvent&);
std::optional<DecodeError> validate(const InstrumentPnl&);
std::optional<DecodeError> validate(const ControlRequest&);
std::optional<DecodeError> validate(const ControlReply&);

// The ExecutionReports a ReportBatch carries, in order; an error when its
// `reports` bytes do not hold exactly `count` valid reports.
Result<std::vector<ExecutionReport>> unpack_reports(const ReportBatch& batch);
// Appends one encoded report to a batch (ReportBatch::reports, count).
void append_report(ReportBatch& batch, std::string_view encoded_report);

// The checks on an order's terms that need no context: a LIMIT order has a
// positive finite limit price, a MARKET order none and is IOC, a GTD order a
// good-till time. Empty when sane. (Used by validate() of the signal and the
// order request, and by the executor's decision with its own reason.)
std::optional<std::string> check_terms(const OrderTerms& terms);

// Whole-frame topic comparison: SUB prefix filters let "TICK.EURUSDX" through a
// subscription to "TICK.EURUSD"; this does not.
inline bool topic_matches(std::string_view frame, std::string_view topic) noexcept { return frame == topic; }

}  // namespace tp::proto
