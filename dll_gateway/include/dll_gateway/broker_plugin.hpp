// BrokerPlugin: owns a broker plugin (the dlopen handle and the one broker
// instance it created) and converts between the C ABI of broker_abi.h and
// proto values at the boundary. Construction loads and checks everything, so
// a usable object is a working plugin; the destructor destroys the instance
// and then closes the library. Plugins of ABI revisions 1 to 3 are taken; an
// older one is adapted to the Broker seam (market IOC orders only, nothing
// rests). Not copyable or movable; one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dll_gateway/broker.hpp"
#include "dll_gateway/broker_abi.h"

namespace tp::dll_gateway {

class BrokerPlugin final : public Broker {
 public:
  // Loads `path` (dlopen RTLD_NOW|RTLD_LOCAL), resolves the functions, checks
  // the ABI version and creates the instance with `settings`. Throws
  // std::runtime_error with one line naming the path and the problem.
  BrokerPlugin(const std::string& path, const std::map<std::string, std::string>& settings);
  ~BrokerPlugin() override;
  BrokerPlugin(const BrokerPlugin&) = delete;
  BrokerPlugin& operator=(const BrokerPlugin&) = delete;

  // The plugin's ABI revision (tp_broker_abi_version), 1 to 3.
  int abi_version() const noexcept { return abi_version_; }

  // Revision 1 and 2 plugins are adapted (broker_abi.h, Versioning): any
  // terms but market IOC are refused here, naming the revision, and a
  // PARTIALLY_FILLED answer (final for them) becomes CANCELED with the fill.
  BrokerAnswer submit(const proto::OrderRequest& order) override;
  BrokerAnswer query(const std::string& client_order_id) override;
  // True for a revision 3 plugin.
  bool supports_resting_orders() const override { return abi_version_ >= 3; }
  // tp_broker_cancel; before revision 3 the query's final status (Broker's default).
  BrokerAnswer cancel(const std::string& client_order_id) override;
  // tp_broker_poll_reports; nothing before revision 3. A report the plugin
  // filled in wrongly (a status out of range, a negative or non-finite
  // quantity or price) is left out and counted in invalid_reports().
  void poll_reports(std::vector<BrokerReport>& out, std::size_t max) override;
  // tp_broker_open_orders (every open order, however many); nothing when the
  // plugin could not tell; an empty list before revision 3.
  std::optional<std::vector<BrokerReport>> open_orders() override;
  // The net position, or nothing when the plugin cannot tell.
  std::optional<double> position(const std::string& instrument);
  // Reports and open orders left out because the plugin filled them in wrongly.
  std::uint64_t invalid_reports() const noexcept { return invalid_reports_; }

  // True when the plugin exports tp_broker_on_tick or tp_broker_on_quote
  // (wants market data).
  bool wants_quotes() const noexcept { return on_tick_ != nullptr || on_quote_ != nullptr; }
  // Forwards a tick (gateway_ts_ns is the quote's time) to tp_broker_on_tick
  // when exported, else to tp_broker_on_quote without sizes and sequence;
  // does nothing when the plugin wants no quotes.
  void on_tick(const proto::TickEvent& tick);
  // As on_tick, for a caller that has no sizes or sequence (both 0 = not known).
  void on_quote(const std::string& instrument, double bid, double ask, std::int64_t ts_ns);

  const std::string& path() const noexcept { return path_; }

 private:
  BrokerAnswer to_answer(int rc, const tp_broker_result& r, const std::string& client_order_id,
                         const char* call) const;
  // False when the plugin filled `r` in wrongly.
  bool to_report(const tp_broker_report& r, BrokerReport& out) const;

  std::string path_;
  void* handle_ = nullptr;
  tp_broker* broker_ = nullptr;
  tp_broker_submit_fn submit_ = nullptr;
  tp_broker_query_fn query_ = nullptr;
  tp_broker_position_fn position_ = nullptr;
  tp_broker_destroy_fn destroy_ = nullptr;
  tp_broker_on_quote_fn on_quote_ = nullptr;
  // Revision 3 (cancel, poll_reports and open_orders required, on_tick optional).
  tp_broker_cancel_fn cancel_ = nullptr;
  tp_broker_poll_reports_fn poll_reports_ = nullptr;
  tp_broker_open_orders_fn open_orders_ = nullptr;
  tp_broker_on_tick_fn on_tick_ = nullptr;
  int abi_version_ = 0;
  std::uint64_t invalid_reports_ = 0;
};

// The plugin settings with every "${run.dir}" in a value replaced by
// `run_dir`, so that a deployment can keep a plugin's files (the simulated
// broker's journal) beside its other state without naming the directory twice.
std::map<std::string, std::string> expand_settings(std::map<std::string, std::string> settings,
                                                   const std::string& run_dir);

// libsim_broker.so in the directory of the running executable
// (/proc/self/exe), the default when dll_gateway.plugin is empty.
std::string default_plugin_path();

}  // namespace tp::dll_gateway
