#include "proto/codec.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <msgpack.hpp>
#include <type_traits>

#include "proto/byte_packer.hpp"

namespace tp::proto {
namespace {

// Every field of every message is a scalar, so anything nested deeper than an
// appended optional field's own array or map is hostile.
constexpr std::size_t max_depth = 4;
constexpr std::size_t max_container = 64;

msgpack::unpack_limit limits_for(std::size_t max_bytes) {
  return msgpack::unpack_limit(max_container, max_container, max_bytes, max_bytes, max_bytes, max_depth);
}

// Thrown inside this file only; decode() turns it into a DecodeError.
struct FieldError {
  ErrorCode code;
  std::string detail;
};

[[noreturn]] void fail(ErrorCode code, std::string detail) { throw FieldError{code, std::move(detail)}; }

// Reads the envelope's fields one by one, by name, in wire order.
class FieldReader {
 public:
  FieldReader(const msgpack::object* fields, std::size_t count) : fields_(fields), count_(count) {}

  void str(std::string& out, const char* name, std::size_t max_len) {
    const auto& o = next(name);
    if (o.type != msgpack::type::STR) wrong(name, "string");
    if (o.via.str.size > max_len)
      fail(ErrorCode::out_of_range, std::string(name) + " is longer than " + std::to_string(max_len));
    out.assign(o.via.str.ptr, o.via.str.size);
  }

  void bin(std::string& out, const char* name) {
    const auto& o = next(name);
    if (o.type == msgpack::type::BIN) return out.assign(o.via.bin.ptr, o.via.bin.size), void();
    if (o.type == msgpack::type::STR) return out.assign(o.via.str.ptr, o.via.str.size), void();
    wrong(name, "binary");
  }

  // msgpack-c writes whole-number doubles as integers; accept both.
  double f64(const char* name) {
    const auto& o = next(name);
    switch (o.type) {
      case msgpack::type::FLOAT64:
      case msgpack::type::FLOAT32:
        return o.via.f64;
      case msgpack::type::POSITIVE_INTEGER:
        return static_cast<double>(o.via.u64);
      case msgpack::type::NEGATIVE_INTEGER:
        return static_cast<double>(o.via.i64);
      default:
        wrong(name, "number");
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

  // True when the envelope holds another field: an optional appended field
  // is read only then.
  bool more() const noexcept { return index_ < count_; }

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

// ---- fast path: reads the msgpack bytes in place ----------------------------
//
// The reference path above unpacks into a msgpack::object tree in a zone and
// then reads the tree; for a tick that is most of a strategy's per-tick work.
// The fast path walks the bytes once, writing straight into the message, and
// allocates nothing but what the strings themselves need. It only ever says
// "accepted" or "not sure": anything it does not accept (any error, an ext
// type, a payload msgpack-c would refuse) is decoded again by the reference
// path, so error codes and details stay exactly the reference's. It accepts
// only what the reference accepts, with the same value: the same integer and
// float forms, the same container and depth limits for skipped fields, no
// trailing bytes.

template <class U>
U load_be(const unsigned char* p) noexcept {
  U v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
  }
  return v;
}

// Skips one msgpack object whose containers, if any, sit at nesting `level`
// (the envelope is level 1), with msgpack-c's checks under limits_for():
// at most max_container elements or pairs, a container only while
// level <= max_depth (msgpack-c refuses a container when its stack of open
// containers is already deeper than max_depth). Recursion is bounded by
// max_depth. False when msgpack-c would refuse the bytes or when this does not
// know (ext types): the caller falls back to the reference path.
bool skip_object(const unsigned char*& p, const unsigned char* end, std::size_t level) noexcept {
  if (p >= end) return false;
  const unsigned b = *p++;
  std::size_t len = 0;    // bytes of payload after the header
  std::size_t items = 0;  // objects inside a container
  bool container = false;
  auto length = [&](std::size_t width) -> bool {
    if (static_cast<std::size_t>(end - p) < width) return false;
    len = width == 1 ? *p : width == 2 ? load_be<std::uint16_t>(p) : load_be<std::uint32_t>(p);
    p += width;
    return true;
  };
  auto count = [&](std::size_t width, bool map) -> bool {
    if (static_cast<std::size_t>(end - p) < width) return false;
    items = width == 2 ? load_be<std::uint16_t>(p) : load_be<std::uint32_t>(p);
    p += width;
    if (items > max_container) return false;
    if (map) items *= 2;
    container = true;
    return true;
  };
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return true;
  if ((b & 0xe0) == 0xa0) {
    len = b & 0x1f;
  } else if ((b & 0xf0) == 0x90 || (b & 0xf0) == 0x80) {
    items = b & 0x0f;
    if ((b & 0xf0) == 0x80) items *= 2;
    container = true;
  } else {
    switch (b) {
      case 0xcc:
      case 0xd0:
        len = 1;
        break;
      case 0xcd:
      case 0xd1:
        len = 2;
        break;
      case 0xce:
      case 0xd2:
      case 0xca:
        len = 4;
        break;
      case 0xcf:
      case 0xd3:
      case 0xcb:
        len = 8;
        break;
      case 0xd9:
      case 0xc4:
        if (!length(1)) return false;
        break;
      case 0xda:
      case 0xc5:
        if (!length(2)) return false;
        break;
      case 0xdb:
      case 0xc6:
        if (!length(4)) return false;
        break;
      case 0xdc:
        if (!count(2, false)) return false;
        break;
      case 0xdd:
        if (!count(4, false)) return false;
        break;
      case 0xde:
        if (!count(2, true)) return false;
        break;
      case 0xdf:
        if (!count(4, true)) return false;
        break;
      default:
        return false;  // 0xc1 (never used) and the ext family
    }
  }
  if (!container) {
    if (static_cast<std::size_t>(end - p) < len) return false;
    p += len;
    return true;
  }
  if (level > max_depth) return false;
  for (std::size_t i = 0; i < items; ++i) {
    if (!skip_object(p, end, level + 1)) return false;
  }
  return true;
}

// The FieldReader interface over raw bytes. A failed read clears ok() and
// makes every later read fail too; values read after a failure are garbage
// and the caller discards the message.
class ByteReader {
 public:
  ByteReader(const unsigned char* p, const unsigned char* end) noexcept : p_(p), end_(end) {}

  // Opens the envelope: an array of at least 2 + `fields` and at most
  // max_container elements whose type and version are `type` and
  // schema_version (or, for `type` 0, any known type, stored in *type_out).
  bool open(unsigned type, std::size_t fields, MsgType* type_out = nullptr) noexcept {
    if (p_ >= end_) return false;
    const unsigned b = *p_++;
    std::size_t n = 0;
    if ((b & 0xf0) == 0x90) {
      n = b & 0x0f;
    } else if (b == 0xdc && end_ - p_ >= 2) {
      n = load_be<std::uint16_t>(p_);
      p_ += 2;
    } else if (b == 0xdd && end_ - p_ >= 4) {
      n = load_be<std::uint32_t>(p_);
      p_ += 4;
    } else {
      return false;
    }
    if (n > max_container || n < 2 + fields) return false;
    left_ = n;
    const auto t = u64_("type");
    const auto v = u64_("version");
    if (!ok_ || v != schema_version) return false;
    if (type == 0) {
      if (t < 1 || t > max_msg_type) return false;
      if (type_out) *type_out = static_cast<MsgType>(t);
    } else if (t != type) {
      return false;
    }
    return true;
  }

  // Skips the appended fields this reader does not know; true when the
  // envelope ends exactly at the end of the payload.
  bool finish() noexcept {
    if (!ok_) return false;
    for (; left_ > 0; --left_) {
      if (!skip_object(p_, end_, 2)) return false;
    }
    return p_ == end_;
  }

  void str(std::string& out, const char*, std::size_t max_len) { take(out, head(), false, max_len); }
  // A bin field also takes a str (peers without a bin type send one).
  void bin(std::string& out, const char*) {
    take(out, head(), true, std::numeric_limits<std::size_t>::max());
  }

  [[gnu::always_inline]] double f64(const char*) noexcept {
    const unsigned b = head();
    if (b == 0xcb) {
      if (end_ - p_ < 8) return bad(), 0.0;
      const auto bits = load_be<std::uint64_t>(p_);
      p_ += 8;
      return std::bit_cast<double>(bits);
    }
    if (b == 0xca) {
      if (end_ - p_ < 4) return bad(), 0.0;
      const auto bits = load_be<std::uint32_t>(p_);
      p_ += 4;
      return static_cast<double>(std::bit_cast<float>(bits));
    }
    std::uint64_t u = 0;
    std::int64_t i = 0;
    switch (integer(b, u, i)) {
      case sign::positive:
        return static_cast<double>(u);
      case sign::negative:
        return static_cast<double>(i);
      case sign::none:
        break;
    }
    return bad(), 0.0;
  }

  std::uint64_t u64(const char* name) noexcept { return u64_(name); }

  std::uint32_t u32(const char* name) noexcept {
    const auto v = u64_(name);
    if (v > std::numeric_limits<std::uint32_t>::max()) return bad(), 0;
    return static_cast<std::uint32_t>(v);
  }

  [[gnu::always_inline]] std::int64_t i64(const char*) noexcept {
    std::uint64_t u = 0;
    std::int64_t i = 0;
    switch (integer(head(), u, i)) {
      case sign::negative:
        return i;
      case sign::positive:
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) break;
        return static_cast<std::int64_t>(u);
      case sign::none:
        break;
    }
    return bad(), 0;
  }

  bool boolean(const char*) noexcept {
    const unsigned b = head();
    if (b == 0xc2) return false;
    if (b == 0xc3) return true;
    return bad(), false;
  }

  template <class Enum>
  Enum enumeration(const char* name, std::uint64_t lo, std::uint64_t hi) noexcept {
    const auto v = u64_(name);
    if (v < lo || v > hi) return bad(), Enum{};
    return static_cast<Enum>(v);
  }

  bool ok() const noexcept { return ok_; }
  bool more() const noexcept { return left_ > 0; }

 private:
  enum class sign : std::uint8_t { none, positive, negative };

  // The next field's first byte; 0xc1 (never valid) when there is none.
  [[gnu::always_inline]] unsigned head() noexcept {
    if (left_ == 0 || p_ >= end_) {
      bad();
      return 0xc1;
    }
    --left_;
    return *p_++;
  }
  void bad() noexcept {
    ok_ = false;
    left_ = 0;  // every later head() fails
  }
  // The str (or, when bin_ok, bin) whose format byte is b, at most max_len
  // bytes, into out. resize + copy instead of assign(): a reused string of
  // the same length (a tick's instrument, decoded into the same struct every
  // time) takes no library call but the copy.
  void take(std::string& out, unsigned b, bool bin_ok, std::size_t max_len) {
    std::size_t len = 0;
    if ((b & 0xe0) == 0xa0) {
      len = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
      if (!length(b - 0xd9, len)) return;
    } else if (bin_ok && b >= 0xc4 && b <= 0xc6) {
      if (!length(b - 0xc4, len)) return;
    } else {
      return bad();
    }
    if (len > max_len || static_cast<std::size_t>(end_ - p_) < len) return bad();
    out.resize(len);
    std::memcpy(out.data(), p_, len);
    p_ += len;
  }
  // A 1-, 2- or 4-byte big-endian length (width_code 0, 1, 2).
  bool length(unsigned width_code, std::size_t& len) noexcept {
    const std::size_t width = std::size_t{1} << width_code;
    if (static_cast<std::size_t>(end_ - p_) < width) return bad(), false;
    len = width == 1 ? *p_ : width == 2 ? load_be<std::uint16_t>(p_) : load_be<std::uint32_t>(p_);
    p_ += width;
    return true;
  }
  // Any msgpack integer form; like msgpack-c, a signed form holding a value
  // >= 0 is positive.
  [[gnu::always_inline]] sign integer(unsigned b, std::uint64_t& u, std::int64_t& i) noexcept {
    if (b <= 0x7f) return u = b, sign::positive;
    if (b >= 0xe0) return i = static_cast<std::int8_t>(b), sign::negative;
    if (b < 0xcc || b > 0xd3) return sign::none;
    const std::size_t width = std::size_t{1} << ((b - 0xcc) & 3);
    if (static_cast<std::size_t>(end_ - p_) < width) return sign::none;
    const unsigned char* q = p_;
    p_ += width;
    if (b <= 0xcf) {
      u = width == 1   ? *q
          : width == 2 ? load_be<std::uint16_t>(q)
          : width == 4 ? load_be<std::uint32_t>(q)
                       : load_be<std::uint64_t>(q);
      return sign::positive;
    }
    i = width == 1   ? static_cast<std::int8_t>(*q)
        : width == 2 ? static_cast<std::int16_t>(load_be<std::uint16_t>(q))
        : width == 4 ? static_cast<std::int32_t>(load_be<std::uint32_t>(q))
                     : static_cast<std::int64_t>(load_be<std::uint64_t>(q));
    if (i >= 0) return u = static_cast<std::uint64_t>(i), sign::positive;
    return sign::negative;
  }
  [[gnu::always_inline]] std::uint64_t u64_(const char*) noexcept {
    std::uint64_t u = 0;
    std::int64_t i = 0;
    if (integer(head(), u, i) == sign::positive) return u;
    return bad(), 0;
  }

  const unsigned char* p_;
  const unsigned char* end_;
  std::size_t left_ = 0;  // envelope elements not read yet
  bool ok_ = true;
};

// ---- reading and writing from the schema (messages.hpp, schema.hpp) --------
//
// One generic reader and writer for every message: the field list is each
// message's wire_fields(), so adding a field there changes the encoder, both
// decoders and the counts at once. R is FieldReader (reference path) or
// ByteReader (fast path); both inline the whole list.

template <class F, class R, class T>
[[gnu::always_inline]] inline void read_field(R& r, const F& f, T& m) {
  auto& v = m.*f.member;
  if constexpr (F::optional) {
    if (!r.more()) {  // an appended field an older writer did not send
      v = typename F::value_type{};
      return;
    }
  }
  if constexpr (F::kind == wire::Kind::str)
    r.str(v, f.name, f.max_len);
  else if constexpr (F::kind == wire::Kind::bin)
    r.bin(v, f.name);
  else if constexpr (F::kind == wire::Kind::f64)
    v = r.f64(f.name);
  else if constexpr (F::kind == wire::Kind::i64)
    v = r.i64(f.name);
  else if constexpr (F::kind == wire::Kind::u64)
    v = r.u64(f.name);
  else if constexpr (F::kind == wire::Kind::u32)
    v = r.u32(f.name);
  else if constexpr (F::kind == wire::Kind::boolean)
    v = r.boolean(f.name);
  else {
    using E = typename F::value_type;
    v = r.template enumeration<E>(f.name, wire::EnumInfo<E>::lo, wire::EnumInfo<E>::hi);
  }
}

// Index packs rather than a generic lambda: GCC left the lambda's calls for
// the f64 and i64 fields out of line (a call per field on the fast path,
// visible in micro_bench codec/decode_into), while always_inline functions
// keep the whole list in the caller.
template <class R, class T, std::size_t... I>
[[gnu::always_inline]] inline void read_fields(R& r, T& m, std::index_sequence<I...>) {
  (read_field(r, std::get<I>(wire::fields_of<T>), m), ...);
}

template <class R, class T>
[[gnu::always_inline]] inline void read(R& r, T& m) {
  read_fields(r, m, std::make_index_sequence<wire::field_count<T>>{});
}

template <class P, class F, class T>
[[gnu::always_inline]] inline void write_field(P& p, const F& f, const T& m) {
  const auto& v = m.*f.member;
  if constexpr (F::kind == wire::Kind::bin) {
    p.pack_bin(static_cast<std::uint32_t>(v.size()));
    p.pack_bin_body(v.data(), static_cast<std::uint32_t>(v.size()));
  } else if constexpr (F::kind == wire::Kind::enumeration) {
    p.pack(static_cast<std::uint8_t>(v));
  } else {
    p.pack(v);
  }
}

template <class P, class T, std::size_t... I>
[[gnu::always_inline]] inline void write_fields(P& p, const T& m, std::index_sequence<I...>) {
  (write_field(p, std::get<I>(wire::fields_of<T>), m), ...);
}

template <class P, class T>
[[gnu::always_inline]] inline void write(P& p, const T& m) {
  write_fields(p, m, std::make_index_sequence<wire::field_count<T>>{});
}

template <class T>
constexpr std::uint32_t field_count = static_cast<std::uint32_t>(wire::field_count<T>);

// Fields a reader needs; the ones after them are optional appended fields.
template <class T>
constexpr std::uint32_t required_field_count = [] {
  static_assert(wire::required_field_count<T> <= wire::field_count<T>,
                "optional fields must come after every required one");
  return static_cast<std::uint32_t>(wire::required_field_count<T>);
}();

template <class T>
std::string_view encode_into(std::vector<char>& buf, const T& msg) {
  BytePacker p(buf);
  p.pack_array(2 + field_count<T>);
  p.pack(static_cast<std::uint8_t>(T::type));
  p.pack(schema_version);
  write(p, msg);
  return p.view();
}

// ---- value checks ----------------------------------------------------------

std::optional<DecodeError> out_of_range(std::string detail) {
  return DecodeError{ErrorCode::out_of_range, std::move(detail)};
}

bool positive(double v) { return std::isfinite(v) && v > 0; }
bool non_negative(double v) { return std::isfinite(v) && v >= 0; }

// The wire name of a message's member, from its schema: error details name
// fields as the wire and docs/PROTOCOL.md do.
template <auto Member>
constexpr const char* name() {
  constexpr const char* n = wire::name_of(Member);
  static_assert(n != nullptr, "not a field of the message's schema");
  return n;
}

template <auto Member>
std::optional<DecodeError> out_of_range(const char* what) {
  return out_of_range(std::string(name<Member>()) + what);
}

template <auto Member, class M>
std::optional<DecodeError> check_instrument(const M& m) {
  constexpr std::size_t max_len = wire::max_len_of(Member);
  static_assert(max_len == max_instrument_length);
  const std::string& s = m.*Member;
  if (s.empty()) return out_of_range<Member>(" is empty");
  if (s.size() > max_len) return out_of_range<Member>(" is too long");
  for (char c : s) {
    // Printable ASCII without space or '.', so that topics stay unambiguous.
    if (c <= ' ' || c > '~' || c == '.') return out_of_range<Member>(" has a forbidden character");
  }
  return std::nullopt;
}

template <auto Member, class M>
std::optional<DecodeError> check_id(const M& m) {
  if ((m.*Member).empty()) return out_of_range<Member>(" is empty");
  return std::nullopt;
}

}  // namespace

std::string_view to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::malformed:
      return "malformed";
    case ErrorCode::not_an_array:
      return "not_an_array";
    case ErrorCode::wrong_message:
      return "wrong_message";
    case ErrorCode::unknown_type:
      return "unknown_type";
    case ErrorCode::unknown_version:
      return "unknown_version";
    case ErrorCode::missing_field:
      return "missing_field";
    case ErrorCode::wrong_type:
      return "wrong_type";
    case ErrorCode::out_of_range:
      return "out_of_range";
    case ErrorCode::too_large:
      return "too_large";
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
  using M = TickEvent;
  if (auto e = check_instrument<&M::instrument>(t)) return e;
  if (!positive(t.bid)) return out_of_range<&M::bid>(" must be a positive finite price");
  if (!positive(t.ask)) return out_of_range<&M::ask>(" must be a positive finite price");
  if (t.bid > t.ask) return out_of_range("crossed book: bid above ask");
  if (!non_negative(t.bid_volume)) return out_of_range<&M::bid_volume>(" must be finite and >= 0");
  if (!non_negative(t.ask_volume)) return out_of_range<&M::ask_volume>(" must be finite and >= 0");
  if (t.seq == 0) return out_of_range<&M::seq>(" starts at 1");
  return std::nullopt;
}

std::optional<DecodeError> validate(const Heartbeat& h) { return check_id<&Heartbeat::source>(h); }

std::optional<DecodeError> validate(const TradingSignal& s) {
  using M = TradingSignal;
  if (auto e = check_id<&M::signal_id>(s)) return e;
  if (auto e = check_id<&M::strategy>(s)) return e;
  if (auto e = check_instrument<&M::instrument>(s)) return e;
  if (!positive(s.quantity)) return out_of_range<&M::quantity>(" must be positive and finite");
  if (!positive(s.trigger_price)) return out_of_range<&M::trigger_price>(" must be positive and finite");
  if (!(s.confidence >= 0 && s.confidence <= 1)) return out_of_range<&M::confidence>(" must be in [0, 1]");
  if (s.expires_ts_ns < s.created_ts_ns) return out_of_range("expires before it was created");
  if (auto why = check_terms(s.terms())) return out_of_range(*why);
  return std::nullopt;
}

std::optional<DecodeError> validate(const OrderRequest& o) {
  using M = OrderRequest;
  if (auto e = check_id<&M::client_order_id>(o)) return e;
  if (auto e = check_instrument<&M::instrument>(o)) return e;
  if (!positive(o.quantity)) return out_of_range<&M::quantity>(" must be positive and finite");
  if (!std::isfinite(o.price_hint) || o.price_hint < 0)
    return out_of_range<&M::price_hint>(" must be finite and >= 0");
  if (auto why = check_terms(o.terms())) return out_of_range(*why);
  return std::nullopt;
}

std::optional<std::string> check_terms(const OrderTerms& t) {
  if (t.order_type == OrderType::limit) {
    if (!positive(t.limit_price)) return "limit_price must be positive and finite for a LIMIT order";
  } else {
    if (t.limit_price != 0) return "limit_price must be 0 for a MARKET order";
    if (t.time_in_force != TimeInForce::ioc) return "a MARKET order is IOC";
  }
  if (t.time_in_force == TimeInForce::gtd) {
    if (t.good_till_ns <= 0) return "good_till_ns must be set for a GTD order";
  } else if (t.good_till_ns != 0) {
    return "good_till_ns is for GTD orders only";
  }
  return std::nullopt;
}

std::optional<DecodeError> validate(const CancelRequest& c) {
  using M = CancelRequest;
  if (auto e = check_id<&M::signal_id>(c)) return e;
  return check_id<&M::strategy>(c);
}

std::optional<DecodeError> validate(const OrderCancel& c) {
  return check_id<&OrderCancel::client_order_id>(c);
}

std::optional<DecodeError> validate(const ExecutionReport& r) {
  using M = ExecutionReport;
  if (auto e = check_id<&M::client_order_id>(r)) return e;
  if (auto e = check_instrument<&M::instrument>(r)) return e;
  for (double v : {r.quantity, r.last_quantity, r.last_price, r.filled_quantity, r.avg_price})
    if (!non_negative(v)) return out_of_range("quantities and prices must be finite and >= 0");
  return std::nullopt;
}

std::optional<DecodeError> validate(const ReportQuery&) { return std::nullopt; }
std::optional<DecodeError> validate(const ReportBatch&) { return std::nullopt; }
std::optional<DecodeError> validate(const OpenOrdersQuery&) { return std::nullopt; }
// Every f64 field of `m` finite, the first that is not named: a NaN amount
// is no amount (and never equals itself), as Python's peer refuses it too.
template <class M>
std::optional<DecodeError> check_finite(const M& m) {
  std::optional<DecodeError> e;
  wire::for_each_field<M>([&](const auto& f) {
    if constexpr (std::remove_cvref_t<decltype(f)>::kind == wire::Kind::f64) {
      if (!e && !std::isfinite(m.*(f.member))) e = out_of_range(std::string(f.name) + " must be finite");
    }
  });
  return e;
}

std::optional<DecodeError> validate(const PortfolioEvent& p) { return check_finite(p); }
std::optional<DecodeError> validate(const InstrumentPnl& p) {
  if (auto e = check_instrument<&InstrumentPnl::instrument>(p)) return e;
  return check_finite(p);
}
std::optional<DecodeError> validate(const ControlRequest&) { return std::nullopt; }
std::optional<DecodeError> validate(const ControlReply&) { return std::nullopt; }

Result<std::vector<ExecutionReport>> unpack_reports(const ReportBatch& batch) {
  std::vector<ExecutionReport> out;
  msgpack::zone zone;
  std::size_t offset = 0;
  const auto& bytes = batch.reports;
  Decoder decoder;
  while (offset < bytes.size()) {
    const std::size_t start = offset;
    try {
      msgpack::unpack(zone, bytes.data(), bytes.size(), offset, nullptr, nullptr,
                      limits_for(max_payload_bytes));
    } catch (const std::exception& e) {
      return DecodeError{ErrorCode::malformed, std::string("reports: ") + e.what()};
    }
    auto report =
        decoder.decode_execution_report(as_bytes(std::string_view(bytes).substr(start, offset - start)));
    if (!report)
      return DecodeError{report.error().code,
                         "reports[" + std::to_string(out.size()) + "]: " + report.error().detail};
    out.push_back(std::move(report).value());
  }
  if (out.size() != batch.count)
    return DecodeError{ErrorCode::out_of_range, "count is " + std::to_string(batch.count) +
                                                    " but reports holds " + std::to_string(out.size())};
  return out;
}

void append_report(ReportBatch& batch, std::string_view encoded_report) {
  batch.reports.append(encoded_report);
  ++batch.count;
}

std::optional<DecodeError> validate(const OrderQuery& q) { return check_id<&OrderQuery::client_order_id>(q); }

std::optional<DecodeError> validate(const OrderReply& r) {
  using M = OrderReply;
  if (auto e = check_id<&M::client_order_id>(r)) return e;
  if (!non_negative(r.filled_quantity)) return out_of_range<&M::filled_quantity>(" must be finite and >= 0");
  if (!non_negative(r.fill_price)) return out_of_range<&M::fill_price>(" must be finite and >= 0");
  return std::nullopt;
}

std::optional<DecodeError> validate(const OrderEvent& o) {
  using M = OrderEvent;
  if (auto e = check_id<&M::client_order_id>(o)) return e;
  if (auto e = check_instrument<&M::instrument>(o)) return e;
  if (!non_negative(o.quantity)) return out_of_range<&M::quantity>(" must be finite and >= 0");
  if (!non_negative(o.filled_quantity)) return out_of_range<&M::filled_quantity>(" must be finite and >= 0");
  if (!non_negative(o.fill_price)) return out_of_range<&M::fill_price>(" must be finite and >= 0");
  return std::nullopt;
}

std::optional<DecodeError> validate(const SignalAck& a) { return check_id<&SignalAck::signal_id>(a); }

std::optional<DecodeError> validate(const PositionQuery& q) {
  return check_instrument<&PositionQuery::instrument>(q);
}

std::optional<DecodeError> validate(const PositionReply& r) {
  using M = PositionReply;
  if (auto e = check_instrument<&M::instrument>(r)) return e;
  if (!std::isfinite(r.quantity)) return out_of_range<&M::quantity>(" must be finite");
  return std::nullopt;
}

std::optional<DecodeError> validate(const StrategyPosition& p) {
  using M = StrategyPosition;
  if (auto e = check_id<&M::strategy>(p)) return e;
  if (auto e = check_instrument<&M::instrument>(p)) return e;
  if (!std::isfinite(p.quantity)) return out_of_range<&M::quantity>(" must be finite");
  return std::nullopt;
}

std::optional<DecodeError> validate(const DeadLetter& d) {
  if (auto e = check_id<&DeadLetter::source>(d)) return e;
  return check_id<&DeadLetter::reason>(d);
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
std::string_view Encoder::encode(const PositionQuery& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const PositionReply& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const StrategyPosition& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const CancelRequest& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const OrderCancel& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const ExecutionReport& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const ReportQuery& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const ReportBatch& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const OpenOrdersQuery& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const PortfolioEvent& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const InstrumentPnl& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const ControlRequest& m) { return encode_into(buf_, m); }
std::string_view Encoder::encode(const ControlReply& m) { return encode_into(buf_, m); }

namespace {

// Unpacks the envelope and checks type and version; returns the fields after
// them. Throws FieldError.
std::pair<const msgpack::object*, std::size_t> open_envelope(msgpack::zone& zone, Bytes payload,
                                                             std::size_t max_bytes, const MsgType* expected,
                                                             MsgType* type_out) {
  if (payload.empty()) fail(ErrorCode::malformed, "empty payload");
  if (payload.size() > max_bytes)
    fail(ErrorCode::too_large, std::to_string(payload.size()) + " bytes, limit " + std::to_string(max_bytes));
  zone.clear();
  std::size_t off = 0;
  msgpack::object root;
  try {
    root = msgpack::unpack(zone, reinterpret_cast<const char*>(payload.data()), payload.size(), off, nullptr,
                           nullptr, limits_for(max_bytes));
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
  if (raw_type < 1 || raw_type > max_msg_type)
    fail(ErrorCode::unknown_type, "type " + std::to_string(raw_type));
  auto type = static_cast<MsgType>(raw_type);
  if (version != schema_version)
    fail(ErrorCode::unknown_version,
         "version " + std::to_string(version) + ", this reader knows " + std::to_string(schema_version));
  if (expected && type != *expected)
    fail(ErrorCode::wrong_message,
         "expected " + std::string(to_string(*expected)) + ", got " + std::string(to_string(type)));
  if (type_out) *type_out = type;
  return {arr.ptr + 2, arr.size - 2};
}

// The reference path: msgpack-c unpacks into a tree, FieldReader reads it.
template <class T>
std::optional<DecodeError> decode_reference(msgpack::zone& zone, Bytes payload, std::size_t max_bytes,
                                            T& out) {
  try {
    MsgType expected = T::type;
    auto [fields, count] = open_envelope(zone, payload, max_bytes, &expected, nullptr);
    FieldReader r(fields, count);
    read(r, out);
    return validate(out);
  } catch (FieldError& e) {
    return DecodeError{e.code, std::move(e.detail)};
  } catch (const std::exception& e) {
    return DecodeError{ErrorCode::malformed, e.what()};
  }
}

// The fast path: true when the payload is a well-formed T (validate() still
// to be applied), false when the reference path must decide.
template <class T>
bool decode_fast(Bytes payload, std::size_t max_bytes, T& out) {
  if (payload.empty() || payload.size() > max_bytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  ByteReader r(p, p + payload.size());
  if (!r.open(static_cast<unsigned>(T::type), required_field_count<T>)) return false;
  read(r, out);
  return r.finish();
}

}  // namespace

template <class T>
std::optional<DecodeError> Decoder::decode_into(Bytes payload, T& out) {
  constexpr std::size_t max_bytes =
      T::type == MsgType::dead_letter ? max_dead_letter_bytes : max_payload_bytes;
  if (path_ == DecodePath::fast) {
    if (decode_fast(payload, max_bytes, out)) return validate(out);
    ++reference_decodes_;
  }
  return decode_reference(zone_, payload, max_bytes, out);
}

template std::optional<DecodeError> Decoder::decode_into(Bytes, TickEvent&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, Heartbeat&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, TradingSignal&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, OrderRequest&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, OrderQuery&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, OrderReply&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, OrderEvent&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, SignalAck&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, DeadLetter&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, PositionQuery&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, PositionReply&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, StrategyPosition&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, CancelRequest&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, OrderCancel&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, ExecutionReport&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, ReportQuery&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, ReportBatch&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, OpenOrdersQuery&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, PortfolioEvent&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, InstrumentPnl&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, ControlRequest&);
template std::optional<DecodeError> Decoder::decode_into(Bytes, ControlReply&);

template <class T>
Result<T> Decoder::decode(Bytes payload) {
  T msg;
  if (auto err = decode_into(payload, msg)) return std::move(*err);
  return msg;
}

Result<MsgType> Decoder::peek_type(Bytes payload) {
  if (path_ == DecodePath::fast) {
    if (!payload.empty() && payload.size() <= max_dead_letter_bytes) {
      const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
      ByteReader r(p, p + payload.size());
      MsgType type{};
      if (r.open(0, 0, &type) && r.finish()) return type;
    }
    ++reference_decodes_;
  }
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

std::optional<TradingSignal> Decoder::signal_sender(Bytes payload) {
  try {
    constexpr MsgType expected = MsgType::signal;
    auto [fields, count] = open_envelope(zone_, payload, max_payload_bytes, &expected, nullptr);
    FieldReader r(fields, count);
    // The schema's three leading fields, read as decode reads them.
    constexpr const auto& f = wire::fields_of<TradingSignal>;
    static_assert(std::get<0>(f).member == &TradingSignal::signal_id &&
                  std::get<1>(f).member == &TradingSignal::strategy &&
                  std::get<2>(f).member == &TradingSignal::instance);
    TradingSignal who;
    read_field(r, std::get<0>(f), who);
    read_field(r, std::get<1>(f), who);
    read_field(r, std::get<2>(f), who);
    if (check_id<&TradingSignal::signal_id>(who) || check_id<&TradingSignal::strategy>(who))
      return std::nullopt;
    return who;
  } catch (...) {
    return std::nullopt;
  }
}
Result<OrderRequest> Decoder::decode_order_request(Bytes b) { return decode<OrderRequest>(b); }
Result<OrderQuery> Decoder::decode_order_query(Bytes b) { return decode<OrderQuery>(b); }
Result<OrderReply> Decoder::decode_order_reply(Bytes b) { return decode<OrderReply>(b); }
Result<OrderEvent> Decoder::decode_order_event(Bytes b) { return decode<OrderEvent>(b); }
Result<SignalAck> Decoder::decode_signal_ack(Bytes b) { return decode<SignalAck>(b); }
Result<DeadLetter> Decoder::decode_dead_letter(Bytes b) { return decode<DeadLetter>(b); }
Result<PositionQuery> Decoder::decode_position_query(Bytes b) { return decode<PositionQuery>(b); }
Result<PositionReply> Decoder::decode_position_reply(Bytes b) { return decode<PositionReply>(b); }
Result<StrategyPosition> Decoder::decode_strategy_position(Bytes b) { return decode<StrategyPosition>(b); }
Result<CancelRequest> Decoder::decode_cancel_request(Bytes b) { return decode<CancelRequest>(b); }
Result<OrderCancel> Decoder::decode_order_cancel(Bytes b) { return decode<OrderCancel>(b); }
Result<ExecutionReport> Decoder::decode_execution_report(Bytes b) { return decode<ExecutionReport>(b); }
Result<ReportQuery> Decoder::decode_report_query(Bytes b) { return decode<ReportQuery>(b); }
Result<ReportBatch> Decoder::decode_report_batch(Bytes b) { return decode<ReportBatch>(b); }
Result<OpenOrdersQuery> Decoder::decode_open_orders_query(Bytes b) { return decode<OpenOrdersQuery>(b); }
Result<PortfolioEvent> Decoder::decode_portfolio_event(Bytes b) { return decode<PortfolioEvent>(b); }
Result<InstrumentPnl> Decoder::decode_instrument_pnl(Bytes b) { return decode<InstrumentPnl>(b); }
Result<ControlRequest> Decoder::decode_control_request(Bytes b) { return decode<ControlRequest>(b); }
Result<ControlReply> Decoder::decode_control_reply(Bytes b) { return decode<ControlReply>(b); }

}  // namespace tp::proto
