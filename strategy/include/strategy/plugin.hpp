// C++ strategy plugins: a shared library built against the installed SDK
// (tp/strategy.hpp) exporting tp_strategy_plugin(). Loading checks the
// plugin's ABI version before anything else of it is trusted.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "tp/strategy.hpp"

namespace tp::strategy {

// A strategy object and how to delete it: through the plugin's own destroy
// for a plugin (which also keeps its library loaded while the object lives),
// plain delete for a built-in.
using StrategyPtr = std::unique_ptr<tp::Strategy, std::function<void(tp::Strategy*)>>;

// A plugin that cannot be used: not found, not a strategy plugin, or built
// against another ABI version. The message names the file and what to do.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads the plugin at `path` (dlopen RTLD_NOW | RTLD_LOCAL) and creates one
// strategy from it. The plugin's ABI version is checked before anything else
// of it is read or called. Throws PluginError, one line starting
// "strategy plugin <path>: ", when the file is missing or not a path (a bare
// name would be searched on the library path), cannot be loaded, lacks
// tp_strategy_plugin, was built against another ABI version, or its create
// fails (the exception's text is kept).
//
// Each strategy holds a share of its library; the library is closed once
// the last strategy from it has been destroyed. Anything else the plugin's
// code made (a std::function it passed to Context::every or at, an
// exception object) must therefore be gone before its last strategy is:
// a runtime drops a strategy's timers first, then the strategy.
StrategyPtr create_plugin_strategy(const std::string& path);

}  // namespace tp::strategy
