// A fixed-size latency histogram (log-linear buckets, ~1.6% resolution, 1 ns
// to ~70 s): O(1) record, no allocation after construction. For percentiles
// in stats files and benchmarks.
#pragma once

#include <array>
#include <cstdint>

namespace tp {

class LatencyHistogram {
 public:
  void record(std::int64_t ns) noexcept;
  // Value at quantile q in [0, 1] (upper edge of its bucket); 0 when empty.
  std::int64_t percentile(double q) const noexcept;
  std::uint64_t count() const noexcept { return count_; }
  std::int64_t max() const noexcept { return max_; }
  void reset() noexcept { *this = LatencyHistogram{}; }

 private:
  static constexpr int sub_bits = 6;  // 64 linear steps per power of two
  static constexpr int sub_buckets = 1 << sub_bits;
  static constexpr int magnitudes = 37 - sub_bits + 1;
  static constexpr int bucket_count = magnitudes * sub_buckets;
  static int index_of(std::uint64_t v) noexcept;
  static std::int64_t upper_edge(int index) noexcept;

  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  std::int64_t max_ = 0;
};

}  // namespace tp
