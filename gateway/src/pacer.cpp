#include "gateway/pacer.hpp"

#include <cmath>
#include <limits>

namespace tp::gateway {

std::uint64_t Pacer::due_count(std::int64_t now_ns) {
  if (flat_out()) return std::numeric_limits<std::uint32_t>::max();
  if (!started_) {
    started_ = true;
    anchor_ns_ = now_ns;
    anchor_sent_ = sent_;
  }
  if (auto next = next_due_ns(); next && now_ns - *next > max_lag_ns) {
    anchor_ns_ = now_ns;
    anchor_sent_ = sent_;
  }
  // Tick k (0-based from the origin) is due at origin + k / rate. The small
  // epsilon makes "now == next_due_ns()" count the tick despite rounding, so
  // that sleeping until next_due_ns() always finds work.
  double elapsed_s = static_cast<double>(now_ns - anchor_ns_) / 1e9;
  if (elapsed_s < 0) return 0;
  auto scheduled = static_cast<std::uint64_t>(std::floor(elapsed_s * factor_ + 1e-6)) + 1;
  std::uint64_t done = sent_ - anchor_sent_;
  return scheduled > done ? scheduled - done : 0;
}

std::int64_t Pacer::due_at(std::int64_t source_ts_ns, std::int64_t now_ns) {
  if (flat_out()) return now_ns;
  if (!started_ || source_ts_ns < last_ts_) {
    anchor_ns_ = started_ ? last_due_ : now_ns;
    anchor_ts_ = source_ts_ns;
    started_ = true;
  }
  last_ts_ = source_ts_ns;
  last_due_ =
      anchor_ns_ + static_cast<std::int64_t>(static_cast<double>(source_ts_ns - anchor_ts_) / factor_);
  return last_due_;
}

std::optional<std::int64_t> Pacer::next_due_ns() const {
  if (flat_out() || !started_) return std::nullopt;
  if (mode_ == Mode::replay) return last_due_;
  double k = static_cast<double>(sent_ - anchor_sent_);
  return anchor_ns_ + static_cast<std::int64_t>(std::ceil(k * 1e9 / factor_));
}

}  // namespace tp::gateway
