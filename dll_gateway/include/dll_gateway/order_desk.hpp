// OrderDesk: the order-handling rules of dll_gateway, without sockets. It
// answers OrderRequests, OrderQueries and OrderCancels from the OrderStore
// and the Broker so that each client order id reaches the broker at most
// once, and each cancel too:
//   DONE row      -> the stored state, duplicate = true; the broker is not
//                    called (except a query when the stored status is not final)
//   PENDING row   -> we crashed between recording and the broker's answer: ask
//                    the broker (query); an id it knows is stored and answered
//                    (duplicate = true), an id it never saw is submitted now
//   no row        -> insert PENDING (commit), submit, answer; the DONE row
//                    is written by flush(), which the caller runs after
//                    sending the answer, and every handle() runs first
// Several requests read together (prepare(), then handle() for each in
// order, then flush()) share two commits: the PENDING rows of the new ones
// in one transaction before any of them reaches the broker, their DONE rows
// and reports in another once the answers are on their way.
// A submit at or after the request's deadline (expires_ts_ns) is refused
// instead (REJECTED "expired: ..."), stored DONE like any answer.
//
// Every change of an order it learns (a submit's answer, a cancel's, a
// query's that differs from the row, a report the broker's poll gives) is
// judged by the order state machine (proto/order_lifecycle.hpp), stored with
// the row as a numbered ExecutionReport in the same transaction, and only
// then handed to the caller to publish (take_reports). Updates that say
// nothing new are dropped; impossible ones are counted and logged, never
// stored.
//
// Store trouble (a full disk: SQLITE_FULL, an I/O error) never costs a signal
// and never sends an order without its PENDING row: when the id cannot be
// looked up or its PENDING row cannot be committed, nothing goes to the
// broker and the answer is UNKNOWN ("outcome unknown, retry the same client
// order id"), so the executor retries the same id later; a DONE row that
// cannot be written leaves the row PENDING and its answer in memory, written
// by the next flush that can (until then nothing more is sent), or settled
// by a request or query asking the broker; broker reports that cannot be stored wait in
// memory for the next poll. Each store write's outcome goes to the
// StoreListener (the node logs and shows it).
// Every call returns a reply (never throws for store or broker trouble).
// Borrows the store, broker and clock; one thread.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "dll_gateway/broker.hpp"
#include "dll_gateway/order_store.hpp"
#include "proto/messages.hpp"

namespace tp::dll_gateway {

struct DeskCounters {
  std::uint64_t orders_received = 0;
  std::uint64_t duplicates = 0;  // requests answered without a new submit
  std::uint64_t queries = 0;
  std::uint64_t submitted = 0;  // orders that went to the broker
  std::uint64_t fills = 0;      // answers and reports that added filled quantity
  std::uint64_t partial_fills = 0;
  std::uint64_t rejects = 0;        // REJECTED answers to a request (broker, deadline)
  std::uint64_t expired = 0;        // refused: the request's deadline had passed (never submitted)
  std::uint64_t broker_errors = 0;  // calls that failed: outcome unknown
  std::uint64_t store_errors = 0;   // failed store reads and writes
  std::uint64_t store_unknown = 0;  // orders answered UNKNOWN, unsent: the store could not record them
  std::uint64_t cancels_received = 0;
  std::uint64_t cancels_sent = 0;           // cancel calls that went to the broker
  std::uint64_t cancel_duplicates = 0;      // answered from the stored answer
  std::uint64_t cancels_too_late = 0;       // the order was final: answered without a broker call
  std::uint64_t reports = 0;                // execution reports stored (and handed out to publish)
  std::uint64_t broker_reports = 0;         // reports the broker's poll gave
  std::uint64_t reports_stale = 0;          // updates that said nothing new (dropped)
  std::uint64_t invalid_transitions = 0;    // updates the state machine refused (dropped, logged)
  std::uint64_t reports_unknown_order = 0;  // broker reports for an id without a row
  std::uint64_t unknown_open_orders = 0;    // open at the broker, unknown here (at start)
  std::uint64_t report_queries = 0;
  std::uint64_t open_orders_queries = 0;
  std::map<std::string, std::uint64_t, std::less<>>
      rejects_by_reason;  // the reason's first word(s) before ':'
};

// The broker calls whose latency the desk measures (on the clock's
// monotonic time, per call: a plugin's own resends inside a call included).
enum class BrokerCall : std::uint8_t { submit, query, cancel };
inline constexpr std::size_t broker_call_count = 3;
std::string_view to_string(BrokerCall call) noexcept;

// Called after every store write: with the error and what the desk did
// about it when the write failed, with nullptr (and "") when it succeeded.
using StoreListener = std::function<void(const StoreError* error, std::string_view consequence)>;

class OrderDesk {
 public:
  // Reports per ReportBatch at most (and 60 KiB of them: a reply must stay
  // under proto::max_payload_bytes).
  static constexpr std::uint32_t max_reports_per_batch = 500;
  // Broker reports taken per poll.
  static constexpr std::size_t max_reports_per_poll = 256;

  OrderDesk(OrderStore& store, Broker& broker, const Clock& clock, StoreListener listener = {})
      : store_(store), broker_(broker), clock_(clock), listener_(std::move(listener)) {}

  ~OrderDesk() { flush(); }
  OrderDesk(const OrderDesk&) = delete;
  OrderDesk& operator=(const OrderDesk&) = delete;

  // The OrderRequests read together with others, before handle() is called
  // for each of them (in the same order): writes the PENDING rows of the
  // ones with no row in ONE transaction. When that commit fails none of them
  // is sent: each is answered UNKNOWN by its handle(). An id without a
  // prepared row (already known, a repeat, a failed look-up) takes the
  // usual way in handle(). Runs flush() first.
  void prepare(std::span<const proto::OrderRequest* const> orders);
  proto::OrderReply handle(const proto::OrderRequest& order);
  proto::OrderReply handle(const proto::OrderQuery& query);
  // The order's state after the attempt; one cancel per id reaches the broker.
  proto::OrderReply handle(const proto::OrderCancel& cancel);
  proto::ReportBatch handle(const proto::ReportQuery& query);
  proto::ReportBatch handle(const proto::OpenOrdersQuery& query);
  // Writes the DONE rows (and reports) of the answers not yet written, in
  // one transaction. Deferring them until the answers are on their way takes
  // the commit off the orders' round trips; a crash in between leaves the
  // rows PENDING, which the next request or query for an id settles by
  // asking the broker (it knows the order). A write that fails is tried
  // again by every flush (each request and poll) until it succeeds or the
  // row was settled meanwhile.
  void flush();
  // Takes the broker's reports (fills of resting orders, expiries) and
  // stores each change. Returns how many reports were stored.
  std::size_t poll();
  // At start: asks the broker about every order the store holds open or
  // PENDING and stores what changed while nobody listened (a PENDING row the
  // broker knows becomes DONE, with its report); counts (and logs) open
  // orders at the broker that the store does not know.
  void settle();
  // The reports stored since the last call, in seq order, to publish.
  std::vector<proto::ExecutionReport> take_reports() { return std::exchange(stored_reports_, {}); }

  const DeskCounters& counters() const noexcept { return counters_; }
  // Seconds per call, latency_bounds_seconds().
  const metrics::Histogram& broker_latency(BrokerCall call) const noexcept {
    return broker_latency_[static_cast<std::size_t>(call)];
  }

 private:
  // Makes a broker call and observes its latency (no allocation).
  template <class Call>
  BrokerAnswer timed(BrokerCall call, Call&& make_call);
  // What a report says about the order beside its state (from the request
  // or the stored row).
  struct OrderInfo {
    std::string instrument;
    proto::Side side = proto::Side::buy;
    double quantity = 0;
  };
  static OrderInfo info_of(const proto::OrderRequest& order);
  static OrderInfo info_of(const StoredOrder& row);
  // The report of the change from `known` to `now` (nullopt when the order
  // is unknown to the store: no instrument to report it under).
  std::optional<proto::ExecutionReport> report_of(const OrderInfo& info, const proto::OrderReply& known,
                                                  const proto::OrderReply& now,
                                                  const BrokerReport* from_broker = nullptr) const;
  proto::OrderReply submit(const proto::OrderRequest& order);
  // Stores `now` as the order's state and its report; a failure is counted,
  // not thrown: the reply must still go out, and the row staying PENDING
  // makes a retry ask the broker.
  void remember(const OrderInfo& info, const proto::OrderReply& known, const proto::OrderReply& now);
  // A stored reply, updated from the broker when its status was not final.
  proto::OrderReply refreshed(const StoredOrder& stored);
  // The answer when the store failed before anything was sent: UNKNOWN.
  proto::OrderReply unsent(const std::string& client_order_id, const StoreError& e, std::string_view what);
  // Whether an answer whose write failed still waits for flush().
  bool answer_unwritten() const noexcept;
  void count_answer(const proto::OrderReply& known, const proto::OrderReply& now);
  void store_failed(const StoreError& e, std::string_view consequence);
  void store_ok();

  OrderStore& store_;
  Broker& broker_;
  const Clock& clock_;
  StoreListener listener_;
  DeskCounters counters_;
  std::array<metrics::Histogram, broker_call_count> broker_latency_{
      metrics::Histogram(metrics::latency_bounds_seconds()),
      metrics::Histogram(metrics::latency_bounds_seconds()),
      metrics::Histogram(metrics::latency_bounds_seconds())};
  // Answered, DONE row (and report) not yet written.
  struct Unrecorded {
    OrderInfo info;
    proto::OrderReply reply;
    bool kept = false;  // its write failed: retried by every flush until it succeeds
  };
  std::vector<Unrecorded> unrecorded_;
  // prepare()'s orders not yet handled: an empty optional when the PENDING
  // row is committed, else the UNKNOWN answer (the group's commit failed).
  std::map<std::string, std::optional<proto::OrderReply>, std::less<>> prepared_;
  std::vector<proto::ExecutionReport> stored_reports_;  // to publish
  std::deque<BrokerReport> unstored_;                   // polled, not yet stored (a failing disk)
  std::vector<BrokerReport> polled_;                    // reused per poll
};

}  // namespace tp::dll_gateway
