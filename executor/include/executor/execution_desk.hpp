// ExecutionDesk: the executor's order-handling rules, without sockets. It
// decides batches of decoded signals (risk against the worst position the
// batch's unsent orders could leave, write-ahead rows in one transaction),
// keeps the position book and the count of HELD orders, moves orders between
// states (held, released, unknown, given up) and applies the broker's
// answers. What must go out (acks, order events, dead letters) is appended
// to an Outbox, in order, for the caller to publish; the desk sends nothing.
//
// A duplicate is found in one place: the store's primary key. A signal whose
// id is already recorded (earlier, or earlier in the same uncommitted batch)
// makes its insert fail, and that is the DUPLICATE verdict.
//
// A store write that fails is never treated as done: a batch throws
// StoreError from decide()/commit() (the caller aborts it; nothing of it is
// kept or published); any other write reports to the StoreFailed callback
// and the operation answers false, leaving the order as it was
// (reconciliation settles it). Borrows the store, config and clock; one thread.
//
// Positions are kept twice from the same fills: per instrument (the risk
// limits, the broker comparison) and per strategy group (the signal's
// strategy field: a group's own max_position, its StrategyPosition reports).
// Adopting the broker's figures changes only the former.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/histogram.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "executor/decision.hpp"
#include "executor/final_orders.hpp"
#include "executor/order_record.hpp"
#include "executor/portfolio.hpp"
#include "executor/position_book.hpp"
#include "executor/store.hpp"
#include "executor/trading_controls.hpp"
#include "proto/codec.hpp"

namespace tp::executor {

// One strategy group's share of the desk's counters.
struct GroupCounters {
  std::uint64_t signals = 0;   // accepted
  std::uint64_t rejected = 0;  // refused (any reason), duplicates not counted
  std::uint64_t fills = 0;     // answers that added filled quantity to one of its orders
};

// What the desk counts; the node adds what only it sees (stats_json).
struct DeskCounters {
  std::uint64_t signals_accepted = 0;
  std::uint64_t duplicates = 0;
  std::map<std::string, std::uint64_t, std::less<>> rejected;  // reason -> n
  std::uint64_t fills = 0;
  // The same by instrument: every configured one from 0, and any other filled.
  std::map<std::string, std::uint64_t, std::less<>> fills_by_instrument;
  std::uint64_t partial_fills = 0;
  std::uint64_t broker_rejects = 0;
  std::uint64_t orders_held = 0;        // recorded HELD (the breaker was not closed)
  std::uint64_t canceled = 0;           // orders that ended CANCELED (a fill before the cancel kept)
  std::uint64_t expired_at_broker = 0;  // GTD orders that ended EXPIRED
  std::uint64_t cancel_requests = 0;    // CancelRequests accepted (durably REQUESTED)
  std::uint64_t cancel_duplicates = 0;  // repeats of a cancel already requested
  std::map<std::string, std::uint64_t, std::less<>> cancels_refused;  // reason -> n
  std::uint64_t reports_applied = 0;  // execution reports that changed an order
  std::uint64_t reports_known = 0;    // reports whose news an answer had brought first
  std::uint64_t reports_unknown_order = 0;
  std::uint64_t stale_updates = 0;        // answers or reports older than what was known
  std::uint64_t invalid_transitions = 0;  // refused by the order state machine: logged, not applied
  std::uint64_t held_expired = 0;         // HELD orders given up: the signal expired first
  std::uint64_t control_commands = 0;     // tpctl's requests answered (status included)
  std::map<std::string, GroupCounters, std::less<>> groups;  // by strategy group
};

// Messages to publish, in the order they were produced.
struct Outbox {
  struct Ack {
    std::string topic;  // proto::ack_topic(strategy, instance)
    proto::SignalAck ack;
  };
  using DeadLetter = OutcomeLetter;
  // A StrategyPosition follows the OrderEvent of the fill that moved it, so
  // that a subscriber counts that fill once (see docs/PROTOCOL.md).
  std::vector<std::variant<Ack, proto::OrderEvent, DeadLetter, proto::StrategyPosition>> items;
};

// One signal of the batch being decided. Kept across batches so that the
// strings keep their capacity (decoding into it allocates nothing).
struct DecidedSignal {
  proto::TradingSignal signal;
  Verdict verdict = Verdict::accept;
  bool held = false;     // accept: recorded HELD, not to be sent now
  std::string reason;    // reject
  std::string detail;    // reject
  OutcomeLetter letter;  // reject: its dead letter, stored with the REJECTED row
  OrderRecord order;     // accept
};

// An order's answer from dll_gateway, received at `received_ns`, not yet
// recorded.
struct AnsweredOrder {
  OrderRecord order;
  proto::OrderReply reply;
  std::int64_t received_ns = 0;
};

// What the start-up comparison with the broker's positions found.
enum class PositionCheck { pending, matched, mismatch, adopted, unavailable };
std::string_view to_string(PositionCheck c) noexcept;

// Where a broker answer comes from: only an order's own round trip measures
// tick-to-fill (a reconciliation finds fills at some later time, a resting
// order fills whenever the market comes to it).
enum class ReplySource { round_trip, reconciliation, report, cancel };

enum class ReportResult { applied, known, failed };

// What became of a CancelRequest.
struct CancelDecision {
  proto::AckStatus ack = proto::AckStatus::accepted;
  std::string reason;     // for a refusal: unknown_order, not_owner, order_final
  bool stored = true;     // false: the store failed, nothing acked (the strategy resends)
  bool send_now = false;  // the order works at the broker: send the cancel
  std::optional<OrderRecord> order;
};

// Who made a signal: a strategy, or the executor itself (the flatten's
// closing orders, which the trading state and the throttles let through).
enum class Origin { strategy, executor };

// The flatten's closing orders carry signal ids "flatten.<group>.<sym>...";
// "flatten" is not a valid group name, so no strategy's id starts so.
inline constexpr std::string_view closing_order_prefix = "flatten.";
bool is_closing_order(std::string_view signal_id) noexcept;

// The start-up comparison of open orders with the broker's.
enum class OrdersCheck { pending, matched, mismatch, unavailable };
std::string_view to_string(OrdersCheck c) noexcept;

class ExecutionDesk {
 public:
  using StoreFailed = std::function<void(std::string_view what, const StoreError& e, int err)>;

  // Rebuilds the position book and reads the HELD count from the store (the
  // only time it is read: from then on the desk counts every change).
  ExecutionDesk(ExecutorStore& store, const Config& config, const Clock& clock,
                StoreFailed on_store_failed = {});
  ExecutionDesk(const ExecutionDesk&) = delete;
  ExecutionDesk& operator=(const ExecutionDesk&) = delete;

  // --- a batch of signals -------------------------------------------------
  // Where the next signal of the batch is decoded (decode_into).
  proto::TradingSignal& next_signal();
  // Decides the signal in next_signal() and writes its row inside the
  // batch's transaction (begun by the first call). `original`: its bytes.
  // `broker_closed`: the circuit breaker lets orders out (otherwise an
  // accepted order is recorded HELD). Throws StoreError.
  // Past the signal's own checks and the risk limits (which count every
  // open order at its worst case), a strategy's signal must pass the trading
  // state (HALTED: `trading_halted`; REDUCING: `reduce_only` unless it
  // shrinks its instrument's position), risk.max_open_orders
  // (`max_open_orders`) and the throttles, its group's and the overall one
  // (`rate_limited`; a refused signal takes no token).
  void decide(std::string_view original, bool broker_closed, Origin origin = Origin::strategy);
  // Commits the batch; false when nothing was decided (no transaction).
  // Throws StoreError.
  bool commit();
  // After a decide() or commit() threw: rolls back, forgets the batch (and
  // what it added to the HELD count).
  void abort() noexcept;
  // The signals decided since the batch began, in arrival order; empty once
  // the batch is published.
  std::span<DecidedSignal> batch() noexcept {
    return published_ ? std::span<DecidedSignal>{} : std::span<DecidedSignal>{batch_.data(), decided_};
  }
  // After commit(): the acks, NEW events and dead letters of the batch, in
  // arrival order, and the batch, whose accepted orders that are not held
  // are to be sent, in order. Once only: until the next next_signal() begins
  // a new batch, it publishes nothing and returns an empty span, so that a
  // drain that decided nothing new (the queue was empty after a full batch)
  // neither reports the last batch's refusals again nor sends its orders
  // again from their stale INTENT copies.
  std::span<DecidedSignal> publish(Outbox& out);

  // --- an order's state ---------------------------------------------------
  // Whether an accepted order must be held rather than sent now: the breaker
  // is not closed, or older orders are held (they go first).
  // While HALTED nothing more goes out: an order of a batch not sent yet when
  // a halt came is held (and then given up).
  bool must_hold(bool broker_closed) const noexcept {
    return held_ > 0 || !broker_closed || trading_.state == proto::TradingState::halted;
  }
  // Records HELD an order of the batch that was not sent (the breaker opened
  // meanwhile). False, and it stays INTENT, when that cannot be recorded.
  bool hold(OrderRecord& order);
  // HELD orders, oldest first.
  std::vector<OrderRecord> held_orders() { return store_.held_orders(); }
  // HELD -> INTENT, durably, before it is sent. False when not recorded.
  bool release(OrderRecord& order);
  // A HELD order whose signal expired: REJECTED "expired", never sent.
  bool give_up(const OrderRecord& order, Outbox& out);
  // The same for another `reason` (the dead letter's and the count's):
  // `outcome_reason` is the order's REJECTED reason, `why` the dead
  // letter's detail after "held order <id> not sent: ".
  bool give_up(const OrderRecord& order, Outbox& out, std::string_view reason,
               const std::string& outcome_reason, const std::string& why);
  // No answer came: UNKNOWN (reconciled by query). It stays INTENT, which is
  // reconciled the same way, when even that cannot be recorded.
  void mark_unknown(const OrderRecord& order);
  // Records the broker's answer (received at `received_ns`), moves the
  // position by what is new, counts it and appends its event (and a dead
  // letter for an expiry refusal; after a new fill, the order's group's new
  // StrategyPosition). Returns whether the order is still open (not final,
  // or the answer could not be recorded).
  // Every answer and report goes through the order state machine
  // (proto/order_lifecycle.hpp): stale or repeated news changes nothing,
  // an impossible change is logged and counted, never applied.
  bool apply_reply(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t received_ns,
                   ReplySource source, Outbox& out);
  // apply_reply() for several answers under ONE commit (the answers of the
  // orders a batch had in flight at once; distinct orders). When the commit
  // fails nothing of any of them is applied: each order stays as it was
  // (reconciled by query), and the failure goes to the StoreFailed callback.
  void apply_replies(std::span<const AnsweredOrder> answers, ReplySource source, Outbox& out);
  // Applies one execution report of dll_gateway's stream, in seq order. A
  // report that changes the order is recorded (its id, the cursor past it)
  // with the change in one transaction: `applied`. One that brings nothing
  // new (an answer said it first, the usual case) is written by nobody here:
  // `known`, for the caller to record in bulk (ExecutorStore::record_known);
  // applying it again after a crash changes nothing, quantities being
  // cumulative. `failed`: the store could not read or write; nothing applied.
  ReportResult apply_report(const proto::ExecutionReport& report, std::int64_t received_ns, Outbox& out);

  // --- cancels --------------------------------------------------------------
  // A strategy's CancelRequest: acked (SignalAck with cancel = true) into
  // `out`; a HELD order is canceled here (it never left); a working one is
  // marked REQUESTED durably before the ack and is to be sent (send_now).
  CancelDecision request_cancel(const proto::CancelRequest& request, Outbox& out);
  // The executor's own cancel (GTD overdue, shutdown): REQUESTED durably.
  bool request_cancel(const OrderRecord& order, std::string_view reason);
  // The answer to an OrderCancel: applied as any answer; the cancel is DONE
  // unless the answer is UNKNOWN (then it stays REQUESTED, sent again later:
  // dll_gateway lets one through at most).
  void apply_cancel_answer(const OrderRecord& order, const proto::OrderReply& reply, Outbox& out);
  // A cancel REQUESTED for an order that ended meanwhile: DONE.
  void cancel_settled(const OrderRecord& order);

  // --- trading controls (the kill switch) -----------------------------------
  const TradingStatus& trading() const noexcept { return trading_; }
  // An operator's command: the new state is stored before the reply says
  // ok (false, state unchanged, when it cannot be). The orders it implies
  // (cancels, closing orders) are the caller's next steps: cancel_all(),
  // flatten().
  proto::ControlReply command(const proto::ControlRequest& request);
  // The state as a reply: ok, or refused with `refusal` as its detail.
  proto::ControlReply control_reply(std::string_view refusal = {}) const;
  // An automatic trigger: raises the state (never lowers it). False when it
  // could not be stored (it holds for this run all the same).
  bool escalate(proto::TradingState at_least, std::string_view cause);
  // HALTED, or a flatten under way: every working order gets a cancel
  // REQUESTED (durably; the caller sends them), every HELD order (but the
  // flatten's own) is given up (`trading_halted`, `flattening`). Returns how
  // many orders it changed. Orders accepted before the state changed and
  // already sent keep their course until their cancel is answered.
  std::size_t cancel_all(Outbox& out);
  // A flatten under way and no order open: decides, as one batch recorded
  // HELD (the caller releases them), MARKET IOC orders closing each
  // instrument's net position, each booked to a group holding that side (the
  // largest first) and within the per-order limits, priced for the checks
  // at `marks` (else the last fill). Groups with opposite positions in one
  // instrument offset each other: the account is flat, their books are not.
  // When nothing is left to close (or after max_flatten_rounds) the flatten
  // is done. Returns the number of closing orders. Throws StoreError (then
  // abort()).
  static constexpr int max_flatten_rounds = 10;
  static constexpr std::int64_t closing_order_ttl_ns = 5'000'000'000;
  std::size_t flatten(const Marks& marks, Outbox& out);
  // Orders not final: recorded, held, in flight, unknown or working.
  std::size_t open_order_count() const noexcept { return open_.count(); }
  const OpenOrders& open_orders() const noexcept { return open_; }

  // --- the start-up open-orders check ---------------------------------------
  // `unknown`: ids open at the broker that the executor cannot account for.
  // Any halts new signals (open_orders_mismatch): fail closed.
  void compare_open_orders(const std::vector<std::string>& unknown);
  void open_orders_unavailable(std::string_view reason);
  OrdersCheck orders_check() const noexcept { return orders_check_; }
  const std::vector<std::string>& unknown_open_orders() const noexcept { return unknown_open_orders_; }

  // --- the start-up position check ------------------------------------------
  // The instruments to ask the broker about: configured or held.
  std::set<std::string, std::less<>> instruments_to_check() const;
  // Compares with the broker's figures, one per instrument_to_check(): a
  // mismatch halts new signals (position_mismatch) unless
  // executor.adopt_broker_positions, which takes the broker's figures. A
  // mismatch counts only when a second comparison (the next pass, after the
  // reports caught up) finds one too: the first leaves the check pending, as
  // a resting order's fill may be between the broker and the executor.
  void compare_positions(const std::map<std::string, double, std::less<>>& broker);
  // The broker could not tell one position: the check is given up.
  void positions_unavailable(std::string_view instrument, std::string_view reason);

  struct Mismatch {
    double executor = 0;
    double broker = 0;
  };
  PositionCheck position_check() const noexcept { return position_check_; }
  const std::map<std::string, Mismatch, std::less<>>& position_mismatches() const noexcept {
    return mismatches_;
  }

  const PositionBook& positions() const noexcept { return book_; }
  // Per strategy group: the fills of its signals (rebuilt from the store).
  const GroupBooks& group_positions() const noexcept { return group_books_; }
  // Every (group, instrument) the desk reports: each configured group x its
  // instruments, plus every group and instrument of an accepted signal or a
  // stored fill.
  using KnownGroups = std::map<std::string, std::set<std::string, std::less<>>, std::less<>>;
  const KnownGroups& known_groups() const noexcept { return known_; }
  // One StrategyPosition per known (group, instrument), stamped now.
  std::vector<proto::StrategyPosition> position_reports() const;
  std::uint64_t held_count() const noexcept { return held_; }
  const DeskCounters& counters() const noexcept { return counters_; }
  const LatencyHistogram& tick_to_fill() const noexcept { return tick_to_fill_; }
  // The same observations in seconds, for Prometheus.
  const metrics::Histogram& tick_to_fill_seconds() const noexcept { return tick_to_fill_seconds_; }

 private:
  // The worst position `signal`'s instrument could reach once the batch's
  // earlier accepted orders are answered, each filled fully or not at all.
  double worst_position(const DecidedSignal& decided) const;
  // The same for the signal's group alone: its own fills and its own orders
  // of the batch.
  double worst_group_position(const DecidedSignal& decided) const;
  // The worst of `filled` and the batch's accepted orders before `decided`
  // in its instrument (all of them, or only its group's).
  double worst_after(const DecidedSignal& decided, double filled, bool same_group) const;
  // The trading state's, open orders' and throttles' refusal of a
  // strategy's signal, if any.
  std::optional<Decision> control_refusal(const proto::TradingSignal& signal);
  // An accepted strategy signal's tokens, its group's and the overall one.
  void take_tokens(const proto::TradingSignal& signal);
  bool store_trading(const TradingStatus& next, std::string_view command);
  proto::StrategyPosition report(std::string_view group, std::string_view instrument) const;
  void count_rejected(std::string_view reason);
  void ack(const proto::TradingSignal& signal, proto::AckStatus status, std::string_view reason,
           Outbox& out) const;
  // Runs one store write; a StoreError goes to on_store_failed_ and becomes false.
  template <class Write>
  bool stored(std::string_view what, Write&& write);

  ExecutorStore& store_;
  const Config& config_;
  const Clock& clock_;
  StoreFailed on_store_failed_;
  PositionBook book_;
  GroupBooks group_books_;
  KnownGroups known_;
  std::uint64_t held_ = 0;  // HELD orders in the store
  std::uint64_t held_before_batch_ = 0;
  std::vector<DecidedSignal> batch_;
  std::size_t decided_ = 0;  // batch_[0, decided_) belong to the batch
  bool published_ = false;   // the batch went out: the next signal starts another
  DeskCounters counters_;
  LatencyHistogram tick_to_fill_;
  metrics::Histogram tick_to_fill_seconds_{metrics::latency_bounds_seconds()};
  OpenOrders open_;
  TradingStatus trading_;
  RateThrottle overall_throttle_;
  std::map<std::string, RateThrottle, std::less<>> group_throttles_;
  int flatten_rounds_ = 0;
  // Applies `reply` to `order` when the state machine says it is news;
  // `persist` writes it (and whatever goes with it) and throws StoreError.
  enum class Change { applied, not_news, failed };
  // What an answer is to its order: UNKNOWN (recorded as such), a change,
  // or nothing to record (known, stale, refused by the state machine:
  // counted and logged here).
  enum class News { no_status, change, none };
  // What judge() reads of an order: a stored one, or one of finals_.
  struct OrderFacts {
    std::string_view client_order_id;
    OrderState state;
    proto::OrderStatus status;
    double quantity;
    double filled_quantity;
  };
  News judge(const OrderFacts& order, const proto::OrderReply& reply);
  News judge(const OrderRecord& o, const proto::OrderReply& reply) {
    return judge(OrderFacts{o.client_order_id, o.state, o.status, o.quantity, o.filled_quantity}, reply);
  }
  // Once the answer is recorded: the books, the counters, the event (and the
  // group's position after a fill). Whether the order is still open.
  bool take_effects(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t now,
                    ReplySource source, News news, Outbox& out);
  std::vector<News> news_;  // apply_replies()'s, reused
  FinalOrders finals_;      // judges most reports without a read of the store
  template <class Persist>
  bool apply_change(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t now,
                    ReplySource source, Outbox& out, Persist&& persist, Change& change);
  void count_outcome(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t now, Outbox& out);
  // The dead letter of news that is an order refused because its deadline
  // had passed (accounted as expired); the same letter for the same
  // arguments, so that the one stored with the outcome is the one sent.
  std::optional<OutcomeLetter> expiry_letter(const OrderRecord& order, const proto::OrderReply& reply,
                                             std::int64_t now);
  void ack_cancel(const proto::CancelRequest& request, proto::AckStatus status, std::string_view reason,
                  Outbox& out) const;

  PositionCheck position_check_ = PositionCheck::pending;
  // The last comparison's differences (instrument -> broker - executor): a
  // mismatch is confirmed when the next one finds the same difference.
  std::map<std::string, double, std::less<>> suspected_;
  OrdersCheck orders_check_ = OrdersCheck::pending;
  std::vector<std::string> unknown_open_orders_;
  LogLimiter limiter_;
  std::map<std::string, Mismatch, std::less<>> mismatches_;
  proto::Encoder encoder_;
};

}  // namespace tp::executor
