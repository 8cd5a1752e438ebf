// A test helper, not a program: prints how the C++ config loader
// (tp::load_config) resolves the strategy groups and hosts of a config, as one JSON
// line, so that test_config_agreement.py can hold the supervisor's Python
// reading (scripts/tp_supervisor/settings.py) to it.
//   config_groups_dump [--config FILE] [--set section.key=value]...
// prints {"groups": [...], "hosts": [...], "metrics": {"host": ..., "port": ...}} or
// {"error": "<the ConfigError's text>"}; exit 0
// either way (2 on a bad command line).
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/stats.hpp"

namespace {

std::string quoted(const std::string& s) { return "\"" + tp::json_escape(s) + "\""; }

// Exactly, so that the Python side compares the same double.
std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string strings_json(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + quoted(items[i]);
  return out + "]";
}

std::string host_json(const tp::Host& h) {
  return "{\"name\":" + quoted(h.name) + ",\"address\":" + quoted(h.address) +
         ",\"programs\":" + strings_json(h.programs) + "}";
}

std::string group_json(const tp::StrategyGroup& g) {
  std::ostringstream o;
  o << "{\"name\":" << quoted(g.name) << ",\"kind\":" << quoted(g.kind) << ",\"plugin\":" << quoted(g.plugin)
    << ",\"entry\":" << quoted(g.entry) << ",\"python_path\":" << quoted(g.python_path)
    << ",\"instances\":" << g.instances << ",\"quantity\":" << number(g.quantity)
    << ",\"max_position\":" << number(g.max_position)
    << ",\"max_orders_per_second\":" << number(g.max_orders_per_second)
    << ",\"order_type\":" << quoted(g.orders.order_type)
    << ",\"time_in_force\":" << quoted(g.orders.time_in_force)
    << ",\"limit_offset_bps\":" << number(g.orders.limit_offset_bps)
    << ",\"good_till_ms\":" << g.orders.good_till_ms << ",\"cancel_after_ms\":" << g.orders.cancel_after_ms
    << ",\"instruments\":" << strings_json(g.instruments) << ",\"hosts\":" << strings_json(g.hosts)
    << ",\"params\":{";
  bool first = true;
  for (const auto& [k, v] : g.params) {
    o << (first ? "" : ",") << quoted(k) << ":" << quoted(v);
    first = false;
  }
  o << "}}";
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> config;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "--set") && i + 1 < argc) {
      if (arg == "--config")
        config = argv[++i];
      else
        overrides.emplace_back(argv[++i]);
    } else {
      std::cerr << "usage: config_groups_dump [--config FILE] [--set section.key=value]...\n";
      return 2;
    }
  }
  try {
    const auto cfg = tp::load_config(config, overrides);
    std::cout << "{\"groups\":[";
    for (std::size_t i = 0; i < cfg.strategy.groups.size(); ++i)
      std::cout << (i ? "," : "") << group_json(cfg.strategy.groups[i]);
    std::cout << "],\"hosts\":[";
    for (std::size_t i = 0; i < cfg.hosts.size(); ++i) std::cout << (i ? "," : "") << host_json(cfg.hosts[i]);
    std::cout << "],\"metrics\":{\"host\":" << quoted(cfg.metrics.host) << ",\"port\":" << cfg.metrics.port
              << "}}\n";
  } catch (const tp::ConfigError& e) {
    std::cout << "{\"error\":" << quoted(e.what()) << "}\n";
  }
  return 0;
}
