#include "proto/codec.hpp"

#include <cmath>
#include <limits>

namespace proto {
namespace {

// Every field of every message is a scalar, so anything nested deeper than an
// appended optional field's own array or map is hostile.
constexpr std::size_t max_depth = 4;
constexpr std::size_t max_container = 64;

msgpack::unpack_limit limits_for(std::size_t max_bytes) {
  return msgpack::unpack_limit(max_container, max_container, max_bytes, max_bytes,
                               max_bytes, max_depth);
}

// Thrown inside this file only; decode() turns it into a DecodeError.
struct FieldError {
  ErrorCode code;
  std::string detail;
};

[[noreturn]] void fail(ErrorCode code, std::string detail) {
  throw FieldError{code, std::move(detail)};
}

// Reads the envelope's fields one by one, by name, in wire order.
class FieldReader {
 public:
  FieldReader(const msgpack::object* fields, std::size_t count)
      : fields_(fields), count_(count) {}

  std::string str(const char* name, std::size_t max_len) {
    const auto& o = next(name);
    if (o.type != msgpack::type::STR) wrong(name, "string");
    if (o.via.str.size > max_len)
      fail(ErrorCode::out_of_range, std::string(name) + " is longer than " + std::to_string(max_len));
    return std::string(o.via.str.ptr, o.via.str.size);
  }

  std::string bin(const char* name) {
    const auto& o = next(name);
    if (o.type == msgpack::type::BIN) return std::string(o.via.bin.ptr, o.via.bin.size);
    if (o.type == msgpack::type::STR) return std::string(o.via.str.ptr, o.via.str.size);
    wrong(name, "binary");
  }

  // msgpack-c writes whole-number doubles as integers; accept both.
  double f64(const char* name) {
    const auto& o = next(name);
    switch (o.type) {
      case msgpack::type::FLOAT64:
      case msgpack::type::FLOAT32: return o.via.f64;
      case msgpack::type::POSITIVE_INTEGER: return static_cast<double>(o.via.u64);
      case msgpack::type::NEGATIVE_INTEGER: return static_cast<double>(o.via.i64);
      default: wrong(name, "number");
    }
  }

  std::uint64_t u64(const char* name) {
    const auto& o = next(name);
    if (o.type != msgpack::type::POSITIVE_INTEGER) {
      if (o.type == msgpack::type::NEGATIVE_INTEGER)
        fail(ErrorCode::out_of_range, std::string(name) + " is negative");
      wrong(name, "unsigned integer");
    }
    return o.via.u64;
  }

  std::uint32_t u32(const char* name) {
    auto v = u64(name);
    if (v > std::numeric_limits<std::uint32_t>::max())
      fail(ErrorCode::out_of_range, std::string(name) + " exceeds 32 bits");
    return static_cast<std::uint32_t>(v);
  }

  std::int64_t i64(const char* name) {
    const auto& o = next(name);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(ErrorCode::out_of_range, std::string(name) + " exceeds int64");
      return static_cast<std::int64_t>(o.via.u64);
    }
    wrong(name, "integer");
  }

  bool boolean(const char* name) {
    const auto& o = next(name);
    if (o.type != msgpack::type::BOOLEAN) wrong(name, "boolean");
    return o.via.boolean;
  }

  template <class Enum>
  Enum enumeration(const char* name, std::uint64_t lo, std::uint64_t hi) {
    auto v = u64(name);
    if (v < lo || v > hi)
      fail(ErrorCode::out_of_range, std::string(name) + " has unknown value " + std::to_string(v));
    return static_cast<Enum>(v);
  }

 private:
  const msgpack::object& next(const char* name) {
    if (index_ >= count_) fail(ErrorCode::missing_field, std::string(name) + " is missing");
    return fields_[index_++];
  }
  [[noreturn]] static void wrong(const char* name, const char* expected) {
    fail(ErrorCode::wrong_type, std::string(name) + " is not a " + expected);
  }

  const msgpack::object* fields_;
  std::size_t count_;
  std::size_t index_ = 0;
};

// ---- per-message field lists: read and write in the same order -------------

void read(FieldReader& r, TickEvent& m) {
  m.instrument = r.str("instrument", max_instrument_length);
  m.bid = r.f64("bid");
  m.ask = r.f64("ask");
  m.bid_volume = r.f64("bid_volume");
  m.ask_volume = r.f64("ask_volume");
  m.source_ts_ns = r.i64("source_ts_ns");
  m.seq = r.u64("seq");
  m.gateway_ts_ns = r.i64("gateway_ts_ns");
}
template <class P>
void write(P& p, const TickEvent& m) {
  p.pack(m.instrument).pack(m.bid).pack(m.ask).pack(m.bid_volume).pack(m.ask_volume)
      .pack(m.source_ts_ns).pack(m.seq).pack(m.gateway_ts_ns);
}
constexpr std::uint32_t field_count(const TickEvent*) { return 8; }

void read(FieldReader& r, Heartbeat& m) {
  m.source = r.str("source", max_id_length);
  m.seq = r.u64("seq");
  m.ts_ns = r.i64("ts_ns");
  m.ticks_sent = r.u64("ticks_sent");
}
template <class P>
void write(P& p, const Heartbeat& m) {
  p.pack(m.source).pack(m.seq).pack(m.ts_ns).pack(m.ticks_sent);
}
constexpr std::uint32_t field_count(const Heartbeat*) { return 4; }

void read(FieldReader& r, TradingSignal& m) {
  m.signal_id = r.str("signal_id", max_id_length);
  m.strategy = r.str("strategy", max_id_length);
  m.instance = r.u32("instance");
  m.instrument = r.str("instrument", max_instrument_length);
  m.action = r.enumeration<Side>("action", 1, 2);
  m.quantity = r.f64("quantity");
  m.trigger_price = r.f64("trigger_price");
  m.confidence = r.f64("confidence");
  m.created_ts_ns = r.i64("created_ts_ns");
  m.expires_ts_ns = r.i64("expires_ts_ns");
  m.causation_seq = r.u64("causation_seq");
  m.causation_ts_ns = r.i64("causation_ts_ns");
}
template <class P>
void write(P& p, const TradingSignal& m) {
  p.pack(m.signal_id).pack(m.strategy).pack(m.instance).pack(m.instrument)
      .pack(static_cast<std::uint8_t>(m.action)).pack(m.quantity).pack(m.trigger_price)
      .pack(m.confidence).pack(m.created_ts_ns).pack(m.expires_ts_ns).pack(m.causation_seq)
      .pack(m.causation_ts_ns);
}
constexpr std::uint32_t field_count(const TradingSignal*) { return 12; }

void read(FieldReader& r, OrderRequest& m) {
  m.client_order_id = r.str("client_order_id", max_id_length);
  m.signal_id = r.str("signal_id", max_id_length);
  m.instrument = r.str("instrument", max_instrument_length);
  m.side = r.enumeration<Side>("side", 1, 2);
  m.quantity = r.f64("quantity");
  m.price_hint = r.f64("price_hint");
  m.sent_ts_ns = r.i64("sent_ts_ns");
}
template <class P>
void write(P& p, const OrderRequest& m) {
  p.pack(m.client_order_id).pack(m.signal_id).pack(m.instrument)
      .pack(static_cast<std::uint8_t>(m.side)).pack(m.quantity).pack(m.price_hint)
      .pack(m.sent_ts_ns);
}
constexpr std::uint32_t field_count(const OrderRequest*) { return 7; }

void read(FieldReader& r, OrderQuery& m) {
  m.client_order_id = r.str("client_order_id", max_id_length);
  m.sent_ts_ns = r.i64("sent_ts_ns");
}
template <class P>
void write(P& p, const OrderQuery& m) {
  p.pack(m.client_order_id).pack(m.sent_ts_ns);
}
constexpr std::uint32_t field_count(const OrderQuery*) { return 2; }

void read(FieldReader& r, OrderReply& m) {
  m.client_order_id = r.str("client_order_id", max_id_length);
  m.order_id = r.str("order_id", max_id_length);
  m.status = r.enumeration<OrderStatus>("status", 1, 7);
  m.filled_quantity = r.f64("filled_quantity");
  m.fill_price = r.f64("fill_price");
  m.reason = r.str("reason", max_text_length);
  m.duplicate = r.boolean("duplicate");
  m.broker_ts_ns = r.i64("broker_ts_ns");
}
template <class P>
void write(P& p, const OrderReply& m) {
  p.pack(m.client_order_id).pack(m.order_id).pack(static_cast<std::uint8_t>(m.status))
      .pack(m.filled_quantity).pack(m.fill_price).pack(m.reason).pack(m.duplicate)
      .pack(m.broker_ts_ns);
}
constexpr std::uint32_t field_count(const OrderReply*) { return 8; }

void read(FieldReader& r, OrderEvent& m) {
  m.order_id = r.str("order_id", max_id_length);
  m.client_order_id = r.str("client_order_id", max_id_length);
  m.signal_id = r.str("signal_id", max_id_length);
  m.instrument = r.str("instrument", max_instrument_length);
  m.side = r.enumeration<Side>("side", 1, 2);
  m.status = r.enumeration<OrderStatus>("status", 1, 7);
  m.quantity = r.f64("quantity");
  m.filled_quantity = r.f64("filled_quantity");
  m.fill_price = r.f64("fill_price");
  m.reason = r.str("reason", max_text_length);
  m.created_ts_ns = r.i64("created_ts_ns");
  m.event_ts_ns = r.i64("event_ts_ns");
  m.causation_ts_ns = r.i64("causation_ts_ns");
}
template <class P>
void write(P& p, const OrderEvent& m) {
  p.pack(m.order_id).pack(m.client_order_id).pack(m.signal_id).pack(m.instrument)
      .pack(static_cast<std::uint8_t>(m.side)).pack(static_cast<std::uint8_t>(m.status))
      .pack(m.quantity).pack(m.filled_quantity).pack(m.fill_price).pack(m.reason)
      .pack(m.created_ts_ns).pack(m.event_ts_ns).pack(m.causation_ts_ns);
}
constexpr std::uint32_t field_count(const OrderEvent*) { return 13; }

void read(FieldReader& r, SignalAck& m) {
  m.signal_id = r.str("signal_id", max_id_length);
  m.status = r.enumeration<AckStatus>("status", 1, 3);
  m.reason = r.str("reason", max_text_length);
  m.ts_ns = r.i64("ts_ns");
}
template <class P>
void write(P& p, const SignalAck& m) {
  p.pack(m.signal_id).pack(static_cast<std::uint8_t>(m.status)).pack(m.reason).pack(m.ts_ns);
}
constexpr std::uint32_t field_count(const SignalAck*) { return 4; }

void read(FieldReader& r, DeadLetter& m) {
  m.source = r.str("source", max_id_length);
  m.reason = r.str("reason", max_id_length);
  m.detail = r.str("detail", max_text_length);
  m.ts_ns = r.i64("ts_ns");
  m.original = r.bin("original");
}
template <class P>
void write(P& p, const DeadLetter& m) {
  p.pack(m.source).pack(m.reason).pack(m.detail).pack(m.ts_ns);
  p.pack_bin(static_cast<std::uint32_t>(m.original.size()));
  p.pack_bin_body(m.original.data(), static_cast<std::uint32_t>(m.original.size()));
}
constexpr std::uint32_t field_count(const DeadLetter*) { return 5; }

template <class T>
std::string_view encode_into(msgpack::sbuffer& buf, const T& msg) {
  buf.clear();
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(2 + field_count(static_cast<const T*>(nullptr)));
  p.pack(static_cast<std::uint8_t>(T::type));
  p.pack(schema_version);
  write(p, msg);
  return {buf.data(), buf.size()};
}

// ---- value checks ----------------------------------------------------------

std::optional<DecodeError> out_of_range(std::string detail) {
  return DecodeError{ErrorCode::out_of_range, std::move(detail)};
}

bool positive(double v) { return std::isfinite(v) && v > 0; }
bool non_negative(double v) { return std::isfinite(v) && v >= 0; }

std::optional<DecodeError> check_instrument(const std::string& s) {
  if (s.empty()) return out_of_range("instrument is empty");
  if (s.size() > max_instrument_length) return out_of_range("instrument is too long");
  for (char c : s) {
    // Printable ASCII without space or '.', so that topics stay unambiguous.
    if (c <= ' ' || c > '~' || c == '.') return out_of_range("instrument has a forbidden character");
  }
  return std::nullopt;
}

std::optional<DecodeError> check_id(const std::string& s, const char* name) {
  if (s.empty()) return out_of_range(std::string(name) + " is empty");
  return std::nullopt;
}

}  // namespace

std::string_view to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::malformed: return "malformed";
    case ErrorCode::not_an_array: return "not_an_array";
    case ErrorCode::wrong_message: return "wrong_message";
    case ErrorCode::unknown_type: return "unknown_type";
    case ErrorCode::unknown_version: return "unknown_version";
    case ErrorCode::missing_field: return "missing_field";
    case ErrorCode::wrong_type: return "wrong_type";
    case ErrorCode::out_of_range: return "out_of_range";
    case ErrorCode::too_large: return "too_large";
  }
  return "?";
}

std::string DecodeError::message() const {
  std::string m(to_string(code));
  if (!detail.empty()) {
    m += ": ";
    m += detail;
  }
  return m;
}

std::optional<DecodeError> validate(const TickEvent& t) {
  if (auto e = check_instrument(t.instrument)) return e;
  if (!positive(t.bid)) return out_of_range("bid must be a positive finite price");
  if (!positive(t.ask)) return out_of_range("ask must be a positive finite price");
  if (t.bid > t.ask) return out_of_range("crossed book: bid above ask");
  if (!non_negative(t.bid_volume)) return out_of_range("bid_volume must be finite and >= 0");
  if (!non_negative(t.ask_volume)) return out_of_range("ask_volume must be finite and >= 0");
  if (t.seq == 0) return out_of_range("seq starts at 1");
  return std::nullopt;
}

std::optional<DecodeError> validate(const Heartbeat& h) {
  return check_id(h.source, "source");
}

std::optional<DecodeError> validate(const TradingSignal& s) {
  if (auto e = check_id(s.signal_id, "signal_id")) return e;
  if (auto e = check_id(s.strategy, "strategy")) return e;
  if (auto e = check_instrument(s.instrument)) return e;
  if (!positive(s.quantity)) return out_of_range("quantity must be positive and finite");
  if (!positive(s.trigger_price)) return out_of_range("trigger_price must be positive and finite");
  if (!(s.confidence >= 0 && s.confidence <= 1)) return out_of_range("confidence must be in [0, 1]");
  if (s.expires_ts_ns < s.created_ts_ns) return out_of_range("expires before it was created");
  return std::nullopt;
}

std::optional<DecodeError> validate(const OrderRequest& o) {
  if (auto e = check_id(o.client_order_id, "client_order_id")) return e;
  if (auto e = check_instrument(o.instrument)) return e;
  if (!positive(o.quantity)) return out_of_range("quantity must be positive and finite");
  if (!std::isfinite(o.price_hint) || o.price_hint < 0) return out_of_range("price_hint must be finite and >= 0");
  return std::nullopt;
}

std::optional<DecodeError> validate(const OrderQuery& q) {
  return check_id(q.client_order_id, "client_order_id");
}

std::optional<DecodeError> validate(const OrderReply& r) {
  if (auto e = check_id(r.client_order_id, "client_order_id")) return e;
  if (!non_negative(r.filled_quantity)) return out_of_range("filled_quantity must be finite and >= 0");
  if (!non_negative(r.fill_price)) return out_of_range("fill_price must be finite and >= 0");
  return std::nullopt;
}

std::optional<DecodeError> validate(const OrderEvent& o) {
  if (auto e = check_id(o.client_order_id, "client_order_id")) return e;
  if (auto e = check_instrument(o.instrument)) return e;
  if (!non_negative(o.quantity)) return out_of_range("quantity must be finite and >= 0");
  if (!non_negative(o.filled_quantity)) return out_of_range("filled_quantity must be finite and >= 0");
  if (!non_negative(o.fill_price)) return out_of_range("fill_price must be finite and >= 0");
  return std::nullopt;
}

std::optional<DecodeError> validate(const SignalAck& a) {
  return check_id(a.signal_id, "signal_id");
}

std::optional<DecodeError> validate(const DeadLetter& d) {
  if (auto e = check_id(d.source, "source")) return e;
  return check_id(d.reason, "reason");
}

std::string_view Encoder::encode(const TickEvent& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const Heartbeat& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const TradingSignal& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const OrderRequest& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const OrderQuery& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const OrderReply& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const OrderEvent& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const SignalAck& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const DeadLetter& m) { return encode_into(buf_, m); }

namespace {

// Unpacks the envelope and checks type and version; returns the fields after
// them. Throws FieldError.
std::pair<const msgpack::object*, std::size_t> open_envelope(msgpack::zone& zone, Bytes payload,
                                                             std::size_t max_bytes,
                                                             const MsgType* expected,
                                                             MsgType* type_out) {
  if (payload.empty()) fail(ErrorCode::malformed, "empty payload");
  if (payload.size() > max_bytes)
    fail(ErrorCode::too_large, std::to_string(payload.size()) + " bytes, limit " + std::to_string(max_bytes));
  zone.clear();
  std::size_t off = 0;
  msgpack::object root;
  try {
    root = msgpack::unpack(zone, reinterpret_cast<const char*>(payload.data()), payload.size(), off,
                           nullptr, nullptr, limits_for(max_bytes));
  } catch (const msgpack::insufficient_bytes&) {
    fail(ErrorCode::malformed, "truncated msgpack");
  } catch (const std::exception& e) {
    // parse_error, size_overflow (limits), depth_size_overflow, bad_alloc...
    fail(ErrorCode::malformed, std::string("msgpack: ") + e.what());
  }
  if (off != payload.size())
    fail(ErrorCode::malformed, std::to_string(payload.size() - off) + " trailing bytes");
  if (root.type != msgpack::type::ARRAY) fail(ErrorCode::not_an_array, "payload is not a msgpack array");
  const auto& arr = root.via.array;
  if (arr.size < 2) fail(ErrorCode::missing_field, "envelope needs [type, version, ...]");
  FieldReader head(arr.ptr, 2);
  auto raw_type = head.u64("type");
  auto version = head.u64("version");
  if (raw_type < 1 || raw_type > 9) fail(ErrorCode::unknown_type, "type " + std::to_string(raw_type));
  auto type = static_cast<MsgType>(raw_type);
  if (version != schema_version)
    fail(ErrorCode::unknown_version, "version " + std::to_string(version) + ", this reader knows " +
                                         std::to_string(schema_version));
  if (expected && type != *expected)
    fail(ErrorCode::wrong_message, "expected " + std::string(to_string(*expected)) + ", got " +
                                       std::string(to_string(type)));
  if (type_out) *type_out = type;
  return {arr.ptr + 2, arr.size - 2};
}

}  // namespace

template <class T>
Result<T> Decoder::decode(Bytes payload, std::size_t max_bytes) {
  try {
    MsgType expected = T::type;
    auto [fields, count] = open_envelope(zone_, payload, max_bytes, &expected, nullptr);
    FieldReader r(fields, count);
    T msg;
    read(r, msg);
    if (auto err = validate(msg)) return std::move(*err);
    return msg;
  } catch (FieldError& e) {
    return DecodeError{e.code, std::move(e.detail)};
  } catch (const std::exception& e) {
    return DecodeError{ErrorCode::malformed, e.what()};
  }
}

Result<MsgType> Decoder::peek_type(Bytes payload) {
  try {
    MsgType type{};
    open_envelope(zone_, payload, max_dead_letter_bytes, nullptr, &type);
    return type;
  } catch (FieldError& e) {
    return DecodeError{e.code, std::move(e.detail)};
  } catch (const std::exception& e) {
    return DecodeError{ErrorCode::malformed, e.what()};
  }
}

Result<TickEvent> Decoder::decode_tick(Bytes b) { return decode<TickEvent>(b); }
Result<Heartbeat> Decoder::decode_heartbeat(Bytes b) { return decode<Heartbeat>(b); }
Result<TradingSignal> Decoder::decode_signal(Bytes b) { return decode<TradingSignal>(b); }
Result<OrderRequest> Decoder::decode_order_request(Bytes b) { return decode<OrderRequest>(b); }
Result<OrderQuery> Decoder::decode_order_query(Bytes b) { return decode<OrderQuery>(b); }
Result<OrderReply> Decoder::decode_order_reply(Bytes b) { return decode<OrderReply>(b); }
Result<OrderEvent> Decoder::decode_order_event(Bytes b) { return decode<OrderEvent>(b); }
Result<SignalAck> Decoder::decode_signal_ack(Bytes b) { return decode<SignalAck>(b); }
Result<DeadLetter> Decoder::decode_dead_letter(Bytes b) {
  return decode<DeadLetter>(b, max_dead_letter_bytes);
}

}  // namespace proto
