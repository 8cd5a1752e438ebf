// The vocabulary of the wire schema: each message of messages.hpp lists its
// fields once, in wire order, as a tuple of wire::Field (name, member, kind,
// length limit, optional or not) returned by its static wire_fields().
// Everything that knows the field list follows from that one table: the
// encoder, both decoders (codec.cpp), the field counts, the optional appended
// fields, the schema dump that checks scripts/tp_proto.py and
// docs/PROTOCOL.md (tests/proto/test_schema.py), the way QuickFIX generates
// its messages from spec/FIX44.xml.
//
// Kind, optionality and the member are template parameters or constants of a
// constexpr table, so a reader or writer generated from it compiles to the
// same straight-line code as a hand-written field list (micro_bench codec/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tp::proto::wire {

// How a field travels. `enumeration` is a u8 on the wire whose accepted
// values and display name come from EnumInfo.
enum class Kind : std::uint8_t { str, bin, f64, i64, u64, u32, boolean, enumeration };

// For each enum carried as a field: its name in docs/PROTOCOL.md and the
// range a reader accepts. Specialised next to the enum (messages.hpp).
template <class E>
struct EnumInfo;

// One field of message M: member `member` of type T. Optional fields come
// last (appended after a schema was published); a reader without them sets
// the member to T{}.
template <class M, class T, Kind K, bool Optional = false>
struct Field {
  using message = M;
  using value_type = T;
  static constexpr Kind kind = K;
  static constexpr bool optional = Optional;
  const char* name;
  T M::*member;
  std::size_t max_len = std::numeric_limits<std::size_t>::max();  // str only
};

// Builders, one per kind; the member's type must match the kind.
template <class M>
constexpr auto str(const char* name, std::string M::*member, std::size_t max_len) {
  return Field<M, std::string, Kind::str>{name, member, max_len};
}
// Bytes (msgpack bin); a reader also takes a str. No limit but the payload's.
template <class M>
constexpr auto bin(const char* name, std::string M::*member) {
  return Field<M, std::string, Kind::bin>{name, member};
}
template <class M>
constexpr auto f64(const char* name, double M::*member) {
  return Field<M, double, Kind::f64>{name, member};
}
template <class M>
constexpr auto i64(const char* name, std::int64_t M::*member) {
  return Field<M, std::int64_t, Kind::i64>{name, member};
}
template <class M>
constexpr auto u64(const char* name, std::uint64_t M::*member) {
  return Field<M, std::uint64_t, Kind::u64>{name, member};
}
template <class M>
constexpr auto u32(const char* name, std::uint32_t M::*member) {
  return Field<M, std::uint32_t, Kind::u32>{name, member};
}
template <class M>
constexpr auto boolean(const char* name, bool M::*member) {
  return Field<M, bool, Kind::boolean>{name, member};
}
template <class M, class E>
constexpr auto enumeration(const char* name, E M::*member) {
  return Field<M, E, Kind::enumeration>{name, member};
}
// The same field, optional (only at the end of a message).
template <class M, class T, Kind K>
constexpr auto optional(Field<M, T, K, false> f) {
  return Field<M, T, K, true>{f.name, f.member, f.max_len};
}

// The table of message M.
template <class M>
inline constexpr auto fields_of = M::wire_fields();

template <class M>
inline constexpr std::size_t field_count = std::tuple_size_v<decltype(fields_of<M>)>;

// Fields a reader needs: those before the first optional one. The
// static_assert keeps optional fields at the end, where old readers ignore
// them and new readers can do without them.
template <class M>
constexpr std::size_t required_field_count_of() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    constexpr bool opt[] = {
        false, std::tuple_element_t<I, std::remove_cvref_t<decltype(fields_of<M>)>>::optional...};
    std::size_t required = 0;
    while (required < sizeof...(I) && !opt[required + 1]) ++required;
    for (std::size_t i = required; i < sizeof...(I); ++i)
      if (!opt[i + 1]) return std::size_t{0} - 1;  // a required field after an optional one
    return required;
  }
  (std::make_index_sequence<field_count<M>>{});
}
template <class M>
inline constexpr std::size_t required_field_count = required_field_count_of<M>();

// Calls fn(field) for each field of M in wire order; fn sees the field's
// kind and optionality in its type.
template <class M, class Fn>
[[gnu::always_inline]] constexpr void for_each_field(Fn&& fn) {
  [&]<std::size_t... I>(std::index_sequence<I...>) { (fn(std::get<I>(fields_of<M>)), ...); }
  (std::make_index_sequence<field_count<M>>{});
}

// The field of M whose member is `member` (validation messages name fields
// by their wire name).
template <class M, class T>
constexpr const char* name_of(T M::*member) {
  const char* found = nullptr;
  for_each_field<M>([&](const auto& f) {
    if constexpr (std::is_same_v<typename std::remove_cvref_t<decltype(f)>::value_type, T>)
      if (f.member == member) found = f.name;
  });
  return found;
}

// The length limit of the str field whose member is `member`.
template <class M>
constexpr std::size_t max_len_of(std::string M::*member) {
  std::size_t found = 0;
  for_each_field<M>([&](const auto& f) {
    if constexpr (std::remove_cvref_t<decltype(f)>::kind == Kind::str)
      if (f.member == member) found = f.max_len;
  });
  return found;
}

// docs/PROTOCOL.md's spelling of a field's type ("str", "u8 Side"...).
template <class F>
std::string type_name() {
  switch (F::kind) {
    case Kind::str:
      return "str";
    case Kind::bin:
      return "bin";
    case Kind::f64:
      return "f64";
    case Kind::i64:
      return "i64";
    case Kind::u64:
      return "u64";
    case Kind::u32:
      return "u32";
    case Kind::boolean:
      return "bool";
    case Kind::enumeration:
      if constexpr (F::kind == Kind::enumeration)
        return std::string("u8 ") + EnumInfo<typename F::value_type>::name;
  }
  return "?";
}

}  // namespace tp::proto::wire
