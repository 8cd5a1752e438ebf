// Which strategy instance trades which instrument: instance k of n takes the
// instruments whose stable hash is k modulo n. FNV-1a is fixed here (not
// std::hash) so that every build, and the Python tools, agree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tp {

constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

constexpr std::uint32_t shard_of(std::string_view instrument, std::uint32_t shards) noexcept {
  return shards == 0 ? 0 : static_cast<std::uint32_t>(fnv1a64(instrument) % shards);
}

// The symbols of `all` that shard k of n trades, in their configured order.
std::vector<std::string> instruments_for_shard(const std::vector<std::string>& all, std::uint32_t shard,
                                               std::uint32_t shards);

}  // namespace tp
