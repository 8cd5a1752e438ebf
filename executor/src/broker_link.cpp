#include "executor/broker_link.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

#include "executor/decision.hpp"

namespace tp::executor {

namespace {

OrderClientOptions client_options(const Config& config, const BrokerLinkOptions& options, bool for_orders) {
  return OrderClientOptions{.timeout_ms = std::max(1, config.executor.order_timeout_ms),
                            .retries = std::max(0, config.executor.order_retries),
                            .security = options.security,
                            .stopping = options.stopping,
                            .hold_retries = for_orders ? options.hold_order_retries : nullptr,
                            .while_waiting = options.while_waiting};
}

}  // namespace

BrokerLink::BrokerLink(zmq::context_t& ctx, const Config& config, const Clock& clock,
                       BrokerLinkOptions options)
    : config_(config),
      clock_(clock),
      options_(std::move(options)),
      client_(ctx, config.endpoints.orders, client_options(config, options_, false)),
      breaker_(BreakerOptions{.failure_threshold = config.executor.breaker_failures,
                              .cooling_ns = std::int64_t{config.executor.breaker_cooling_ms} * ns_per_ms},
               clock),
      // The first idle probe comes liveness_idle_ns after start.
      last_exchange_ns_(clock.monotonic_ns()),
      orders_(ctx, config.endpoints.orders, client_options(config, options_, true),
              static_cast<std::size_t>(std::max(1, config.executor.orders_in_flight))) {}

bool BrokerLink::allows() {
  const auto before = breaker_.state();
  const bool allowed = breaker_.allow();
  log_breaker(before);
  return allowed;
}

std::size_t BrokerLink::start_order(const OrderRecord& order) {
  ++counters_.orders_sent;
  return orders_.start(request_of(order, clock_.now_ns()));
}

void BrokerLink::wait_orders(std::vector<SettledOrder>& settled, zmq::socket_t* also) {
  const auto before = settled.size();
  orders_.wait(settled, also);
  for (auto i = before; i < settled.size(); ++i) {
    answered(settled[i].reply.has_value());
    if (!settled[i].reply) ++counters_.order_timeouts;
  }
}

std::optional<proto::OrderReply> BrokerLink::query(std::string_view client_order_id) {
  auto reply = client_.query(proto::OrderQuery{std::string(client_order_id), clock_.now_ns()});
  answered(reply.has_value());
  return reply;
}

std::optional<proto::PositionReply> BrokerLink::position(std::string_view instrument) {
  auto reply = client_.position(proto::PositionQuery{std::string(instrument), clock_.now_ns()});
  answered(reply.has_value());
  return reply;
}

std::optional<proto::OrderReply> BrokerLink::cancel(const OrderRecord& order) {
  ++counters_.cancels_sent;
  auto reply =
      client_.cancel(proto::OrderCancel{order.client_order_id, order.cancel_reason, clock_.now_ns()});
  answered(reply.has_value());
  return reply;
}

std::optional<proto::ReportBatch> BrokerLink::reports(std::uint64_t from_seq, std::uint32_t max_count) {
  ++counters_.report_queries;
  auto reply = client_.reports(proto::ReportQuery{from_seq, max_count, clock_.now_ns()});
  answered(reply.has_value());
  return reply;
}

std::optional<proto::ReportBatch> BrokerLink::open_orders(std::uint32_t offset) {
  auto reply = client_.open_orders(proto::OpenOrdersQuery{offset, clock_.now_ns()});
  answered(reply.has_value());
  return reply;
}

std::uint64_t BrokerLink::retries() const noexcept { return client_.retries() + orders_.retries(); }

std::uint64_t BrokerLink::socket_failures() const noexcept {
  return client_.socket_failures() + orders_.socket_failures();
}

bool BrokerLink::probe_due(bool none_held) const {
  const bool probing = breaker_.state() == BreakerState::half_open;
  const bool idle = none_held && clock_.monotonic_ns() - last_exchange_ns_ >= liveness_idle_ns;
  return probing || idle;
}

std::optional<proto::ReportBatch> BrokerLink::probe(std::uint64_t from_seq) {
  ++counters_.liveness_probes;
  auto reply = client_.reports(proto::ReportQuery{from_seq, 500, clock_.now_ns()}, 0);
  answered(reply.has_value());
  return reply;
}

void BrokerLink::answered(bool yes) {
  const auto before = breaker_.state();
  if (yes)
    breaker_.on_success();
  else
    breaker_.on_failure();
  alive_ = yes;
  last_exchange_ns_ = clock_.monotonic_ns();
  log_breaker(before);
}

void BrokerLink::log_breaker(BreakerState before) {
  const auto now = breaker_.state();
  if (now == before) return;
  switch (now) {
    case BreakerState::open:
      spdlog::warn(
          "circuit breaker {} -> open (opened {} times): dll_gateway did not answer; new orders are held, "
          "next probe in {} ms",
          to_string(before), breaker_.opens(), config_.executor.breaker_cooling_ms);
      break;
    case BreakerState::half_open:
      spdlog::info("circuit breaker open -> half_open: probing dll_gateway");
      break;
    case BreakerState::closed:
      spdlog::info("circuit breaker {} -> closed: dll_gateway answers; {} held order(s) to send",
                   to_string(before), options_.held_count ? options_.held_count() : 0);
      break;
  }
}

}  // namespace tp::executor
