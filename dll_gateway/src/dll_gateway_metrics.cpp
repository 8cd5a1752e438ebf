#include "dll_gateway/dll_gateway_metrics.hpp"

namespace tp::dll_gateway {

void add_dll_gateway_metrics(metrics::MetricsText& out, const DllGatewayFigures& f) {
  const auto& d = f.desk;
  const auto& n = f.node;
  out.counter("tp_dll_gateway_orders_received_total", "Order requests read from the order socket.",
              d.orders_received)
      .counter("tp_dll_gateway_duplicates_total",
               "Order requests answered from the store without a new submit (an id seen before).",
               d.duplicates)
      .counter("tp_dll_gateway_orders_submitted_total", "Orders that went to the broker (submit calls).",
               d.submitted)
      .counter("tp_dll_gateway_queries_total", "Order queries answered.", d.queries)
      .counter("tp_dll_gateway_fills_total", "Answers and reports that added filled quantity.", d.fills)
      .counter("tp_dll_gateway_partial_fills_total", "Answers and reports with part of an order filled.",
               d.partial_fills)
      .counter("tp_dll_gateway_rejects_total", "REJECTED answers to an order request (broker, deadline).",
               d.rejects)
      .counters("tp_dll_gateway_rejects_by_reason_total",
                "REJECTED answers by reason (its words before ':').",
                std::map<std::string, std::uint64_t>(d.rejects_by_reason.begin(), d.rejects_by_reason.end()),
                "reason")
      .counter("tp_dll_gateway_expired_total", "Orders refused unsent: their deadline had passed.", d.expired)
      .counter("tp_dll_gateway_broker_errors_total", "Broker calls that failed (outcome unknown).",
               d.broker_errors)
      .counter("tp_dll_gateway_store_errors_total", "Failed reads and writes of the order store.",
               d.store_errors)
      .counter("tp_dll_gateway_store_unknown_total",
               "Orders answered UNKNOWN unsent: the store could not record them.", d.store_unknown)
      .counter("tp_dll_gateway_refused_orders_total",
               "Orders refused before the broker: unknown instrument or beyond risk limits.",
               n.refused_orders)
      .counter("tp_dll_gateway_unsupported_orders_total", "Orders whose terms the plugin's ABI cannot take.",
               n.unsupported_orders)
      .counter("tp_dll_gateway_bad_requests_total", "Unreadable requests (answered REJECTED, dead-lettered).",
               n.bad_requests)
      .counter("tp_dll_gateway_request_groups_total", "Groups of requests read and committed together.",
               n.request_groups)
      .counter("tp_dll_gateway_replies_sent_total", "Answers sent to the executor's order clients.",
               n.replies.sent)
      .counter("tp_dll_gateway_replies_dropped_total", "Answers not sent: their requester was gone.",
               n.replies.dropped)
      .counter("tp_dll_gateway_position_queries_total", "Position queries answered.", n.position_queries)
      .counter("tp_dll_gateway_cancels_received_total", "Cancel requests read.", d.cancels_received)
      .counter("tp_dll_gateway_cancels_sent_total", "Cancel calls that went to the broker.", d.cancels_sent)
      .counter("tp_dll_gateway_cancel_duplicates_total", "Cancels answered from the stored answer.",
               d.cancel_duplicates)
      .counter("tp_dll_gateway_cancels_too_late_total", "Cancels of an order already final (no broker call).",
               d.cancels_too_late)
      .counter("tp_dll_gateway_reports_stored_total", "Execution reports stored.", d.reports)
      .counter("tp_dll_gateway_reports_published_total", "Execution reports published on the reports socket.",
               n.reports.sent)
      .counter("tp_dll_gateway_reports_dropped_total",
               "Execution reports the reports socket refused (a slow subscriber fetches the gap).",
               n.reports.dropped)
      .counter("tp_dll_gateway_broker_reports_total", "Reports the broker plugin's poll gave.",
               d.broker_reports)
      .counter("tp_dll_gateway_reports_stale_total", "Updates that said nothing new (dropped).",
               d.reports_stale)
      .counter("tp_dll_gateway_invalid_transitions_total",
               "Updates the order state machine refused (logged).", d.invalid_transitions)
      .counter("tp_dll_gateway_reports_unknown_order_total",
               "Broker reports for an id the store does not hold.", d.reports_unknown_order)
      .gauge("tp_dll_gateway_unknown_open_orders",
             "Orders open at the broker that the store does not know (at start).", d.unknown_open_orders)
      .counter("tp_dll_gateway_report_queries_total", "Report fetches (ReportQuery) answered.",
               d.report_queries)
      .counter("tp_dll_gateway_open_orders_queries_total", "Open-orders queries answered.",
               d.open_orders_queries)
      .gauge("tp_dll_gateway_report_seq", "The seq of the last execution report stored.", f.report_seq)
      .counter("tp_dll_gateway_store_checkpoints_total",
               "Checkpoints of the store's write-ahead log made while no request waited.",
               f.store_checkpoints)
      .counter("tp_dll_gateway_ticks_received_total", "Ticks passed to the broker plugin.", n.ticks_received)
      .counter("tp_dll_gateway_bad_ticks_total", "Ticks refused (dead-lettered).", n.bad_ticks)
      .counter("tp_dead_letters_sent_total", "Dead letters this program handed to the dead-letter sink.",
               f.dead_letters_sent)
      .counter("tp_dead_letters_dropped_total",
               "Dead letters this program dropped unsent (the sink away and its queue full).",
               f.dead_letters_dropped)
      .counters("tp_dll_gateway_dead_letters_total", "Dead letters by reason (sent or dropped).",
                f.dead_letters_by_reason, "reason");
}

void add_broker_call_metrics(metrics::MetricsText& out, const OrderDesk& desk) {
  for (const auto call : {BrokerCall::submit, BrokerCall::query, BrokerCall::cancel})
    out.histogram("tp_dll_gateway_broker_call_seconds", "Latency of a call into the broker plugin, by call.",
                  desk.broker_latency(call).sample(), {{"call", std::string(to_string(call))}});
}

}  // namespace tp::dll_gateway
