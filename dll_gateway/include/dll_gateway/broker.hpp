// The seam between dll_gateway's order handling and whatever executes the
// orders: BrokerPlugin (a dlopen'ed broker_abi.h library) in production, a
// counting fake in tests. Answers are values; a failed call is not an
// exception. Implementations are used from one thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proto/messages.hpp"

namespace tp::dll_gateway {

// The broker's answer, or the reason there is none.
struct BrokerAnswer {
  // False when the call itself failed and the outcome is unknown (the order
  // may or may not be at the broker); `reply.reason` then says why.
  bool ok = false;
  // The answer, with client_order_id set to the one asked about and
  // duplicate = false.
  proto::OrderReply reply;
};

class Broker {
 public:
  virtual ~Broker() = default;
  // Places a market order; see tp_broker_submit in broker_abi.h.
  virtual BrokerAnswer submit(const proto::OrderRequest& order) = 0;
  // What the broker knows about an id; status unknown when it never saw it.
  virtual BrokerAnswer query(const std::string& client_order_id) = 0;
};

}  // namespace tp::dll_gateway
