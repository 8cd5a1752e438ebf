// The C++ strategy plugin loader: dlopen, the ABI check before anything else
// of the plugin is trusted, and strategies whose deleter keeps their library
// loaded until the plugin's destroy has run.
#include "strategy/plugin.hpp"

#include <dlfcn.h>

#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

namespace tp::strategy {

namespace {

using PluginEntry = const tp::StrategyPlugin* (*)();

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw PluginError("strategy plugin " + path + ": " + problem);
}

// dlerror's text, without the path it usually repeats (the caller names it once).
std::string dl_problem(const std::string& path) {
  const char* err = dlerror();
  std::string why = err ? err : "unknown error";
  if (why.rfind(path + ": ", 0) == 0) why = why.substr(path.size() + 2);
  return why;
}

// One dlopen of the plugin, closed when the last strategy created from it
// (and the loader itself) let go of it.
std::shared_ptr<void> open_library(const std::string& path) {
  // A name without a slash would be searched on the library path, where a
  // different file of the same name may be found; a plugin is a file.
  if (path.find('/') == std::string::npos) fail(path, "not a path (write ./" + path + " for a file here)");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "no such file");
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) fail(path, "cannot load: " + dl_problem(path));
  return {handle, [](void* h) { dlclose(h); }};
}

}  // namespace

StrategyPtr create_plugin_strategy(const std::string& path) {
  auto library = open_library(path);

  dlerror();
  void* entry_address = dlsym(library.get(), TP_STRATEGY_PLUGIN_SYMBOL);
  if (!entry_address)
    fail(path, "missing symbol " TP_STRATEGY_PLUGIN_SYMBOL
               " (not a strategy plugin: name the strategy class with TP_STRATEGY_PLUGIN)");
  // POSIX guarantees that a dlsym result converts to a function pointer.
  auto entry = reinterpret_cast<PluginEntry>(entry_address);

  const tp::StrategyPlugin* plugin = entry();
  if (!plugin) fail(path, TP_STRATEGY_PLUGIN_SYMBOL "() returned no plugin");
  // abi_version is the one field every version of the header places first:
  // nothing after it may be read until it matches.
  if (plugin->abi_version != tp::strategy_abi_version)
    fail(path, "built against strategy ABI version " + std::to_string(plugin->abi_version) +
                   ", this strategy program takes version " + std::to_string(tp::strategy_abi_version) +
                   " (rebuild the plugin against this program's SDK)");
  if (!plugin->create || !plugin->destroy) fail(path, "the plugin has no create or destroy function");

  tp::Strategy* created = nullptr;
  // The exception object may be the plugin's own type (its destructor is
  // plugin code): its text is taken while the library is still loaded.
  try {
    created = plugin->create();
  } catch (const std::exception& e) {
    fail(path, std::string("create failed: ") + e.what());
  } catch (...) {
    fail(path, "create failed: an exception that is not a std::exception");
  }
  if (!created) fail(path, "create returned no strategy");
  // The deleter owns a share of the library: destroy is code in the plugin,
  // so the library is closed only after it has run for the last strategy.
  // The share is dropped as soon as destroy has run, not when the (then
  // empty) StrategyPtr goes, which may be much later.
  return StrategyPtr(created,
                     [destroy = plugin->destroy, library = std::move(library)](tp::Strategy* s) mutable {
                       if (s) destroy(s);
                       library.reset();
                     });
}

}  // namespace tp::strategy
