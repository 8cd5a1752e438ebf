// BrokerLink: the executor's way to dll_gateway. Lazy Pirate requests
// behind a circuit breaker (circuit_breaker.hpp), the liveness probe, and
// what is known of dll_gateway (alive, when it was last asked). Orders go
// out on an OrderPipeline (one DEALER, up to executor.orders_in_flight at
// dll_gateway at once, each under its own Lazy Pirate); queries, cancels and
// report fetches take an OrderClient (REQ) of their own, so that they never
// wait behind the orders. Every call returns what happened
// (an answer or nothing) and records the outcome with the breaker, with one
// log line per breaker state change; it never calls back into order
// handling. Owns its sockets; one thread.
//
// While an exchange waits, OrderClient and OrderPipeline call `while_waiting` (the node's
// heartbeat: stats file and disk watch) so that a wait on a frozen
// dll_gateway does not look like a hung executor. That callback only writes
// stats; it touches no order, so no answer can be applied in the middle of
// another exchange.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/security.hpp"
#include "executor/circuit_breaker.hpp"
#include "executor/order_client.hpp"
#include "executor/order_pipeline.hpp"
#include "executor/order_record.hpp"
#include "proto/messages.hpp"

namespace tp::executor {

struct LinkCounters {
  std::uint64_t orders_sent = 0;
  std::uint64_t order_timeouts = 0;   // orders that got no answer through all attempts
  std::uint64_t liveness_probes = 0;  // OrderQuery for a dummy id when nothing else was asked
  std::uint64_t cancels_sent = 0;
  std::uint64_t report_queries = 0;
};

struct BrokerLinkOptions {
  const Security* security = nullptr;
  std::function<bool()> stopping;       // see OrderClientOptions
  std::function<void()> while_waiting;  // see OrderClientOptions and above
  // For the log line when the breaker closes ("N held order(s) to send").
  std::function<std::uint64_t()> held_count;
  // The order clients' hold_retries (see OrderClientOptions); queries and
  // cancels are always retried.
  std::function<bool()> hold_order_retries;
};

class BrokerLink {
 public:
  // dll_gateway's liveness: when nothing has been asked of it for this long,
  // or as the half-open breaker's probe, one ReportQuery for the reports
  // from the next expected seq (one attempt, no retries) tells whether it
  // answers, and brings any report the socket dropped.
  static constexpr std::int64_t liveness_idle_ns = 5'000'000'000;

  // Takes executor.order_timeout_ms, order_retries, breaker_failures and
  // breaker_cooling_ms from `config`; the clock's monotonic time drives the
  // breaker and the idle probe.
  BrokerLink(zmq::context_t& ctx, const Config& config, const Clock& clock, BrokerLinkOptions options);

  // The breaker's gate (an OPEN one past its cooling period turns HALF_OPEN
  // and lets this caller's request through as the probe).
  bool allows();
  bool closed() const noexcept { return breaker_.state() == BreakerState::closed; }

  // Orders in flight: start_order() sends one on a free slot (there must be
  // one: order_slot_free()) and returns the slot; wait_orders() waits until
  // at least one order in flight is settled and appends each settled one's
  // slot and answer (nothing when none came through all attempts). What the
  // caller does in between overlaps dll_gateway's work on them.
  using SettledOrder = OrderPipeline::Settled;
  std::size_t order_slots() const noexcept { return orders_.slots(); }
  bool order_slot_free() const noexcept { return orders_.slot_free(); }
  std::size_t orders_in_flight() const noexcept { return orders_.in_flight(); }
  std::size_t start_order(const OrderRecord& order);
  // With `also`: returns as well once `also` is readable (OrderPipeline::wait).
  void wait_orders(std::vector<SettledOrder>& settled, zmq::socket_t* also = nullptr);

  std::optional<proto::OrderReply> query(std::string_view client_order_id);
  std::optional<proto::PositionReply> position(std::string_view instrument);
  std::optional<proto::OrderReply> cancel(const OrderRecord& order);
  std::optional<proto::ReportBatch> reports(std::uint64_t from_seq, std::uint32_t max_count);
  std::optional<proto::ReportBatch> open_orders(std::uint32_t offset);

  // Whether a liveness probe is due when nothing is open: the breaker is
  // half-open, or nothing was asked for liveness_idle_ns and `none_held`.
  bool probe_due(bool none_held) const;
  // The probe (one attempt); dll_gateway's answer, or nothing.
  std::optional<proto::ReportBatch> probe(std::uint64_t from_seq);

  BreakerState breaker_state() const noexcept { return breaker_.state(); }
  std::uint64_t breaker_opens() const noexcept { return breaker_.opens(); }
  bool alive() const noexcept { return alive_; }
  const LinkCounters& counters() const noexcept { return counters_; }
  // Over every client.
  std::uint64_t retries() const noexcept;
  std::uint64_t socket_failures() const noexcept;

 private:
  void answered(bool yes);
  void log_breaker(BreakerState before);

  const Config& config_;
  const Clock& clock_;
  BrokerLinkOptions options_;
  OrderClient client_;  // every request but orders
  CircuitBreaker breaker_;
  bool alive_ = false;                 // the last request was answered
  std::int64_t last_exchange_ns_ = 0;  // monotonic; the last request (either outcome)
  LinkCounters counters_;
  OrderPipeline orders_;
};

}  // namespace tp::executor
