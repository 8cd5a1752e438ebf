// BrokerPlugin: owns a broker plugin (the dlopen handle and the one broker
// instance it created) and converts between the C ABI of broker_abi.h and
// proto values at the boundary. Construction loads and checks everything, so
// a usable object is a working plugin; the destructor destroys the instance
// and then closes the library. Not copyable or movable; one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

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

  BrokerAnswer submit(const proto::OrderRequest& order) override;
  BrokerAnswer query(const std::string& client_order_id) override;
  // The net position, or nothing when the plugin cannot tell.
  std::optional<double> position(const std::string& instrument);

  // True when the plugin exports tp_broker_on_quote (wants market data).
  bool wants_quotes() const noexcept { return on_quote_ != nullptr; }
  // Forwards a quote; does nothing when the plugin does not want quotes.
  void on_quote(const std::string& instrument, double bid, double ask, std::int64_t ts_ns);

  const std::string& path() const noexcept { return path_; }

 private:
  BrokerAnswer to_answer(int rc, const tp_broker_result& r, const std::string& client_order_id,
                         const char* call) const;

  std::string path_;
  void* handle_ = nullptr;
  tp_broker* broker_ = nullptr;
  tp_broker_submit_fn submit_ = nullptr;
  tp_broker_query_fn query_ = nullptr;
  tp_broker_position_fn position_ = nullptr;
  tp_broker_destroy_fn destroy_ = nullptr;
  tp_broker_on_quote_fn on_quote_ = nullptr;
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
