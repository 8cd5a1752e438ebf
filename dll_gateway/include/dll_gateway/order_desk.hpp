// OrderDesk: the order-handling rules of dll_gateway, without sockets. It
// answers OrderRequests and OrderQueries from the OrderStore and the Broker
// so that each client order id reaches the broker at most once:
//   DONE row      -> the stored reply, duplicate = true; the broker is not
//                    called (except a query when the stored status is not final)
//   PENDING row   -> we crashed between recording and the broker's answer: ask
//                    the broker (query); an id it knows is stored and answered
//                    (duplicate = true), an id it never saw is submitted now
//   no row        -> insert PENDING (commit), submit, answer; the DONE row
//                    is written by flush(), which the caller runs after
//                    sending the answer, and every handle() runs first
// A submit at or after the request's deadline (expires_ts_ns) is refused
// instead (REJECTED "expired: ..."), stored DONE like any answer.
// Store trouble (a full disk: SQLITE_FULL, an I/O error) never costs a signal
// and never sends an order without its PENDING row: when the id cannot be
// looked up or its PENDING row cannot be committed, nothing goes to the
// broker and the answer is UNKNOWN ("outcome unknown, retry the same client
// order id"), so the executor retries the same id later; a DONE row that
// cannot be written leaves the row PENDING, which a later request or query
// settles by asking the broker. Each store write's outcome goes to the
// StoreListener (the node logs and shows it).
// Every call returns a reply (never throws for store or broker trouble).
// Borrows the store, broker and clock; one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "dll_gateway/broker.hpp"
#include "dll_gateway/order_store.hpp"
#include "proto/messages.hpp"

namespace tp::dll_gateway {

struct DeskCounters {
  std::uint64_t orders_received = 0;
  std::uint64_t duplicates = 0;  // requests answered without a new submit
  std::uint64_t queries = 0;
  std::uint64_t submitted = 0;  // orders that went to the broker
  std::uint64_t fills = 0;      // FILLED or PARTIALLY_FILLED answers to a submit
  std::uint64_t partial_fills = 0;
  std::uint64_t rejects = 0;        // REJECTED answers to a request (broker, deadline)
  std::uint64_t expired = 0;        // refused: the request's deadline had passed (never submitted)
  std::uint64_t broker_errors = 0;  // calls that failed: outcome unknown
  std::uint64_t store_errors = 0;   // failed store reads and writes
  std::uint64_t store_unknown = 0;  // orders answered UNKNOWN, unsent: the store could not record them
};

// Called after every store write: with the error and what the desk did
// about it when the write failed, with nullptr (and "") when it succeeded.
using StoreListener = std::function<void(const StoreError* error, std::string_view consequence)>;

class OrderDesk {
 public:
  OrderDesk(OrderStore& store, Broker& broker, const Clock& clock, StoreListener listener = {})
      : store_(store), broker_(broker), clock_(clock), listener_(std::move(listener)) {}

  ~OrderDesk() { flush(); }
  OrderDesk(const OrderDesk&) = delete;
  OrderDesk& operator=(const OrderDesk&) = delete;

  proto::OrderReply handle(const proto::OrderRequest& order);
  proto::OrderReply handle(const proto::OrderQuery& query);
  // Writes the DONE row of the last answer, if not yet written. Deferring it
  // until the answer is on its way takes a commit off the order's round
  // trip; a crash in between leaves the row PENDING, which the next request
  // or query for the id settles by asking the broker (it knows the order).
  void flush();

  const DeskCounters& counters() const noexcept { return counters_; }

 private:
  proto::OrderReply submit(const proto::OrderRequest& order);
  // Stores a broker answer; a failure is counted, not thrown: the reply must
  // still go out, and the row staying PENDING makes a retry ask the broker.
  void remember(const proto::OrderReply& reply);
  // A stored reply, updated from the broker when its status was not final.
  proto::OrderReply refreshed(proto::OrderReply stored);
  // The answer when the store failed before anything was sent: UNKNOWN.
  proto::OrderReply unsent(const proto::OrderRequest& order, const StoreError& e, std::string_view what);
  void store_failed(const StoreError& e, std::string_view consequence);
  void store_ok();

  OrderStore& store_;
  Broker& broker_;
  const Clock& clock_;
  StoreListener listener_;
  DeskCounters counters_;
  std::optional<proto::OrderReply> unrecorded_;  // answered, DONE row not yet written
};

}  // namespace tp::dll_gateway
