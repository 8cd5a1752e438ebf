#include "executor/decision.hpp"

#include <fmt/format.h>

#include "executor/risk.hpp"

namespace tp::executor {

std::string client_order_id(std::string_view signal_id) {
  std::string id = "C-";
  id += signal_id;
  return id;
}

std::int64_t expiry_margin_ns(const Config& config) {
  return config.hosts.size() > 1 ? std::int64_t{config.executor.max_clock_skew_ms} * ns_per_ms : 0;
}

Decision decide(const proto::TradingSignal& signal, const Config& config, Exposure exposure,
                const Clock& clock) {
  if (config.find_instrument(signal.instrument) == nullptr) {
    return {Verdict::reject, "unknown_instrument",
            fmt::format("instrument '{}' is not configured", signal.instrument)};
  }
  const auto now = clock.now_ns();
  const std::int64_t skew = std::int64_t{config.executor.max_clock_skew_ms} * ns_per_ms;
  if (signal.created_ts_ns > now && signal.created_ts_ns - now > skew) {
    return {Verdict::reject, "future_timestamp",
            fmt::format("created_ts_ns {} is {} ms ahead (max_clock_skew_ms {})", signal.created_ts_ns,
                        (signal.created_ts_ns - now) / ns_per_ms, config.executor.max_clock_skew_ms)};
  }
  if (const auto deadline = signal.expires_ts_ns - expiry_margin_ns(config); now >= deadline) {
    if (deadline == signal.expires_ts_ns) {
      return {Verdict::reject, "expired",
              fmt::format("now {} >= expires_ts_ns {} ({} ms late)", now, signal.expires_ts_ns,
                          (now - signal.expires_ts_ns) / ns_per_ms)};
    }
    return {
        Verdict::reject, "expired",
        fmt::format("now {} >= expires_ts_ns {} - the clocks' margin {} ms ({} ms late)", now,
                    signal.expires_ts_ns, config.executor.max_clock_skew_ms, (now - deadline) / ns_per_ms)};
  }
  // The prefix must still fit the wire's id limit, or dll_gateway would refuse it.
  if (signal.signal_id.size() + 2 > proto::max_id_length) {
    return {Verdict::reject, "out_of_range",
            fmt::format("signal_id of {} bytes leaves no room for the client order id prefix",
                        signal.signal_id.size())};
  }
  if (auto refusal = check_risk(signal, exposure.instrument, config.risk)) {
    return {Verdict::reject, "risk_rejected", std::move(*refusal)};
  }
  if (const auto* group = config.strategy.find_group(signal.strategy)) {
    if (auto refusal = check_group_position(signal, exposure.group, group->max_position)) {
      return {Verdict::reject, "group_position_limit", std::move(*refusal)};
    }
  }
  return {Verdict::accept, {}, {}};
}

OrderRecord intent_for(const proto::TradingSignal& signal, std::int64_t now_ns, std::int64_t margin_ns) {
  OrderRecord order;
  order.client_order_id = client_order_id(signal.signal_id);
  order.signal_id = signal.signal_id;
  order.strategy = signal.strategy;
  order.instrument = signal.instrument;
  order.side = signal.action;
  order.quantity = signal.quantity;
  order.price_hint = signal.trigger_price;
  order.state = OrderState::intent;
  order.status = proto::OrderStatus::new_order;
  order.filled_quantity = 0;
  order.fill_price = 0;
  order.causation_ts_ns = signal.causation_ts_ns;
  order.created_ns = now_ns;
  order.updated_ns = now_ns;
  order.expires_ns = signal.expires_ts_ns - margin_ns;
  order.terms = signal.terms();
  return order;
}

proto::OrderRequest request_of(const OrderRecord& order, std::int64_t now_ns) {
  proto::OrderRequest req;
  req.client_order_id = order.client_order_id;
  req.signal_id = order.signal_id;
  req.instrument = order.instrument;
  req.side = order.side;
  req.quantity = order.quantity;
  req.price_hint = order.price_hint;
  req.sent_ts_ns = now_ns;
  req.expires_ts_ns = order.expires_ns;  // dll_gateway makes the last check
  req.set_terms(order.terms);
  return req;
}

}  // namespace tp::executor
