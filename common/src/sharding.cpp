#include "common/sharding.hpp"

namespace tp {

std::vector<std::string> instruments_for_shard(const std::vector<std::string>& all, std::uint32_t shard,
                                               std::uint32_t shards) {
  std::vector<std::string> mine;
  for (const auto& s : all)
    if (shard_of(s, shards) == shard) mine.push_back(s);
  return mine;
}

}  // namespace tp
