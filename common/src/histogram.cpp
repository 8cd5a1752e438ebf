#include "common/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace tp {

int LatencyHistogram::index_of(std::uint64_t v) noexcept {
  if (v < sub_buckets) return static_cast<int>(v);
  int magnitude = std::bit_width(v) - sub_bits;  // >= 1
  if (magnitude >= magnitudes) return bucket_count - 1;
  // v >> magnitude keeps the top sub_bits bits: 32..63, the upper half.
  return magnitude * sub_buckets + static_cast<int>(v >> magnitude);
}

std::int64_t LatencyHistogram::upper_edge(int index) noexcept {
  if (index < sub_buckets) return index;
  int magnitude = index / sub_buckets;
  int sub = index % sub_buckets;  // 32..63
  return (static_cast<std::int64_t>(sub + 1) << magnitude) - 1;
}

void LatencyHistogram::record(std::int64_t ns) noexcept {
  auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
  ++buckets_[static_cast<std::size_t>(index_of(v))];
  ++count_;
  max_ = std::max(max_, static_cast<std::int64_t>(v));
}

std::int64_t LatencyHistogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (int i = 0; i < bucket_count; ++i) {
    seen += buckets_[static_cast<std::size_t>(i)];
    if (seen >= rank) return std::min(upper_edge(i), max_);
  }
  return max_;
}

}  // namespace tp
