// Broken strategy plugins for the loader's refusals, one per TP_BAD value:
//   wrong_abi     a plugin of another ABI version (whose create must never run)
//   old_abi       a plugin built against version 1 (before order terms and cancels)
//   no_symbol     a shared library that is not a strategy plugin
//   null_entry    tp_strategy_plugin() returns nothing
//   null_create   the plugin has no create function
//   create_throws its strategy's constructor throws
#include <cstdlib>
#include <stdexcept>

#include "tp/strategy.hpp"

#define TP_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

class Idle final : public tp::Strategy {
 public:
  void on_tick(const tp::Tick&) override {}
};

[[maybe_unused]] tp::Strategy* create_idle() { return new Idle(); }
[[maybe_unused]] void destroy_any(tp::Strategy* s) { delete s; }
// Reading past abi_version or calling into a mismatched plugin is the bug
// this plugin exists to catch: make it loud.
[[maybe_unused]] tp::Strategy* must_not_be_called() { std::abort(); }

}  // namespace

#if defined(TP_BAD_wrong_abi)
TP_EXPORT const tp::StrategyPlugin* tp_strategy_plugin() {
  static const tp::StrategyPlugin plugin{999, "wrong_abi", must_not_be_called, destroy_any};
  return &plugin;
}
#elif defined(TP_BAD_old_abi)
TP_EXPORT const tp::StrategyPlugin* tp_strategy_plugin() {
  static const tp::StrategyPlugin plugin{1, "old_abi", must_not_be_called, destroy_any};
  return &plugin;
}
#elif defined(TP_BAD_no_symbol)
TP_EXPORT int tp_not_a_strategy_plugin() { return 1; }
#elif defined(TP_BAD_null_entry)
TP_EXPORT const tp::StrategyPlugin* tp_strategy_plugin() { return nullptr; }
#elif defined(TP_BAD_null_create)
TP_EXPORT const tp::StrategyPlugin* tp_strategy_plugin() {
  static const tp::StrategyPlugin plugin{tp::strategy_abi_version, "null_create", nullptr, destroy_any};
  return &plugin;
}
#elif defined(TP_BAD_create_throws)
struct Refuses final : tp::Strategy {
  Refuses() { throw std::runtime_error("no licence file"); }
  void on_tick(const tp::Tick&) override {}
};
TP_STRATEGY_PLUGIN(Refuses, "create_throws")
#else
#error "define TP_BAD_<kind>"
#endif
