#include "dll_gateway/broker_plugin.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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
    if (!version) fail("missing symbol tp_broker_abi_version");
    const auto revision = version();
    if (revision < TP_BROKER_ABI_OLDEST_VERSION || revision > TP_BROKER_ABI_VERSION)
      fail("ABI version " + std::to_string(revision) + ", this dll_gateway takes " +
           std::to_string(TP_BROKER_ABI_OLDEST_VERSION) + " to " + std::to_string(TP_BROKER_ABI_VERSION));
    abi_version_ = static_cast<int>(revision);
    if (abi_version_ >= 3) {
      cancel_ = symbol<tp_broker_cancel_fn>(handle_, "tp_broker_cancel");
      poll_reports_ = symbol<tp_broker_poll_reports_fn>(handle_, "tp_broker_poll_reports");
      open_orders_ = symbol<tp_broker_open_orders_fn>(handle_, "tp_broker_open_orders");
      on_tick_ = symbol<tp_broker_on_tick_fn>(handle_, "tp_broker_on_tick");  // optional
    }
    for (auto [name, fn] : {std::pair{"tp_broker_create", create != nullptr},
                            {"tp_broker_submit", submit_ != nullptr},
                            {"tp_broker_query", query_ != nullptr},
                            {"tp_broker_position", position_ != nullptr},
                            {"tp_broker_destroy", destroy_ != nullptr}}) {
      if (!fn) fail(std::string("missing symbol ") + name);
    }
    if (abi_version_ >= 3) {
      for (auto [name, fn] : {std::pair{"tp_broker_cancel", cancel_ != nullptr},
                              {"tp_broker_poll_reports", poll_reports_ != nullptr},
                              {"tp_broker_open_orders", open_orders_ != nullptr}}) {
        if (!fn)
          fail(std::string("missing symbol ") + name + " (required by ABI revision 3, which it declares)");
      }
    }

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
  const int last_status = abi_version_ >= 3 ? TP_BROKER_STATUS_EXPIRED : TP_BROKER_STATUS_UNKNOWN;
  if (r.status < TP_BROKER_STATUS_NEW || r.status > last_status) {
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
  if (abi_version_ < 3 && a.reply.status == proto::OrderStatus::partially_filled) {
    // Before revision 3 nothing rested: a partial fill was an IOC order's,
    // the rest already canceled.
    a.reply.status = proto::OrderStatus::canceled;
    if (a.reply.reason.empty()) a.reply.reason = "immediate-or-cancel: remainder canceled";
  }
  return a;
}

bool BrokerPlugin::to_report(const tp_broker_report& r, BrokerReport& out) const {
  if (r.status < TP_BROKER_STATUS_NEW || r.status > TP_BROKER_STATUS_EXPIRED ||
      r.status == TP_BROKER_STATUS_UNKNOWN)
    return false;
  for (double v : {r.last_quantity, r.last_price, r.filled_quantity, r.avg_price})
    if (!finite_non_negative(v)) return false;
  out = BrokerReport{};
  out.client_order_id = from_array(r.client_order_id);
  out.order_id = from_array(r.order_id);
  out.status = static_cast<proto::OrderStatus>(r.status);
  out.last_quantity = r.last_quantity;
  out.last_price = r.last_price;
  out.filled_quantity = r.filled_quantity;
  out.avg_price = r.avg_price;
  out.reason = from_array(r.reason);
  out.broker_ts_ns = r.broker_ts_ns;
  out.quote_seq = r.quote_seq;
  out.quote_ts_ns = r.quote_ts_ns;
  return !out.client_order_id.empty();
}

BrokerAnswer BrokerPlugin::submit(const proto::OrderRequest& order) {
  if (abi_version_ < 3 && order.terms() != proto::OrderTerms{})
    return rejected(order.client_order_id, "the broker plugin (ABI revision " + std::to_string(abi_version_) +
                                               ") takes market IOC orders only");
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
  if (abi_version_ >= 3) {                // an older plugin's struct ends before the terms
    o.order_type = static_cast<std::int32_t>(order.order_type);
    o.limit_price = order.limit_price;
    o.time_in_force = static_cast<std::int32_t>(order.time_in_force);
    o.good_till_ns = order.good_till_ns;
  }
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

BrokerAnswer BrokerPlugin::cancel(const std::string& client_order_id) {
  if (abi_version_ < 3) return Broker::cancel(client_order_id);
  if (client_order_id.size() >= TP_BROKER_ID_SIZE) return query(client_order_id);  // unknown, as there
  tp_broker_result r{};
  int rc = cancel_(broker_, client_order_id.c_str(), &r);
  return to_answer(rc, r, client_order_id, "cancel");
}

void BrokerPlugin::poll_reports(std::vector<BrokerReport>& out, std::size_t max) {
  if (abi_version_ < 3) return;
  // In batches: a report is ~0.6 KB in the C layout, and `max` may be large.
  std::array<tp_broker_report, 64> batch{};
  while (max > 0) {
    const std::size_t ask = std::min(max, batch.size());
    const std::size_t n = std::min(poll_reports_(broker_, batch.data(), ask), ask);
    for (std::size_t i = 0; i < n; ++i) {
      BrokerReport r;
      if (to_report(batch[i], r))
        out.push_back(std::move(r));
      else
        ++invalid_reports_;
    }
    max -= n;
    if (n < ask) return;
  }
}

std::optional<std::vector<BrokerReport>> BrokerPlugin::open_orders() {
  if (abi_version_ < 3) return Broker::open_orders();
  std::vector<tp_broker_report> all(64);
  std::size_t count = 0;
  // The number may grow between two calls (a plugin with threads of its
  // own): ask again with room for what it said, a few times at most.
  for (int attempt = 0; attempt < 4; ++attempt) {
    count = 0;
    if (open_orders_(broker_, all.data(), all.size(), &count) != TP_BROKER_OK) return std::nullopt;
    if (count <= all.size()) break;
    all.resize(count);
  }
  if (count > all.size()) return std::nullopt;
  std::vector<BrokerReport> open;
  open.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    BrokerReport r;
    if (to_report(all[i], r))
      open.push_back(std::move(r));
    else
      ++invalid_reports_;
  }
  return open;
}

void BrokerPlugin::on_tick(const proto::TickEvent& tick) {
  if (on_tick_) {
    tp_broker_quote q{};
    if (!to_array(q.instrument, tick.instrument)) return;  // no instrument of the ABI's is that long
    q.bid = tick.bid;
    q.ask = tick.ask;
    q.bid_volume = tick.bid_volume;
    q.ask_volume = tick.ask_volume;
    q.ts_ns = tick.gateway_ts_ns;
    q.seq = tick.seq;
    on_tick_(broker_, &q);
  } else if (on_quote_) {
    on_quote_(broker_, tick.instrument.c_str(), tick.bid, tick.ask, tick.gateway_ts_ns);
  }
}

void BrokerPlugin::on_quote(const std::string& instrument, double bid, double ask, std::int64_t ts_ns) {
  proto::TickEvent tick;
  tick.instrument = instrument;
  tick.bid = bid;
  tick.ask = ask;
  tick.gateway_ts_ns = ts_ns;
  on_tick(tick);
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
