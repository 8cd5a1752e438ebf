#include "dead_letter/sampler.hpp"

namespace tp::dead_letter {

OriginalSampler::Window& OriginalSampler::window_for(std::string_view reason) {
  if (auto it = windows_.find(reason); it != windows_.end()) return it->second;
  if (windows_.size() >= max_reasons) return shared_;
  return windows_.emplace(std::string(reason), Window{}).first->second;
}

bool OriginalSampler::keep(std::string_view reason, std::uint64_t size, std::int64_t now_ns) {
  if (size == 0) return true;  // nothing to save by leaving it out
  auto& w = window_for(reason);
  if (now_ns - w.start_ns >= 1'000'000'000 || now_ns < w.start_ns) w = Window{.start_ns = now_ns};
  // The first letter of a window is always whole, even when larger than the
  // budget: a flood of 64 KiB letters still leaves an example each second.
  if (w.bytes == 0 || w.bytes + size <= opts_.bytes_per_s) {
    w.bytes += size;
    return true;
  }
  // Past the budget: the first of every keep_one_in is stored. Counting from
  // the first letter over budget makes the sample start at once.
  if (opts_.keep_one_in > 0 && w.over++ % opts_.keep_one_in == 0) return true;
  ++not_stored_;
  bytes_not_stored_ += size;
  return false;
}

}  // namespace tp::dead_letter
