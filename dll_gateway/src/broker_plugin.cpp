#include "dll_gateway/broker_plugin.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace tp::dll_gateway {

namespace {

// Reads a fixed-size array that a plugin should have terminated, without
// trusting that it did.
template <std::size_t N>
std::string from_array(const char (&a)[N]) {
  return std::string(a, strnlen(a, N));
}

// Copies `s` into a fixed-size array; false when it does not fit.
template <std::size_t N>
bool to_array(char (&a)[N], const std::string& s) {
  if (s.size() >= N) return false;
  std::memcpy(a, s.data(), s.size());
  a[s.size()] = '\0';
  return true;
}

template <class Fn>
Fn symbol(void* handle, const char* name) {
  // POSIX guarantees that a dlsym result converts to a function pointer.
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

bool finite_non_negative(double v) { return std::isfinite(v) && v >= 0; }

BrokerAnswer rejected(const std::string& client_order_id, std::string reason) {
  BrokerAnswer a;
  a.ok = true;
  a.reply.client_order_id = client_order_id;
  a.reply.status = proto::OrderStatus::rejected;
  a.reply.reason = std::move(reason);
  return a;
}

}  // namespace

BrokerPlugin::BrokerPlugin(const std::string& path, const std::map<std::string, std::string>& settings)
    : path_(path) {
  auto fail = [&](const std::string& problem) {
    throw std::runtime_error("broker plugin " + path_ + ": " + problem);
  };
  handle_ = dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* err = dlerror();
    // dlerror usually starts with the path again; say it only once.
    std::string why = err ? err : "unknown error";
    if (why.rfind(path_ + ": ", 0) == 0) why = why.substr(path_.size() + 2);
    fail("cannot load: " + why);
  }
  // From here on a failure must close the library again.
  try {
    auto version = symbol<tp_broker_abi_version_fn>(handle_, "tp_broker_abi_version");
    auto create = symbol<tp_broker_create_fn>(handle_, "tp_broker_create");
    submit_ = symbol<tp_broker_submit_fn>(handle_, "tp_broker_submit");
    query_ = symbol<tp_broker_query_fn>(handle_, "tp_broker_query");
    position_ = symbol<tp_broker_position_fn>(handle_, "tp_broker_position");
    destroy_ = symbol<tp_broker_destroy_fn>(handle_, "tp_broker_destroy");
    on_quote_ = symbol<tp_broker_on_quote_fn>(handle_, "tp_broker_on_quote");  // optional
    for (auto [name, fn] : {std::pair{"tp_broker_abi_version", version != nullptr},
                            {"tp_broker_create", create != nullptr},
                            {"tp_broker_submit", submit_ != nullptr},
                            {"tp_broker_query", query_ != nullptr},
                            {"tp_broker_position", position_ != nullptr},
                            {"tp_broker_destroy", destroy_ != nullptr}}) {
      if (!fn) fail(std::string("missing symbol ") + name);
    }
    if (auto v = version(); v < TP_BROKER_ABI_OLDEST_VERSION || v > TP_BROKER_ABI_VERSION)
      fail("ABI version " + std::to_string(v) + ", this dll_gateway takes " +
           std::to_string(TP_BROKER_ABI_OLDEST_VERSION) + " to " + std::to_string(TP_BROKER_ABI_VERSION));

    std::vector<const char*> keys, values;
    for (const auto& [k, v] : settings) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    char error[512] = {};
    broker_ = create(keys.data(), values.data(), keys.size(), error, sizeof error);
    if (!broker_) {
      std::string why = from_array(error);
      fail("create failed: " + (why.empty() ? std::string("no reason given") : why));
    }
  } catch (...) {
    dlclose(handle_);
    throw;
  }
}

BrokerPlugin::~BrokerPlugin() {
  destroy_(broker_);
  dlclose(handle_);
}

BrokerAnswer BrokerPlugin::to_answer(int rc, const tp_broker_result& r, const std::string& client_order_id,
                                     const char* call) const {
  BrokerAnswer a;
  a.reply.client_order_id = client_order_id;
  a.reply.reason = from_array(r.reason);
  if (rc != TP_BROKER_OK) {
    a.reply.reason = std::string("broker ") + call + " failed (code " + std::to_string(rc) + ")" +
                     (a.reply.reason.empty() ? "" : ": " + a.reply.reason);
    return a;
  }
  if (r.status < TP_BROKER_STATUS_NEW || r.status > TP_BROKER_STATUS_UNKNOWN) {
    a.reply.reason = std::string("broker ") + call + " returned invalid status " + std::to_string(r.status);
    return a;
  }
  if (!finite_non_negative(r.filled_quantity) || !finite_non_negative(r.fill_price)) {
    a.reply.reason = std::string("broker ") + call + " returned a negative or non-finite fill";
    return a;
  }
  a.ok = true;
  a.reply.order_id = from_array(r.order_id);
  a.reply.status = static_cast<proto::OrderStatus>(r.status);
  a.reply.filled_quantity = r.filled_quantity;
  a.reply.fill_price = r.fill_price;
  a.reply.broker_ts_ns = r.broker_ts_ns;
  return a;
}

BrokerAnswer BrokerPlugin::submit(const proto::OrderRequest& order) {
  tp_broker_order o{};
  if (!to_array(o.client_order_id, order.client_order_id))
    return rejected(order.client_order_id, "client_order_id too long for the broker ABI");
  if (!to_array(o.instrument, order.instrument))
    return rejected(order.client_order_id, "instrument too long for the broker ABI");
  o.side = static_cast<std::int32_t>(order.side);
  o.quantity = order.quantity;
  o.price_hint = order.price_hint;
  o.sent_ts_ns = order.sent_ts_ns;
  o.expires_ts_ns = order.expires_ts_ns;  // a revision-1 plugin never reads it
  tp_broker_result r{};
  int rc = submit_(broker_, &o, &r);
  return to_answer(rc, r, order.client_order_id, "submit");
}

BrokerAnswer BrokerPlugin::query(const std::string& client_order_id) {
  tp_broker_result r{};
  if (client_order_id.size() >= TP_BROKER_ID_SIZE) {
    BrokerAnswer a;
    a.ok = true;  // the broker cannot know an id the ABI cannot carry
    a.reply.client_order_id = client_order_id;
    a.reply.status = proto::OrderStatus::unknown;
    return a;
  }
  int rc = query_(broker_, client_order_id.c_str(), &r);
  return to_answer(rc, r, client_order_id, "query");
}

std::optional<double> BrokerPlugin::position(const std::string& instrument) {
  double q = 0;
  if (position_(broker_, instrument.c_str(), &q) != TP_BROKER_OK || !std::isfinite(q)) return std::nullopt;
  return q;
}

void BrokerPlugin::on_quote(const std::string& instrument, double bid, double ask, std::int64_t ts_ns) {
  if (on_quote_) on_quote_(broker_, instrument.c_str(), bid, ask, ts_ns);
}

std::string default_plugin_path() {
  std::vector<char> buf(4096);
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return "libsim_broker.so";
  std::string exe(buf.data(), static_cast<std::size_t>(n));
  auto slash = exe.rfind('/');
  return (slash == std::string::npos ? std::string(".") : exe.substr(0, slash)) + "/libsim_broker.so";
}

std::map<std::string, std::string> expand_settings(std::map<std::string, std::string> settings,
                                                   const std::string& run_dir) {
  static constexpr std::string_view token = "${run.dir}";
  for (auto& [key, value] : settings) {
    for (auto at = value.find(token); at != std::string::npos; at = value.find(token, at + run_dir.size()))
      value.replace(at, token.size(), run_dir);
  }
  return settings;
}

}  // namespace tp::dll_gateway
