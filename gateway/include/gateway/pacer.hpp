// Pacer: decides when ticks are due, so that the node can publish everything
// due in one batch and then sleep until the next one (never spin). Pure: the
// caller passes monotonic "now" in nanoseconds. Two modes:
//   rate:   a steady target of N ticks/s over all instruments;
//   replay: recorded source timestamps replayed at x `speed`.
// A speed or rate of 0 means flat out: everything is due at once.
// One instance per loop.
#pragma once

#include <cstdint>
#include <optional>

namespace tp::gateway {

class Pacer {
 public:
  // The longest the schedule may fall behind before it is restarted from
  // "now" (a stalled process skips the backlog instead of bursting it out).
  static constexpr std::int64_t max_lag_ns = 1'000'000'000;

  static Pacer rate(double ticks_per_s) { return Pacer(Mode::rate, ticks_per_s); }
  static Pacer replay(double speed) { return Pacer(Mode::replay, speed); }

  bool flat_out() const noexcept { return !(factor_ > 0); }

  // Rate mode: how many ticks are due at `now_ns` and not yet reported sent.
  // The schedule starts at the first call (the first tick is due at once).
  // Flat out: a very large number; the caller caps its batch.
  std::uint64_t due_count(std::int64_t now_ns);
  // Rate mode: `n` ticks went out.
  void sent(std::uint64_t n) noexcept { sent_ += n; }

  // Replay mode: the monotonic time at which a tick stamped `source_ts_ns` is
  // due. The first stamp is due at `now_ns`; later ones at their recorded
  // distance from it divided by the speed. A stamp earlier than the previous
  // one (out-of-order file) is due right after the previous one and restarts
  // the schedule from there. Calling again with the same stamp gives the same
  // answer.
  std::int64_t due_at(std::int64_t source_ts_ns, std::int64_t now_ns);

  // When the next tick is due (rate mode: the next of the schedule; replay:
  // the last answer of due_at), or nullopt before the schedule started or
  // when flat out.
  std::optional<std::int64_t> next_due_ns() const;

 private:
  enum class Mode { rate, replay };
  Pacer(Mode m, double factor) : mode_(m), factor_(factor) {}

  Mode mode_;
  double factor_;  // ticks/s or speed
  bool started_ = false;
  std::int64_t anchor_ns_ = 0;  // monotonic time of the schedule's origin
  // rate mode
  std::uint64_t sent_ = 0;
  std::uint64_t anchor_sent_ = 0;  // ticks sent before the origin
  // replay mode
  std::int64_t anchor_ts_ = 0;  // source stamp at the origin
  std::int64_t last_ts_ = 0;
  std::int64_t last_due_ = 0;
};

}  // namespace tp::gateway
