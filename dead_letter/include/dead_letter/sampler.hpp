// Decides, per dead letter, whether the sink stores its original bytes: each
// reason may store `bytes_per_s` of originals in full per one-second window;
// once a reason floods past that, only one letter in `keep_one_in` keeps its
// original and the rest are written without it (the line, the reason and
// original_size stay: counts are exact, only bytes are sampled). Pure logic:
// values in, a verdict out, time passed in. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace tp::dead_letter {

struct SamplerOptions {
  std::uint64_t bytes_per_s = 1 << 20;  // originals stored in full, per reason per second
  std::uint64_t keep_one_in = 100;      // then one letter in this many keeps its original
};

class OriginalSampler {
 public:
  // Reasons beyond this many share one budget, so a sender inventing reasons
  // cannot grow the table (nor get a fresh budget per invented reason).
  static constexpr std::size_t max_reasons = 256;

  explicit OriginalSampler(SamplerOptions opts) : opts_(opts) {}

  // True when the original of `size` bytes of a letter with `reason`,
  // arriving at `now_ns`, is to be stored; false counts it as not stored.
  bool keep(std::string_view reason, std::uint64_t size, std::int64_t now_ns);

  std::uint64_t originals_not_stored() const noexcept { return not_stored_; }
  std::uint64_t original_bytes_not_stored() const noexcept { return bytes_not_stored_; }

 private:
  struct Window {
    std::int64_t start_ns = 0;
    std::uint64_t bytes = 0;  // stored in full in this window
    std::uint64_t over = 0;   // letters past the budget in this window
  };
  Window& window_for(std::string_view reason);

  SamplerOptions opts_;
  std::map<std::string, Window, std::less<>> windows_;
  Window shared_;  // reasons past max_reasons
  std::uint64_t not_stored_ = 0;
  std::uint64_t bytes_not_stored_ = 0;
};

}  // namespace tp::dead_letter
