// The seam between dll_gateway's order handling and whatever executes the
// orders: BrokerPlugin (a dlopen'ed broker_abi.h library) in production, a
// counting fake in tests. Answers are values; a failed call is not an
// exception. Implementations are used from one thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.hpp"

namespace tp::dll_gateway {

// The broker's answer, or the reason there is none.
struct BrokerAnswer {
  // False when the call itself failed and the outcome is unknown (the order
  // may or may not be at the broker); `reply.reason` then says why.
  bool ok = false;
  // The answer (the order's state after the call, quantities cumulative),
  // with client_order_id set to the one asked about and duplicate = false.
  proto::OrderReply reply;
};

// A change the broker made to a resting order on its own (a fill on a later
// quote, an expiry), or an open order's state. Only these fields of the
// report are set: client_order_id, order_id, status, last_quantity,
// last_price, filled_quantity, avg_price, reason, broker_ts_ns, quote_seq,
// quote_ts_ns. dll_gateway adds the rest from its own row for the order.
using BrokerReport = proto::ExecutionReport;

class Broker {
 public:
  virtual ~Broker() = default;
  // Places an order; see tp_broker_submit in broker_abi.h.
  virtual BrokerAnswer submit(const proto::OrderRequest& order) = 0;
  // What the broker knows about an id; status unknown when it never saw it.
  virtual BrokerAnswer query(const std::string& client_order_id) = 0;

  // The calls of orders with a life (broker_abi.h revision 3). A broker that
  // takes market IOC orders only keeps these defaults: no order ever rests,
  // so a cancel can only report the final status, nothing changes later and
  // nothing is open.
  virtual bool supports_resting_orders() const { return false; }
  // Cancels a resting order; the answer is its state after the attempt.
  virtual BrokerAnswer cancel(const std::string& client_order_id) {
    BrokerAnswer a = query(client_order_id);
    if (a.ok && proto::is_final(a.reply.status))
      a.reply.reason = "cannot cancel: the order is " + std::string(proto::to_string(a.reply.status));
    return a;
  }
  // Appends the changes since the last poll, oldest first, at most `max`.
  virtual void poll_reports(std::vector<BrokerReport>& /*out*/, std::size_t /*max*/) {}
  // Every open order's state; nothing when the broker cannot tell.
  virtual std::optional<std::vector<BrokerReport>> open_orders() { return std::vector<BrokerReport>{}; }
};

}  // namespace tp::dll_gateway
