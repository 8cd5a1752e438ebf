// BytePacker: writes msgpack straight into a reused buffer, byte for byte what
// msgpack-c's packer writes for the same calls (smallest integer format,
// non-negative signed values as unsigned formats, a double with an integral
// value as that integer, str8 for 32..255-byte strings). The encoder's hot path: msgpack-c's
// packer over an sbuffer goes through a capacity check and a memcpy call per
// field, which made encoding a TickEvent 1.35x plain packing; this writes
// each field inline. tests/proto/test_byte_packer.cpp holds it to msgpack-c's
// output at every format boundary.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tp::proto {

class BytePacker {
 public:
  // Writes from the start of `buf`, growing it when needed; view() is what
  // was written (valid until `buf` changes).
  explicit BytePacker(std::vector<char>& buf) noexcept
      : buf_(buf), at_(buf.data()), end_(buf.data() + buf.size()) {}

  std::string_view view() const noexcept {
    return {buf_.data(), static_cast<std::size_t>(at_ - buf_.data())};
  }

  BytePacker& pack(bool v) {
    byte(v ? 0xc3 : 0xc2);
    return *this;
  }
  BytePacker& pack(double v) {
    // msgpack-c packs a double holding a whole number (also -0.0) as that
    // integer; decoders take an integer for a float field. NaN fails every
    // comparison and goes out as a float.
    if (v >= -9223372036854775808.0 && v < 9223372036854775808.0) {
      const auto i = static_cast<std::int64_t>(v);
      if (static_cast<double>(i) == v)
        return i < 0 ? pack_negative(i) : pack_unsigned(static_cast<std::uint64_t>(i));
    } else if (v >= 9223372036854775808.0 && v < 18446744073709551616.0) {
      const auto u = static_cast<std::uint64_t>(v);
      if (static_cast<double>(u) == v) return pack_unsigned(u);
    }
    return put(0xcb, std::bit_cast<std::uint64_t>(v));
  }
  BytePacker& pack(std::string_view s) {
    const auto n = s.size();
    if (n < 32) {
      byte(0xa0 | static_cast<unsigned>(n));
    } else if (n < 0x100) {
      put(0xd9, static_cast<std::uint8_t>(n));
    } else if (n < 0x10000) {
      put(0xda, static_cast<std::uint16_t>(n));
    } else {
      put(0xdb, static_cast<std::uint32_t>(n));
    }
    append(s.data(), n);
    return *this;
  }
  BytePacker& pack(const std::string& s) { return pack(std::string_view(s)); }

  template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) BytePacker& pack(T v) {
    if constexpr (std::is_signed_v<T>) {
      if (v < 0) return pack_negative(v);
    }
    return pack_unsigned(static_cast<std::uint64_t>(v));
  }

  void pack_array(std::uint32_t n) {
    if (n < 16) {
      byte(0x90 | n);
    } else if (n < 0x10000) {
      put(0xdc, static_cast<std::uint16_t>(n));
    } else {
      put(0xdd, n);
    }
  }
  void pack_bin(std::uint32_t n) {
    if (n < 0x100) {
      put(0xc4, static_cast<std::uint8_t>(n));
    } else if (n < 0x10000) {
      put(0xc5, static_cast<std::uint16_t>(n));
    } else {
      put(0xc6, n);
    }
  }
  void pack_bin_body(const char* data, std::uint32_t n) { append(data, n); }

 private:
  BytePacker& pack_unsigned(std::uint64_t v) {
    if (v < 0x80) {
      byte(static_cast<unsigned>(v));
    } else if (v < 0x100) {
      put(0xcc, static_cast<std::uint8_t>(v));
    } else if (v < 0x10000) {
      put(0xcd, static_cast<std::uint16_t>(v));
    } else if (v < 0x100000000) {
      put(0xce, static_cast<std::uint32_t>(v));
    } else {
      put(0xcf, v);
    }
    return *this;
  }
  BytePacker& pack_negative(std::int64_t v) {
    if (v >= -32) {
      byte(static_cast<unsigned>(v) & 0xff);  // negative fixint
    } else if (v >= INT8_MIN) {
      put(0xd0, static_cast<std::uint8_t>(v));
    } else if (v >= INT16_MIN) {
      put(0xd1, static_cast<std::uint16_t>(v));
    } else if (v >= INT32_MIN) {
      put(0xd2, static_cast<std::uint32_t>(v));
    } else {
      put(0xd3, static_cast<std::uint64_t>(v));
    }
    return *this;
  }
  // A format byte and a big-endian value of U's width, in one append.
  template <class U>
  BytePacker& put(unsigned format, U v) {
    char b[1 + sizeof(U)];
    b[0] = static_cast<char>(format);
    if constexpr (std::endian::native == std::endian::little) {
      if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
      if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
      if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
    }
    std::memcpy(b + 1, &v, sizeof(U));
    append(b, sizeof b);
    return *this;
  }
  char* room(std::size_t k) {
    if (static_cast<std::size_t>(end_ - at_) < k) [[unlikely]]
      grow(k);
    char* p = at_;
    at_ += k;
    return p;
  }
  [[gnu::noinline]] void grow(std::size_t k) {
    const auto used = static_cast<std::size_t>(at_ - buf_.data());
    buf_.resize(std::max(2 * buf_.size(), used + k + 256));
    at_ = buf_.data() + used;
    end_ = buf_.data() + buf_.size();
  }
  void byte(unsigned b) { *room(1) = static_cast<char>(b); }
  void append(const char* data, std::size_t k) {
    if (k > 0) std::memcpy(room(k), data, k);
  }

  std::vector<char>& buf_;
  char* at_;   // next byte to write
  char* end_;  // end of buf_
};

}  // namespace tp::proto
