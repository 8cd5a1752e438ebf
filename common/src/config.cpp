#include "common/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/endpoints.hpp"

namespace tp {
namespace {

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// Reads one table's keys into typed fields and refuses keys it was not asked
// for, so that a typo in the file is an error instead of a silent default.
class Section {
 public:
  Section(const toml::table* table, std::string path, std::string origin)
      : table_(table), path_(std::move(path)), origin_(std::move(origin)) {}

  void get(const char* key, std::string& out) {
    if (auto* n = find(key)) {
      if (!n->is_string()) wrong(key, "a string");
      out = **n->as_string();
    }
  }
  void get(const char* key, double& out) {
    if (auto* n = find(key)) {
      if (n->is_integer())
        out = static_cast<double>(**n->as_integer());
      else if (n->is_floating_point())
        out = **n->as_floating_point();
      else
        wrong(key, "a number");
      if (!std::isfinite(out)) wrong(key, "a finite number");
    }
  }
  void get(const char* key, int& out) {
    std::int64_t v = out;
    get_int(key, v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
    out = static_cast<int>(v);
  }
  void get(const char* key, bool& out) {
    if (auto* n = find(key)) {
      if (!n->is_boolean()) wrong(key, "true or false");
      out = **n->as_boolean();
    }
  }
  void get(const char* key, std::uint64_t& out) {
    std::int64_t v = static_cast<std::int64_t>(out);
    get_int(key, v, 0, std::numeric_limits<std::int64_t>::max());
    out = static_cast<std::uint64_t>(v);
  }
  // A table of scalars, kept as strings (plugin settings).
  void get(const char* key, std::map<std::string, std::string>& out) {
    auto* n = find(key);
    if (!n) return;
    if (!n->is_table()) wrong(key, "a table");
    for (auto&& [k, v] : *n->as_table()) {
      std::string name(k.str());
      if (v.is_string())
        out[name] = **v.as_string();
      else if (v.is_integer())
        out[name] = std::to_string(**v.as_integer());
      else if (v.is_floating_point()) {
        std::ostringstream s;
        s << **v.as_floating_point();
        out[name] = s.str();
      } else if (v.is_boolean())
        out[name] = **v.as_boolean() ? "true" : "false";
      else
        throw ConfigError(origin_ + ": " + join(join(path_, key), name) + " must be a scalar");
    }
  }

  void get(const char* key, std::vector<std::string>& out) {
    auto* n = find(key);
    if (!n) return;
    if (!n->is_array()) wrong(key, "an array of strings");
    out.clear();
    for (auto&& v : *n->as_array()) {
      if (!v.is_string()) wrong(key, "an array of strings");
      out.push_back(**v.as_string());
    }
  }

  Section sub(const char* key) {
    auto* n = find(key);
    if (n && !n->is_table()) wrong(key, "a table");
    return Section(n ? n->as_table() : nullptr, join(path_, key), origin_);
  }

  const toml::node* find(const char* key) {
    used_.insert(key);
    return table_ ? table_->get(key) : nullptr;
  }

  // Throws on any key of this table that no get() asked for.
  void finish() const {
    if (!table_) return;
    for (auto&& [k, v] : *table_) {
      if (!used_.count(std::string(k.str())))
        throw ConfigError(origin_ + ": unknown key " + join(path_, k.str()));
    }
  }

  const std::string& origin() const { return origin_; }

  [[noreturn]] void wrong(const char* key, const char* what) const {
    throw ConfigError(origin_ + ": " + join(path_, key) + " must be " + what);
  }
  void require(bool ok, const char* key, const char* what) const {
    if (!ok) wrong(key, what);
  }

 private:
  void get_int(const char* key, std::int64_t& out, std::int64_t lo, std::int64_t hi) {
    if (auto* n = find(key)) {
      if (!n->is_integer()) wrong(key, "an integer");
      auto v = **n->as_integer();
      if (v < lo || v > hi) wrong(key, "an integer in range");
      out = v;
    }
  }

  const toml::table* table_;
  std::string path_;
  std::string origin_;
  std::set<std::string> used_;
};

bool is_loopback_host(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

bool valid_endpoint(const std::string& e) {
  return e.rfind("tcp://", 0) == 0 || e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0;
}

// Parses "a.b.c=value" and stores value (a TOML value, or a bare string) at
// that path, creating tables on the way.
void apply_override(toml::table& root, const std::string& spec) {
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("override '" + spec + "' must look like section.key=value");
  std::string path = spec.substr(0, eq);
  std::string value = spec.substr(eq + 1);

  toml::table* table = &root;
  std::string::size_type start = 0;
  for (;;) {
    auto dot = path.find('.', start);
    if (dot == std::string::npos) break;
    std::string part = path.substr(start, dot - start);
    auto* child = table->get(part);
    if (!child) {
      table->insert(part, toml::table{});
      child = table->get(part);
    }
    if (!child->is_table()) throw ConfigError("override " + path + ": " + part + " is not a table");
    table = child->as_table();
    start = dot + 1;
  }
  std::string key = path.substr(start);

  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value}};  // a bare word: take it as a string
  }
  table->insert_or_assign(key, *parsed.get("v"));
}

bool is_builtin_kind(std::string_view kind) {
  return std::find(std::begin(builtin_strategy_kinds), std::end(builtin_strategy_kinds), kind) !=
         std::end(builtin_strategy_kinds);
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// A built-in group without its own params table takes [strategy.<kind>]'s.
std::map<std::string, std::string> builtin_params(const StrategyConfig& st, std::string_view kind) {
  if (kind == "sma_crossover")
    return {{"fast", std::to_string(st.sma_crossover.fast)}, {"slow", std::to_string(st.sma_crossover.slow)}};
  if (kind == "rsi_reversion")
    return {{"period", std::to_string(st.rsi_reversion.period)},
            {"oversold", number_text(st.rsi_reversion.oversold)},
            {"overbought", number_text(st.rsi_reversion.overbought)}};
  if (kind == "breakout") return {{"window", std::to_string(st.breakout.window)}};
  if (kind == "every_nth") return {{"n", std::to_string(st.every_nth.n)}};
  return {};
}

std::vector<std::string> all_symbols(const Config& c) {
  std::vector<std::string> out;
  for (const auto& i : c.instruments) out.push_back(i.symbol);
  return out;
}

StrategyGroup shorthand_group(const Config& c) {
  StrategyGroup g;
  g.name = "strategy";
  g.kind = c.strategy.name;
  g.instances = c.strategy.instances;
  g.quantity = c.strategy.quantity;
  g.orders = c.strategy.orders;
  g.instruments = all_symbols(c);
  g.params = builtin_params(c.strategy, g.kind);
  g.hosts = strategy_hosts(c.hosts);
  return g;
}

std::vector<StrategyGroup> default_groups(const Config& c) {
  StrategyGroup trend;
  trend.name = "trend";
  trend.kind = "sma_crossover";
  trend.instances = 2;
  StrategyGroup revert;
  revert.name = "revert";
  revert.kind = "rsi_reversion";
  revert.instances = 1;
  std::vector<StrategyGroup> out{trend, revert};
  for (auto& g : out) {
    g.quantity = c.strategy.quantity;
    g.orders = c.strategy.orders;
    g.instruments = all_symbols(c);
    g.params = builtin_params(c.strategy, g.kind);
    g.hosts = strategy_hosts(c.hosts);
  }
  // revert's orders have a life, as if its entry in config/default.toml set
  // them (so they win over [strategy]'s): passive limits that rest, most
  // filled later by a report, the rest cancelled after a second. The demo
  // shows all three; scripts/tp_supervisor/settings.py says the same.
  auto& rests = out[1].orders;
  rests.order_type = "limit";
  rests.time_in_force = "gtc";
  rests.limit_offset_bps = 1;
  rests.cancel_after_ms = 1000;
  return out;
}

// The order-term keys, read over `o` (which holds the defaults) in one table:
// [strategy] for every group, then each [[strategy.groups]] entry. The
// combinations the executor would refuse (codec.hpp's check_terms) are refused
// here, before a single signal.
void read_order_settings(Section& s, OrderSettings& o) {
  s.get("order_type", o.order_type);
  s.require(o.order_type == "market" || o.order_type == "limit", "order_type", "\"market\" or \"limit\"");
  s.get("time_in_force", o.time_in_force);
  s.require(o.time_in_force == "ioc" || o.time_in_force == "gtc" || o.time_in_force == "gtd", "time_in_force",
            "\"ioc\", \"gtc\" or \"gtd\"");
  s.require(o.order_type == "limit" || o.time_in_force == "ioc", "time_in_force",
            "\"ioc\" when order_type = \"market\" (a market order never rests)");
  s.get("limit_offset_bps", o.limit_offset_bps);
  s.require(o.limit_offset_bps >= 0 && o.limit_offset_bps < 10000, "limit_offset_bps",
            "in [0, 10000) (a BUY's limit is trigger x (1 - bps/1e4))");
  s.get("good_till_ms", o.good_till_ms);
  s.require(o.good_till_ms >= 0, "good_till_ms", ">= 0 (0 = the signal's TTL)");
  s.get("cancel_after_ms", o.cancel_after_ms);
  s.require(o.cancel_after_ms >= 0, "cancel_after_ms", ">= 0 (0 = never)");
  s.require(o.cancel_after_ms == 0 || o.time_in_force != "ioc", "cancel_after_ms",
            "0 when time_in_force = \"ioc\" (an IOC order never rests)");
}

// Names that would collide with another program's files or break the
// "<name>-<k>" and "ACK.<name>.<k>" spellings.
bool valid_group_name(const std::string& name) {
  // Programs' names, and "flatten" (the kill switch's closing orders' ids begin so).
  static const std::set<std::string> taken{"gateway",     "executor",   "dll_gateway",
                                           "dead_letter", "supervisor", "flatten"};
  return !name.empty() && name.size() <= 32 && name[0] >= 'a' && name[0] <= 'z' &&
         std::all_of(
             name.begin(), name.end(),
             [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; }) &&
         !taken.count(name);
}

const Host* find_host(const std::vector<Host>& hosts, std::string_view name) {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

// A group's `hosts`: names from [[hosts]], once each; left out, the strategy
// hosts. Only with [[hosts]]: without them every shard runs beside the rest.
void read_group_hosts(Section& s, const std::string& path, const Config& c, StrategyGroup& g) {
  if (!s.find("hosts")) {
    g.hosts = strategy_hosts(c.hosts);
    return;
  }
  s.require(!c.hosts.empty(), "hosts", "left out when the file has no [[hosts]]");
  s.get("hosts", g.hosts);
  s.require(!g.hosts.empty(), "hosts", "a non-empty list (leave it out for the strategy hosts)");
  std::set<std::string> seen;
  for (const auto& h : g.hosts) {
    if (!find_host(c.hosts, h))
      throw ConfigError(s.origin() + ": " + path + ".hosts: " + h + " is not in [[hosts]]");
    s.require(seen.insert(h).second, "hosts", "without repeats");
  }
}

std::vector<StrategyGroup> read_groups(const toml::node& node, const Config& c, const std::string& origin) {
  if (!node.is_array() || node.as_array()->empty())
    throw ConfigError(origin + ": strategy.groups must be a non-empty array of tables ([[strategy.groups]])");
  std::vector<StrategyGroup> out;
  std::set<std::string> names;
  std::size_t i = 0;
  for (auto&& item : *node.as_array()) {
    const std::string path = "strategy.groups[" + std::to_string(i++) + "]";
    if (!item.is_table()) throw ConfigError(origin + ": " + path + " must be a table");
    Section s(item.as_table(), path, origin);
    StrategyGroup g;
    g.quantity = c.strategy.quantity;
    s.get("name", g.name);
    s.require(valid_group_name(g.name), "name",
              "1 to 32 of a-z, 0-9 and _, starting with a letter, not a program's name nor \"flatten\"");
    s.require(names.insert(g.name).second, "name", "unique");
    s.get("kind", g.kind);
    s.require(is_builtin_kind(g.kind) || g.kind == "plugin" || g.kind == "python", "kind",
              "sma_crossover, rsi_reversion, breakout, every_nth, plugin or python");
    s.get("plugin", g.plugin);
    s.require((g.kind == "plugin") == !g.plugin.empty(), "plugin",
              "set (the strategy's .so) exactly when kind = \"plugin\"");
    s.get("entry", g.entry);
    const auto colon = g.entry.find(':');
    s.require((g.kind == "python") == !g.entry.empty(), "entry",
              "set (\"module:Class\") exactly when kind = \"python\"");
    s.require(g.entry.empty() || (colon != std::string::npos && colon > 0 && colon + 1 < g.entry.size()),
              "entry", "\"module:Class\"");
    s.get("python_path", g.python_path);
    s.require(g.python_path.empty() || g.kind == "python", "python_path", "set only when kind = \"python\"");
    s.get("instances", g.instances);
    s.require(g.instances >= 1 && g.instances <= 256, "instances", "in 1..256");
    s.get("quantity", g.quantity);
    s.require(g.quantity > 0, "quantity", "> 0");
    if (s.find("instruments")) {
      s.get("instruments", g.instruments);
      s.require(!g.instruments.empty(), "instruments", "a non-empty list (leave it out for all)");
      std::set<std::string> seen;
      for (const auto& sym : g.instruments) {
        if (!c.find_instrument(sym))
          throw ConfigError(origin + ": " + path + ".instruments: " + sym + " is not in [[instruments]]");
        s.require(seen.insert(sym).second, "instruments", "without repeats");
      }
    } else {
      g.instruments = all_symbols(c);
    }
    s.get("max_position", g.max_position);
    s.require(g.max_position >= 0, "max_position", ">= 0 (0 = only risk.max_position)");
    s.get("max_orders_per_second", g.max_orders_per_second);
    s.require(g.max_orders_per_second >= 0, "max_orders_per_second", ">= 0 (0 = none of its own)");
    g.orders = c.strategy.orders;
    read_order_settings(s, g.orders);
    if (s.find("params"))
      s.get("params", g.params);
    else
      g.params = builtin_params(c.strategy, g.kind);
    read_group_hosts(s, path, c, g);
    s.finish();
    out.push_back(std::move(g));
  }
  return out;
}

bool valid_host_name(const std::string& name) {
  return !name.empty() && name.size() <= 32 && name[0] >= 'a' && name[0] <= 'z' &&
         std::all_of(name.begin(), name.end(), [](char ch) {
           return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
         });
}

// An address other hosts can dial: an IPv4 or IPv6 address or a host name.
// A wildcard is refused: the same endpoint string is bound by one program and
// dialled by the others, and nobody can dial 0.0.0.0.
bool valid_host_address(const std::string& address) {
  return !address.empty() && address.size() <= 253 && address != "0.0.0.0" && address != "::" &&
         std::all_of(address.begin(), address.end(), [](char ch) {
           return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '-' || ch == ':';
         });
}

bool is_placed_program(std::string_view program) {
  return std::find(std::begin(placed_programs), std::end(placed_programs), program) !=
         std::end(placed_programs);
}

std::vector<Host> read_hosts(const toml::node& node, const std::string& origin) {
  if (!node.is_array() || node.as_array()->empty())
    throw ConfigError(origin + ": hosts must be a non-empty array of tables ([[hosts]])");
  std::vector<Host> out;
  std::set<std::string> names, addresses;
  std::map<std::string, std::string> placed;  // program -> host
  std::size_t i = 0;
  for (auto&& item : *node.as_array()) {
    const std::string path = "hosts[" + std::to_string(i++) + "]";
    if (!item.is_table()) throw ConfigError(origin + ": " + path + " must be a table");
    Section s(item.as_table(), path, origin);
    Host h;
    s.get("name", h.name);
    s.require(valid_host_name(h.name), "name", "1 to 32 of a-z, 0-9, _ and -, starting with a letter");
    s.require(names.insert(h.name).second, "name", "unique");
    s.get("address", h.address);
    s.require(valid_host_address(h.address), "address",
              "the address the other hosts dial it at (an IP address or a host name, not 0.0.0.0 nor ::)");
    s.require(addresses.insert(h.address).second, "address", "unique (one address per host)");
    s.get("programs", h.programs);
    for (const auto& p : h.programs) {
      if (!is_placed_program(p))
        throw ConfigError(
            origin + ": " + path + ".programs: " + p +
            " is not one of gateway, executor, dll_gateway, dead_letter (strategy shards go where "
            "their group's hosts say)");
      if (auto [it, fresh] = placed.emplace(p, h.name); !fresh)
        throw ConfigError(origin + ": " + path + ".programs: " + p + " already runs on host " + it->second +
                          " (each program runs on one host)");
    }
    s.finish();
    out.push_back(std::move(h));
  }
  for (const char* p : placed_programs)
    if (!placed.count(p))
      throw ConfigError(origin + ": hosts: no host runs " + p +
                        " (each of gateway, executor, dll_gateway, dead_letter is in one host's programs)");
  return out;
}

// The host part of a tcp endpoint ("tcp://H:P" -> H, "tcp://[::1]:P" -> ::1);
// empty for any other transport.
std::string endpoint_host(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) != 0) return {};
  std::string rest = endpoint.substr(6);
  rest = rest.substr(0, rest.rfind(':'));
  if (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']') rest = rest.substr(1, rest.size() - 2);
  return rest;
}

// With [[hosts]], each endpoint is a tcp address of the host whose program
// binds it: the others dial that very string, so an ipc:// path, a loopback
// or another host's address would bind where nobody can reach it.
void check_endpoints_on_hosts(const Config& c, const std::string& origin) {
  if (c.hosts.empty()) return;
  const std::pair<const char*, std::pair<const std::string*, const char*>> binds[] = {
      {"ticks", {&c.endpoints.ticks, "gateway"}},
      {"signals", {&c.endpoints.signals, "executor"}},
      {"order_events", {&c.endpoints.order_events, "executor"}},
      {"orders", {&c.endpoints.orders, "dll_gateway"}},
      {"dead_letters", {&c.endpoints.dead_letters, "dead_letter"}},
      {"reports", {&c.endpoints.reports, "dll_gateway"}},
      {"control", {&c.endpoints.control, "executor"}},
  };
  for (const auto& [key, bind] : binds) {
    const auto& [endpoint, program] = bind;
    const Host* host = c.host_of(program);
    if (endpoint_host(*endpoint) == host->address) continue;
    const bool v6 = host->address.find(':') != std::string::npos;
    throw ConfigError(origin + ": endpoints." + key + " must be tcp://" + (v6 ? "[" : "") + host->address +
                      (v6 ? "]" : "") + ":PORT (" + program + " binds it on host " + host->name + ")");
  }
}

Config from_table(const toml::table& root, const std::string& origin) {
  Config c;
  Section top(&root, "", origin);

  auto run = top.sub("run");
  run.get("dir", c.run.dir);
  run.get("log_level", c.run.log_level);
  run.get("stats_interval_ms", c.run.stats_interval_ms);
  run.require(c.run.stats_interval_ms > 0, "stats_interval_ms", "> 0");
  run.get("min_free_bytes", c.run.min_free_bytes);
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  run.require(levels.count(c.run.log_level) > 0, "log_level",
              "one of trace, debug, info, warn, error, critical, off");
  run.finish();

  auto ep = top.sub("endpoints");
  for (auto [key, field] : {std::pair{"ticks", &c.endpoints.ticks},
                            {"signals", &c.endpoints.signals},
                            {"order_events", &c.endpoints.order_events},
                            {"orders", &c.endpoints.orders},
                            {"dead_letters", &c.endpoints.dead_letters}}) {
    ep.get(key, *field);
    ep.require(valid_endpoint(*field), key, "a tcp://, ipc:// or inproc:// endpoint");
  }
  c.endpoints.reports.clear();
  ep.get("reports", c.endpoints.reports);
  if (c.endpoints.reports.empty()) {
    try {
      c.endpoints.reports = derived_reports_endpoint(c.endpoints.orders);
    } catch (const std::runtime_error& e) {
      throw ConfigError(origin + ": " + e.what());
    }
  }
  ep.require(valid_endpoint(c.endpoints.reports), "reports", "a tcp://, ipc:// or inproc:// endpoint");
  c.endpoints.control.clear();
  ep.get("control", c.endpoints.control);
  if (c.endpoints.control.empty()) {
    try {
      c.endpoints.control = derived_control_endpoint(c.endpoints.orders);
    } catch (const std::runtime_error& e) {
      throw ConfigError(origin + ": " + e.what());
    }
  }
  ep.require(valid_endpoint(c.endpoints.control), "control", "a tcp://, ipc:// or inproc:// endpoint");
  ep.finish();

  if (auto* n = top.find("instruments")) {
    if (!n->is_array()) top.wrong("instruments", "an array of tables ([[instruments]])");
    c.instruments.clear();
    std::set<std::string> seen;
    std::size_t i = 0;
    for (auto&& item : *n->as_array()) {
      std::string path = "instruments[" + std::to_string(i++) + "]";
      if (!item.is_table()) throw ConfigError(origin + ": " + path + " must be a table");
      Section s(item.as_table(), path, origin);
      Instrument inst;
      s.get("symbol", inst.symbol);
      s.get("price", inst.price);
      s.get("spread", inst.spread);
      s.get("volatility", inst.volatility);
      s.require(!inst.symbol.empty() && inst.symbol.size() <= 32 &&
                    std::all_of(inst.symbol.begin(), inst.symbol.end(),
                                [](char ch) { return ch > ' ' && ch <= '~' && ch != '.'; }),
                "symbol", "1 to 32 printable characters without '.' or spaces");
      s.require(seen.insert(inst.symbol).second, "symbol", "unique");
      s.require(inst.price > 0, "price", "> 0");
      s.require(inst.spread >= 0, "spread", ">= 0");
      s.require(inst.volatility >= 0, "volatility", ">= 0");
      s.get("base_currency", inst.base_currency);
      s.get("quote_currency", inst.quote_currency);
      s.require(inst.base_currency.empty() || is_currency(inst.base_currency), "base_currency",
                "3 upper-case letters (ISO 4217), or unset");
      s.require(inst.quote_currency.empty() || is_currency(inst.quote_currency), "quote_currency",
                "3 upper-case letters (ISO 4217), or unset");
      s.finish();
      c.instruments.push_back(inst);
    }
    if (c.instruments.empty()) top.wrong("instruments", "non-empty");
  }

  auto net = top.sub("network");
  auto& link = c.network;
  net.get("heartbeat_ms", link.heartbeat_ms);
  net.require(link.heartbeat_ms == 0 || (link.heartbeat_ms >= 100 && link.heartbeat_ms <= 60000),
              "heartbeat_ms", "0 (off) or in 100..60000");
  net.get("heartbeat_timeout_ms", link.heartbeat_timeout_ms);
  net.require(
      link.heartbeat_timeout_ms >= std::max(link.heartbeat_ms, 100) && link.heartbeat_timeout_ms <= 600000,
      "heartbeat_timeout_ms", ">= heartbeat_ms, >= 100 and <= 600000");
  net.get("reconnect_ms", link.reconnect_ms);
  net.require(link.reconnect_ms >= 10 && link.reconnect_ms <= 60000, "reconnect_ms", "in 10..60000");
  net.get("reconnect_max_ms", link.reconnect_max_ms);
  net.require(link.reconnect_max_ms >= link.reconnect_ms && link.reconnect_max_ms <= 600000,
              "reconnect_max_ms", ">= reconnect_ms and <= 600000");
  net.get("connect_timeout_ms", link.connect_timeout_ms);
  net.require(
      link.connect_timeout_ms == 0 || (link.connect_timeout_ms >= 100 && link.connect_timeout_ms <= 600000),
      "connect_timeout_ms", "0 (the kernel's, minutes) or in 100..600000");
  net.get("tcp_keepalive", link.tcp_keepalive);
  net.get("tcp_keepalive_idle_s", link.tcp_keepalive_idle_s);
  net.require(link.tcp_keepalive_idle_s >= 1 && link.tcp_keepalive_idle_s <= 7200, "tcp_keepalive_idle_s",
              "in 1..7200");
  net.get("tcp_keepalive_interval_s", link.tcp_keepalive_interval_s);
  net.require(link.tcp_keepalive_interval_s >= 1 && link.tcp_keepalive_interval_s <= 600,
              "tcp_keepalive_interval_s", "in 1..600");
  net.get("tcp_keepalive_count", link.tcp_keepalive_count);
  net.require(link.tcp_keepalive_count >= 1 && link.tcp_keepalive_count <= 100, "tcp_keepalive_count",
              "in 1..100");
  net.finish();

  auto gw = top.sub("gateway");
  gw.get("source", c.gateway.source);
  gw.require(c.gateway.source == "synthetic" || c.gateway.source == "csv", "source",
             "\"synthetic\" or \"csv\"");
  gw.get("rate", c.gateway.rate);
  gw.require(c.gateway.rate >= 0, "rate", ">= 0 (0 = as fast as possible)");
  gw.get("seed", c.gateway.seed);
  gw.get("csv_path", c.gateway.csv_path);
  gw.get("csv_instrument", c.gateway.csv_instrument);
  gw.require(c.gateway.source != "csv" || !c.gateway.csv_path.empty(), "csv_path",
             "set when source = \"csv\"");
  gw.get("speed", c.gateway.speed);
  gw.require(c.gateway.speed >= 0, "speed", ">= 0 (0 = as fast as possible)");
  gw.get("max_ticks", c.gateway.max_ticks);
  gw.get("heartbeat_ms", c.gateway.heartbeat_ms);
  gw.require(c.gateway.heartbeat_ms > 0, "heartbeat_ms", "> 0");
  gw.get("sndhwm", c.gateway.sndhwm);
  gw.require(c.gateway.sndhwm >= 0, "sndhwm", ">= 0");
  gw.finish();

  // Before the strategy groups, which name hosts.
  if (auto* n = top.find("hosts")) c.hosts = read_hosts(*n, origin);

  auto st = top.sub("strategy");
  const bool shorthand = st.find("name") || st.find("instances");
  st.get("name", c.strategy.name);
  st.require(c.strategy.name == "sma_crossover" || c.strategy.name == "rsi_reversion" ||
                 c.strategy.name == "breakout" || c.strategy.name == "every_nth",
             "name", "one of sma_crossover, rsi_reversion, breakout, every_nth");
  st.get("instances", c.strategy.instances);
  st.require(c.strategy.instances >= 1 && c.strategy.instances <= 256, "instances", "in 1..256");
  st.get("quantity", c.strategy.quantity);
  st.require(c.strategy.quantity > 0, "quantity", "> 0");
  read_order_settings(st, c.strategy.orders);
  st.get("signal_ttl_ms", c.strategy.signal_ttl_ms);
  st.require(c.strategy.signal_ttl_ms > 0, "signal_ttl_ms", "> 0");
  st.get("resend_ms", c.strategy.resend_ms);
  st.require(c.strategy.resend_ms > 0, "resend_ms", "> 0");
  st.get("feed_timeout_ms", c.strategy.feed_timeout_ms);
  st.require(c.strategy.feed_timeout_ms > 0, "feed_timeout_ms", "> 0");
  st.get("max_tick_age_ms", c.strategy.max_tick_age_ms);
  st.require(c.strategy.max_tick_age_ms > 0, "max_tick_age_ms", "> 0");
  st.get("max_signal_tick_age_ms", c.strategy.max_signal_tick_age_ms);
  st.require(c.strategy.max_signal_tick_age_ms > 0, "max_signal_tick_age_ms", "> 0");
  st.get("max_clock_skew_ms", c.strategy.max_clock_skew_ms);
  st.require(c.strategy.max_clock_skew_ms >= 0, "max_clock_skew_ms", ">= 0");
  st.get("give_up_after_ms", c.strategy.give_up_after_ms);
  st.require(c.strategy.give_up_after_ms >= 0, "give_up_after_ms", ">= 0");
  {
    auto s = st.sub("sma_crossover");
    s.get("fast", c.strategy.sma_crossover.fast);
    s.get("slow", c.strategy.sma_crossover.slow);
    s.require(c.strategy.sma_crossover.fast >= 1, "fast", ">= 1");
    s.require(c.strategy.sma_crossover.slow > c.strategy.sma_crossover.fast, "slow", "> fast");
    s.finish();
  }
  {
    auto s = st.sub("rsi_reversion");
    s.get("period", c.strategy.rsi_reversion.period);
    s.get("oversold", c.strategy.rsi_reversion.oversold);
    s.get("overbought", c.strategy.rsi_reversion.overbought);
    s.require(c.strategy.rsi_reversion.period >= 2, "period", ">= 2");
    s.require(c.strategy.rsi_reversion.oversold > 0 &&
                  c.strategy.rsi_reversion.oversold < c.strategy.rsi_reversion.overbought &&
                  c.strategy.rsi_reversion.overbought < 100,
              "oversold", "0 < oversold < overbought < 100");
    s.finish();
  }
  {
    auto s = st.sub("breakout");
    s.get("window", c.strategy.breakout.window);
    s.require(c.strategy.breakout.window >= 2, "window", ">= 2");
    s.finish();
  }
  {
    auto s = st.sub("every_nth");
    s.get("n", c.strategy.every_nth.n);
    s.require(c.strategy.every_nth.n >= 1, "n", ">= 1");
    s.finish();
  }
  if (auto* n = st.find("groups"))
    c.strategy.groups = read_groups(*n, c, origin);
  else if (shorthand)
    c.strategy.groups = {shorthand_group(c)};
  else
    c.strategy.groups = default_groups(c);
  st.finish();

  auto risk = top.sub("risk");
  risk.get("max_order_quantity", c.risk.max_order_quantity);
  risk.require(c.risk.max_order_quantity > 0, "max_order_quantity", "> 0");
  risk.get("max_position", c.risk.max_position);
  risk.require(c.risk.max_position > 0, "max_position", "> 0");
  risk.get("max_notional", c.risk.max_notional);
  risk.require(c.risk.max_notional > 0, "max_notional", "> 0");
  risk.get("max_open_orders", c.risk.max_open_orders);
  risk.require(c.risk.max_open_orders >= 1, "max_open_orders", ">= 1");
  risk.get("max_orders_per_second", c.risk.max_orders_per_second);
  risk.require(c.risk.max_orders_per_second >= 0, "max_orders_per_second", ">= 0 (0 = no limit)");
  risk.get("max_daily_loss", c.risk.max_daily_loss);
  risk.require(c.risk.max_daily_loss >= 0, "max_daily_loss", ">= 0 (0 = no limit)");
  risk.finish();

  auto pf = top.sub("portfolio");
  pf.get("account_currency", c.portfolio.account_currency);
  pf.require(is_currency(c.portfolio.account_currency), "account_currency",
             "3 upper-case letters (ISO 4217)");
  pf.get("capital", c.portfolio.capital);
  pf.require(c.portfolio.capital >= 0, "capital", ">= 0");
  pf.get("interval_ms", c.portfolio.interval_ms);
  pf.require(c.portfolio.interval_ms >= 10, "interval_ms", ">= 10");
  pf.finish();

  auto ex = top.sub("executor");
  ex.get("order_timeout_ms", c.executor.order_timeout_ms);
  ex.require(c.executor.order_timeout_ms > 0, "order_timeout_ms", "> 0");
  ex.get("order_retries", c.executor.order_retries);
  ex.require(c.executor.order_retries >= 0, "order_retries", ">= 0");
  ex.get("orders_in_flight", c.executor.orders_in_flight);
  ex.require(c.executor.orders_in_flight >= 1 && c.executor.orders_in_flight <= 64, "orders_in_flight",
             "between 1 and 64");
  ex.get("max_clock_skew_ms", c.executor.max_clock_skew_ms);
  ex.require(c.executor.max_clock_skew_ms >= 0, "max_clock_skew_ms", ">= 0");
  ex.get("breaker_failures", c.executor.breaker_failures);
  ex.require(c.executor.breaker_failures >= 1, "breaker_failures", ">= 1");
  ex.get("breaker_cooling_ms", c.executor.breaker_cooling_ms);
  ex.require(c.executor.breaker_cooling_ms >= 0, "breaker_cooling_ms", ">= 0");
  ex.get("adopt_broker_positions", c.executor.adopt_broker_positions);
  ex.get("cancel_on_shutdown", c.executor.cancel_on_shutdown);
  ex.get("db_path", c.executor.db_path);
  ex.finish();

  auto dg = top.sub("dll_gateway");
  dg.get("plugin", c.dll_gateway.plugin);
  dg.get("db_path", c.dll_gateway.db_path);
  dg.get("settings", c.dll_gateway.settings);
  dg.finish();

  auto dl = top.sub("dead_letter");
  dl.get("path", c.dead_letter.path);
  dl.get("max_file_bytes", c.dead_letter.max_file_bytes);
  dl.require(c.dead_letter.max_file_bytes >= (1u << 20), "max_file_bytes",
             ">= 1048576 (a line of a 128 KiB original fits)");
  dl.get("max_files", c.dead_letter.max_files);
  dl.require(c.dead_letter.max_files >= 2 && c.dead_letter.max_files <= 1000, "max_files", "in 2..1000");
  dl.get("original_bytes_per_s", c.dead_letter.original_bytes_per_s);
  dl.get("sample_one_in", c.dead_letter.sample_one_in);
  dl.require(c.dead_letter.sample_one_in >= 1, "sample_one_in", ">= 1");
  dl.finish();

  auto sv = top.sub("supervisor");
  sv.get("bin_dir", c.supervisor.bin_dir);
  sv.get("control", c.supervisor.control);
  for (auto [key, field] : {std::pair{"backoff_min_ms", &c.supervisor.backoff_min_ms},
                            {"backoff_max_ms", &c.supervisor.backoff_max_ms},
                            {"flap_window_s", &c.supervisor.flap_window_s},
                            {"flap_max_restarts", &c.supervisor.flap_max_restarts},
                            {"stop_grace_ms", &c.supervisor.stop_grace_ms},
                            {"healthy_after_ms", &c.supervisor.healthy_after_ms}}) {
    sv.get(key, *field);
    sv.require(*field > 0, key, "> 0");
  }
  sv.require(c.supervisor.backoff_max_ms >= c.supervisor.backoff_min_ms, "backoff_max_ms",
             ">= backoff_min_ms");
  sv.get("hang_timeout_ms", c.supervisor.hang_timeout_ms);
  sv.require(c.supervisor.hang_timeout_ms == 0 ||
                 std::int64_t{c.supervisor.hang_timeout_ms} >= 2 * std::int64_t{c.run.stats_interval_ms},
             "hang_timeout_ms", "0 (off) or >= 2 * run.stats_interval_ms");
  sv.get("restart_hung", c.supervisor.restart_hung);
  sv.get("control_port", c.supervisor.control_port);
  sv.require(c.supervisor.control_port >= 0 && c.supervisor.control_port <= 65535, "control_port",
             "in 0..65535 (0 = the Unix socket only)");
  sv.get("control_secret", c.supervisor.control_secret);
  sv.require(c.supervisor.control_port == 0 || !c.supervisor.control_secret.empty(), "control_secret",
             "set (a file holding the shared secret, mode 0600) when control_port is set");
  sv.finish();

  auto sec = top.sub("security");
  sec.get("curve", c.security.curve);
  sec.get("server_public_key", c.security.server_public_key);
  sec.get("server_secret_key", c.security.server_secret_key);
  sec.get("client_public_key", c.security.client_public_key);
  sec.get("client_secret_key", c.security.client_secret_key);
  sec.get("authorized_clients", c.security.authorized_clients);
  sec.get("allow_public_bind", c.security.allow_public_bind);
  sec.require(!c.security.curve || !c.security.server_public_key.empty(), "server_public_key",
              "set when curve = true");
  sec.finish();

  auto mx = top.sub("metrics");
  mx.get("host", c.metrics.host);
  mx.require(!c.metrics.host.empty(), "host", "an address of this host (127.0.0.1 by default)");
  // The endpoint has no authentication: like the ZeroMQ binds, beyond
  // loopback only when the operator says so.
  mx.require(c.security.allow_public_bind || is_loopback_host(c.metrics.host), "host",
             "a loopback address (127.x.x.x, ::1 or localhost) unless security.allow_public_bind = true");
  mx.get("port", c.metrics.port);
  mx.require(c.metrics.port >= 0 && c.metrics.port <= 65535, "port", "in 0..65535 (0 = off)");
  mx.finish();

  check_endpoints_on_hosts(c, origin);
  top.finish();
  return c;
}

}  // namespace

const StrategyGroup* StrategyConfig::find_group(std::string_view group) const {
  for (const auto& g : groups)
    if (g.name == group) return &g;
  return nullptr;
}

bool is_currency(std::string_view code) noexcept {
  return code.size() == 3 &&
         std::all_of(code.begin(), code.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
}

namespace {
// A 6-letter symbol names its two currencies: EURUSD -> EUR, USD.
bool currency_pair(std::string_view symbol) noexcept {
  return symbol.size() == 6 && is_currency(symbol.substr(0, 3)) && is_currency(symbol.substr(3));
}
}  // namespace

std::string base_currency_of(const Instrument& i) {
  if (!i.base_currency.empty()) return i.base_currency;
  return currency_pair(i.symbol) ? i.symbol.substr(0, 3) : std::string();
}

std::string quote_currency_of(const Instrument& i) {
  if (!i.quote_currency.empty()) return i.quote_currency;
  return currency_pair(i.symbol) ? i.symbol.substr(3) : std::string();
}

std::vector<std::string> strategy_hosts(const std::vector<Host>& hosts) {
  std::vector<std::string> idle, all;
  for (const auto& h : hosts) {
    all.push_back(h.name);
    if (h.programs.empty()) idle.push_back(h.name);
  }
  return idle.empty() ? all : idle;
}

const Host* Config::host_of(std::string_view program) const {
  for (const auto& h : hosts)
    if (std::find(h.programs.begin(), h.programs.end(), program) != h.programs.end()) return &h;
  return nullptr;
}

const Instrument* Config::find_instrument(std::string_view symbol) const {
  for (const auto& i : instruments)
    if (i.symbol == symbol) return &i;
  return nullptr;
}

std::string Config::run_path(const std::string& explicit_path, const std::string& name) const {
  if (!explicit_path.empty()) return explicit_path;
  return run.dir + "/" + name;
}

Config parse_config(const std::string& toml_text, const std::vector<std::string>& overrides,
                    const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << origin << ":" << e.source().begin.line << ": " << e.description();
    throw ConfigError(msg.str());
  }
  for (const auto& o : overrides) apply_override(root, o);
  return from_table(root, origin);
}

Config load_config(const std::optional<std::string>& path, const std::vector<std::string>& overrides) {
  if (!path || path->empty()) return parse_config("", overrides, "<defaults>");
  std::ifstream in(*path);
  if (!in) throw ConfigError(*path + ": cannot read the config file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), overrides, *path);
}

}  // namespace tp
