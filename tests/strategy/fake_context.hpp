// A tp::Context for tests that run a strategy without the runtime: it records
// what the strategy emits and logs, holds positions the test sets, and runs
// timers only when the test says (fire_timers), so nothing depends on time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tp/strategy.hpp"

namespace tp::test {

class FakeContext final : public tp::Context {
 public:
  struct Emitted {
    std::string id;
    std::string instrument;
    tp::Side side;
    double quantity;
    double trigger_price;
  };

  FakeContext(std::vector<std::string> instruments, std::map<std::string, std::string, std::less<>> params)
      : instruments_(std::move(instruments)), params_(std::move(params), "strategy.groups.test.params") {}

  std::string_view group() const noexcept override { return "test"; }
  std::uint32_t shard() const noexcept override { return 0; }
  std::uint32_t shards() const noexcept override { return 1; }
  const std::vector<std::string>& instruments() const noexcept override { return instruments_; }
  const tp::Params& params() const noexcept override { return params_; }

  std::string emit(const tp::SignalRequest& r) override {
    if (!feed_alive_) return "";
    std::string id = "test.0.1." + std::to_string(emitted.size() + 1);
    emitted.push_back({id, std::string(r.instrument), r.side, r.quantity, r.trigger_price});
    return id;
  }

  double position(std::string_view instrument) const override {
    auto it = positions.find(instrument);
    return it == positions.end() ? 0.0 : it->second;
  }
  bool position_known(std::string_view instrument) const override {
    return positions.find(instrument) != positions.end();
  }

  TimerId every(std::int64_t period_ms, std::function<void()> fn) override {
    timers_.emplace(++last_timer_, Timer{period_ms, std::move(fn)});
    return last_timer_;
  }
  TimerId at(std::int64_t, std::function<void()> fn) override {
    timers_.emplace(++last_timer_, Timer{0, std::move(fn)});
    return last_timer_;
  }
  void cancel(TimerId id) override { timers_.erase(id); }
  // Recorded; true for an id this context handed out and not in `closed`.
  bool cancel(std::string_view signal_id, std::string_view reason) override {
    cancels.emplace_back(signal_id, reason);
    for (const auto& e : emitted)
      if (e.id == signal_id) return !closed.count(e.id);
    return false;
  }
  // Runs every timer once (one-shot timers are then gone).
  void fire_timers() {
    auto due = timers_;
    for (auto& [id, t] : due) {
      t.fn();
      if (t.period_ms == 0) timers_.erase(id);
    }
  }
  std::size_t timer_count() const { return timers_.size(); }

  std::int64_t now_ns() const noexcept override { return now; }
  bool feed_alive() const noexcept override { return feed_alive_; }
  void set_feed_alive(bool alive) { feed_alive_ = alive; }

  void log(tp::LogLevel, std::string_view message) override { logs.emplace_back(message); }

  // Drops the timers' callbacks: they may be code of a plugin about to be unloaded.
  void clear_timers() { timers_.clear(); }

  std::vector<Emitted> emitted;
  std::vector<std::string> logs;
  std::vector<std::pair<std::string, std::string>> cancels;  // (signal id, reason)
  std::set<std::string, std::less<>> closed;                 // ids cancel() treats as final
  std::map<std::string, double, std::less<>> positions;
  std::int64_t now = 1'700'000'000'000'000'000;

 private:
  struct Timer {
    std::int64_t period_ms;
    std::function<void()> fn;
  };
  std::vector<std::string> instruments_;
  tp::Params params_;
  std::map<TimerId, Timer> timers_;
  TimerId last_timer_ = 0;
  bool feed_alive_ = true;
};

}  // namespace tp::test
