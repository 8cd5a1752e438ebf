// dll_gateway's Prometheus metrics: its stats figures (DllGatewayFigures,
// copied by the node where it writes its stats file) rendered as
// tp_dll_gateway_* metrics, and the broker calls' latency histograms. Pure:
// no socket, no clock. One thread (the gateway's loop).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/metrics.hpp"
#include "common/zmq_util.hpp"
#include "dll_gateway/order_desk.hpp"

namespace tp::dll_gateway {

// What the node counts beside the desk.
struct NodeCounters {
  std::uint64_t bad_requests = 0;    // answered REJECTED and dead-lettered
  std::uint64_t request_groups = 0;  // groups of requests read together (two commits each at most)
  std::uint64_t ticks_received = 0;  // valid ticks passed to the plugin
  std::uint64_t bad_ticks = 0;       // dead-lettered
  std::uint64_t refused_orders = 0;  // readable, but for an unknown instrument or beyond risk limits
  std::uint64_t position_queries = 0;
  std::uint64_t unsupported_orders = 0;  // terms the plugin's ABI revision cannot take
  SendCounters replies;                  // dropped: the answer could not be sent (its requester was gone)
  SendCounters reports;                  // dropped: a slow subscriber's queue was full (it fetches the gap)
};

// Every figure of dll_gateway.stats.json that becomes a metric.
struct DllGatewayFigures {
  DeskCounters desk;
  NodeCounters node;
  std::uint64_t report_seq = 0;         // the last report stored
  std::uint64_t store_checkpoints = 0;  // the store's, made while no request waited
  std::uint64_t dead_letters_sent = 0;
  std::uint64_t dead_letters_dropped = 0;
  std::map<std::string, std::uint64_t> dead_letters_by_reason;  // sent or dropped
};

// tp_dll_gateway_* counters (orders, duplicates answered from the store,
// broker submits and errors, fills, rejects by reason, cancels, reports
// stored and published...), tp_dll_gateway_report_seq, and
// tp_dead_letters_sent_total / tp_dead_letters_dropped_total.
void add_dll_gateway_metrics(metrics::MetricsText& out, const DllGatewayFigures& f);
// tp_dll_gateway_broker_call_seconds{call="submit"|"query"|"cancel"}.
void add_broker_call_metrics(metrics::MetricsText& out, const OrderDesk& desk);

}  // namespace tp::dll_gateway
