#include "executor/circuit_breaker.hpp"

#include <algorithm>

namespace tp::executor {

std::string_view to_string(BreakerState s) noexcept {
  switch (s) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(BreakerOptions options, const Clock& clock)
    : options_(options), clock_(clock) {
  options_.failure_threshold = std::max(1, options_.failure_threshold);
  options_.cooling_ns = std::max<std::int64_t>(0, options_.cooling_ns);
}

bool CircuitBreaker::allow() {
  switch (state_) {
    case BreakerState::closed:
      return true;
    case BreakerState::open:
      if (clock_.monotonic_ns() < open_until_ns_) return false;
      state_ = BreakerState::half_open;
      probe_out_ = true;
      return true;
    case BreakerState::half_open:
      if (probe_out_) return false;
      probe_out_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::on_success() {
  failures_ = 0;
  probe_out_ = false;
  state_ = BreakerState::closed;
}

void CircuitBreaker::on_failure() {
  probe_out_ = false;
  if (state_ == BreakerState::half_open) {
    open();  // the probe failed: another cooling period
    return;
  }
  ++failures_;
  if (state_ == BreakerState::closed && failures_ >= options_.failure_threshold) open();
}

void CircuitBreaker::open() {
  state_ = BreakerState::open;
  // Monotonic: a step of the wall clock must not shorten or stretch it.
  open_until_ns_ = clock_.monotonic_ns() + options_.cooling_ns;
  ++opens_;
}

}  // namespace tp::executor
