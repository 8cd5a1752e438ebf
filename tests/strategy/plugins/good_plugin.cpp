// A well-formed strategy plugin for the loader's tests: emits a BUY every
// `every`-th tick once its SMA is ready, and exports how many of its objects
// are alive so that a test can see the plugin's destroy run. With
// `sleep_us`, each tick takes that long: a strategy behind its feed (the
// memory test in tests/python_strategy/test_pipeline_py.py).
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "tp/indicators.hpp"
#include "tp/strategy.hpp"

namespace {

int live_objects = 0;

class EveryNth final : public tp::Strategy {
 public:
  EveryNth() { ++live_objects; }
  ~EveryNth() override { --live_objects; }
  EveryNth(const EveryNth&) = delete;
  EveryNth& operator=(const EveryNth&) = delete;

  void on_start() override {
    every_ = ctx().params().integer("every", 2);
    ctx().params().require(every_ >= 1, "every", "at least 1");
    sleep_us_ = ctx().params().integer("sleep_us", 0);
  }
  void on_tick(const tp::Tick& tick) override {
    if (sleep_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    sma_.update(tick.mid());
    if (!sma_.ready() || ++ticks_ % every_ != 0) return;
    ctx().emit({.instrument = tick.instrument, .side = tp::Side::buy, .trigger_price = sma_.value()});
  }

 private:
  tp::Sma sma_{2};
  std::int64_t every_ = 2;
  std::int64_t ticks_ = 0;
  std::int64_t sleep_us_ = 0;
};

}  // namespace

TP_STRATEGY_PLUGIN(EveryNth, "test_every_nth")

extern "C" __attribute__((visibility("default"))) int test_plugin_live_objects() { return live_objects; }
