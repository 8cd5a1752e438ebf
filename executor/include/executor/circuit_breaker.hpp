// The executor's circuit breaker in front of dll_gateway: pure logic (a
// Clock is passed in; no sockets), driven by the node.
//
//   CLOSED    orders go out. `failure_threshold` broker failures in a row (a
//             request that got no answer through all its Lazy Pirate
//             attempts) open the breaker.
//   OPEN      nothing is sent for `cooling_ns`. allow() answers false.
//   HALF_OPEN the cooling period is over: allow() lets exactly one request
//             through as a probe (the node uses an OrderQuery: a reconcile
//             query, or a liveness query when nothing is open). Its success
//             closes the breaker; its failure opens it again for another
//             cooling period.
//
// What happens to signals while the breaker is not closed: they are HELD.
// The executor records the signal and the order intent durably, acks
// ACCEPTED and does not send; when the breaker closes, the reconcile pass
// asks dll_gateway about every open intent and sends the ones it has never
// seen, under their one client order id. Why hold rather than dead-letter
// ("broker_unavailable"): the signal is already durably owned by the
// executor, so holding costs nothing in safety; an outage of a few seconds
// (a dll_gateway restart) then loses no trade; and a held order whose signal
// expires before the broker is back is not sent late but dead-lettered with
// reason `expired` (detail "held"), so a stale market order never goes out.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/clock.hpp"

namespace tp::executor {

enum class BreakerState { closed, open, half_open };
std::string_view to_string(BreakerState) noexcept;

// The executor fills these from [executor] breaker_failures and
// breaker_cooling_ms; the defaults here match the config's.
struct BreakerOptions {
  int failure_threshold = 3;                // consecutive failures that open it
  std::int64_t cooling_ns = 2'000'000'000;  // how long it stays open
};

class CircuitBreaker {
 public:
  CircuitBreaker(BreakerOptions options, const Clock& clock);

  // May a request go to the broker now? CLOSED: yes. OPEN: no, until the
  // cooling period is over, then the state becomes HALF_OPEN and the answer
  // is yes once (the probe). HALF_OPEN with the probe already out: no.
  bool allow();
  // The outcome of a request that allow() let through (or of any request:
  // a success always closes, a failure always counts).
  void on_success();
  void on_failure();

  BreakerState state() const noexcept { return state_; }
  std::uint64_t opens() const noexcept { return opens_; }
  int consecutive_failures() const noexcept { return failures_; }
  // When an OPEN breaker becomes eligible for its probe (the clock's
  // monotonic ns: the cooling period is a timer, not a wall time).
  std::int64_t retry_at_ns() const noexcept { return open_until_ns_; }

 private:
  void open();

  BreakerOptions options_;
  const Clock& clock_;
  BreakerState state_ = BreakerState::closed;
  int failures_ = 0;
  bool probe_out_ = false;
  std::int64_t open_until_ns_ = 0;
  std::uint64_t opens_ = 0;
};

}  // namespace tp::executor
