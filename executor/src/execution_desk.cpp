#include "executor/execution_desk.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "proto/order_lifecycle.hpp"

namespace tp::executor {
namespace {

// The fields every event about a recorded order carries.
proto::OrderEvent event_of(const OrderRecord& order, proto::OrderStatus status, std::int64_t now_ns) {
  proto::OrderEvent ev;
  ev.client_order_id = order.client_order_id;
  ev.signal_id = order.signal_id;
  ev.instrument = order.instrument;
  ev.side = order.side;
  ev.status = status;
  ev.quantity = order.quantity;
  ev.created_ts_ns = order.created_ns;
  ev.event_ts_ns = now_ns;
  ev.causation_ts_ns = order.causation_ts_ns;
  return ev;
}

// A report as the answer it stands for.
proto::OrderReply reply_of(const proto::ExecutionReport& r, const OrderRecord& order) {
  proto::OrderReply reply;
  reply.client_order_id = r.client_order_id;
  reply.order_id = r.order_id.empty() ? order.order_id : r.order_id;
  reply.status = r.status;
  reply.filled_quantity = r.filled_quantity;
  reply.fill_price = r.avg_price;
  reply.reason = r.reason;
  reply.broker_ts_ns = r.broker_ts_ns;
  return reply;
}

}  // namespace

std::string_view to_string(PositionCheck c) noexcept {
  switch (c) {
    case PositionCheck::pending:
      return "pending";
    case PositionCheck::matched:
      return "matched";
    case PositionCheck::mismatch:
      return "mismatch";
    case PositionCheck::adopted:
      return "adopted";
    case PositionCheck::unavailable:
      return "unavailable";
  }
  return "?";
}

ExecutionDesk::ExecutionDesk(ExecutorStore& store, const Config& config, const Clock& clock,
                             StoreFailed on_store_failed)
    : store_(store),
      config_(config),
      clock_(clock),
      on_store_failed_(std::move(on_store_failed)),
      held_(store_.count_in_state(OrderState::held)) {
  auto stored = store_.rebuild_positions();
  book_ = std::move(stored.instruments);
  group_books_ = std::move(stored.groups);
  for (const auto& group : config_.strategy.groups) {
    auto& instruments = known_[group.name];
    instruments.insert(group.instruments.begin(), group.instruments.end());
  }
  for (const auto& [group, book] : group_books_) {
    for (const auto& [sym, p] : book.all()) known_[group].insert(sym);
  }
  for (const auto& o : store_.unfinished_orders())
    open_.add(o.client_order_id, o.instrument, o.strategy, o.side, o.quantity - o.filled_quantity);
  for (const auto& i : config_.instruments) counters_.fills_by_instrument.emplace(i.symbol, 0);
  trading_ = store_.trading_status();
  overall_throttle_ = RateThrottle(config_.risk.max_orders_per_second);
  for (const auto& group : config_.strategy.groups)
    if (group.max_orders_per_second > 0)
      group_throttles_.emplace(group.name, RateThrottle(group.max_orders_per_second));
}

template <class Write>
bool ExecutionDesk::stored(std::string_view what, Write&& write) {
  try {
    write();
    return true;
  } catch (const StoreError& e) {
    if (on_store_failed_) on_store_failed_(what, e, store_.last_errno());
    return false;
  }
}

proto::TradingSignal& ExecutionDesk::next_signal() {
  if (published_) {
    decided_ = 0;
    published_ = false;
  }
  if (decided_ == batch_.size()) batch_.emplace_back();
  return batch_[decided_].signal;
}

double ExecutionDesk::worst_position(const DecidedSignal& decided) const {
  return worst_after(decided, book_.position(decided.signal.instrument), false);
}

double ExecutionDesk::worst_group_position(const DecidedSignal& decided) const {
  const auto it = group_books_.find(decided.signal.strategy);
  const double filled = it == group_books_.end() ? 0.0 : it->second.position(decided.signal.instrument);
  return worst_after(decided, filled, true);
}

double ExecutionDesk::worst_after(const DecidedSignal& decided, double filled, bool same_group) const {
  // Every order not final (the batch's unsent ones, those in flight, those
  // resting at the broker) may still fill: the risk check takes the worst
  // position they could leave, each filled fully or not at all.
  const auto& signal = decided.signal;
  const auto open =
      same_group ? open_.group(signal.strategy, signal.instrument) : open_.instrument(signal.instrument);
  const double delta = signal.action == proto::Side::buy ? signal.quantity : -signal.quantity;
  const double high = filled + open.buy;
  const double low = filled - open.sell;
  return std::abs(high + delta) >= std::abs(low + delta) ? high : low;
}

std::optional<Decision> ExecutionDesk::control_refusal(const proto::TradingSignal& signal) {
  switch (trading_.state) {
    case proto::TradingState::active:
      break;
    case proto::TradingState::halted:
      return Decision{Verdict::reject, "trading_halted", "trading is HALTED (" + trading_.cause + ")"};
    case proto::TradingState::reducing: {
      const double position = book_.position(signal.instrument);
      const double same_side = open_.instrument(signal.instrument).on(signal.action);
      if (!reduces(position, same_side, signal.action, signal.quantity))
        return Decision{Verdict::reject, "reduce_only",
                        fmt::format("trading is REDUCING ({}): {} {} {} does not reduce the position {} "
                                    "(open {} orders: {})",
                                    trading_.cause, proto::to_string(signal.action), signal.quantity,
                                    signal.instrument, position, proto::to_string(signal.action), same_side)};
      break;
    }
  }
  if (open_.count() >= static_cast<std::size_t>(config_.risk.max_open_orders))
    return Decision{Verdict::reject, "max_open_orders",
                    fmt::format("{} orders open (not final), risk.max_open_orders {}", open_.count(),
                                config_.risk.max_open_orders)};
  const auto now = clock_.monotonic_ns();
  auto group = group_throttles_.find(signal.strategy);
  if (group != group_throttles_.end() && !group->second.available(now))
    return Decision{
        Verdict::reject, "rate_limited",
        fmt::format("group {} over its max_orders_per_second {}", signal.strategy, group->second.rate())};
  if (!overall_throttle_.available(now))
    return Decision{Verdict::reject, "rate_limited",
                    fmt::format("over risk.max_orders_per_second {}", overall_throttle_.rate())};
  return std::nullopt;
}

void ExecutionDesk::take_tokens(const proto::TradingSignal& signal) {
  if (auto group = group_throttles_.find(signal.strategy); group != group_throttles_.end())
    group->second.take();
  overall_throttle_.take();
}

void ExecutionDesk::decide(std::string_view original, bool broker_closed, Origin origin) {
  if (!store_.in_batch()) {
    held_before_batch_ = held_;
    store_.begin_batch();
  }
  DecidedSignal& d = batch_[decided_];
  const auto& signal = d.signal;
  auto decision = tp::executor::decide(
      signal, config_, Exposure{.instrument = worst_position(d), .group = worst_group_position(d)}, clock_);
  if (decision.verdict == Verdict::accept && position_check_ == PositionCheck::mismatch) {
    decision = {
        Verdict::reject, "position_mismatch",
        "the executor's positions differ from the broker's (see position_mismatches in executor.stats.json)"};
  }
  if (decision.verdict == Verdict::accept && orders_check_ == OrdersCheck::mismatch) {
    decision = {Verdict::reject, "open_orders_mismatch",
                "orders open at the broker are unknown to the executor (see unknown_open_orders in "
                "executor.stats.json)"};
  }
  // The kill switch's own closing orders pass its checks by construction.
  if (decision.verdict == Verdict::accept && origin == Origin::strategy) {
    if (auto refusal = control_refusal(signal)) decision = std::move(*refusal);
  }
  ++decided_;
  d.verdict = decision.verdict;
  d.held = false;
  const auto now = clock_.now_ns();
  // Each insert below is the duplicate check: the store refuses an id it
  // holds, committed or earlier in this batch (same transaction).
  if (decision.verdict == Verdict::reject) {
    d.reason = std::move(decision.reason);
    d.detail = std::move(decision.detail);
    // The detail names the signal: under a flood the sink may store the
    // line without its original bytes (dead_letter.original_bytes_per_s).
    d.letter.reason = d.reason;
    d.letter.detail = "signal " + signal.signal_id + ": " + d.detail;
    d.letter.original.assign(original);
    d.letter.key = signal.signal_id;
    d.letter.ts_ns = now;
    if (!store_.record_rejected(signal, d.reason + ": " + d.detail, now, d.letter)) {
      d.verdict = Verdict::duplicate;
      return;
    }
    return;
  }
  OrderRecord& order = d.order;
  order = intent_for(signal, now, expiry_margin_ns(config_));
  // While the breaker is not closed (or older orders are still held, which
  // keeps the orders in their arrival order) the order is HELD: recorded and
  // acked, sent by reconciliation once dll_gateway answers again.
  d.held = must_hold(broker_closed);
  if (d.held) order.state = OrderState::held;
  // Write-ahead: the signal and the intent are durable (at the batch's
  // commit) before anything leaves.
  if (!store_.record_accepted(signal, order, now)) {
    d.verdict = Verdict::duplicate;
    d.held = false;
    return;
  }
  if (d.held) ++held_;
  open_.add(order.client_order_id, order.instrument, order.strategy, order.side, order.quantity);
  // Only now: a duplicate (refused by the insert above) uses no token.
  if (origin == Origin::strategy) take_tokens(signal);
}

bool ExecutionDesk::commit() {
  if (!store_.in_batch()) return false;
  store_.commit_batch();
  return true;
}

void ExecutionDesk::abort() noexcept {
  store_.abort_batch();
  if (decided_ > 0 && !published_) {
    held_ = held_before_batch_;
    for (std::size_t i = 0; i < decided_; ++i)
      if (batch_[i].verdict == Verdict::accept) open_.remove(batch_[i].order.client_order_id);
  }
  decided_ = 0;
  published_ = false;
}

void ExecutionDesk::ack(const proto::TradingSignal& signal, proto::AckStatus status, std::string_view reason,
                        Outbox& out) const {
  Outbox::Ack a;
  a.topic = proto::ack_topic(signal.strategy, signal.instance);
  a.ack.signal_id = signal.signal_id;
  a.ack.status = status;
  a.ack.reason = std::string(reason);
  a.ack.ts_ns = clock_.now_ns();
  out.items.emplace_back(std::move(a));
}

void ExecutionDesk::count_rejected(std::string_view reason) {
  auto it = counters_.rejected.find(reason);
  if (it == counters_.rejected.end()) it = counters_.rejected.emplace(std::string(reason), 0).first;
  ++it->second;
}

std::span<DecidedSignal> ExecutionDesk::publish(Outbox& out) {
  const auto decided = batch();
  published_ = true;
  for (const auto& d : decided) {
    const auto& signal = d.signal;
    switch (d.verdict) {
      case Verdict::duplicate:
        ++counters_.duplicates;
        ack(signal, proto::AckStatus::duplicate, "", out);
        continue;
      case Verdict::reject: {
        // The signal's REJECTED row was committed with its batch.
        const auto now = clock_.now_ns();
        count_rejected(d.reason);
        ++counters_.groups[signal.strategy].rejected;
        // A group seen only on refused signals is shown too (with no
        // position where the instrument is not configured).
        if (config_.find_instrument(signal.instrument) != nullptr) {
          known_[signal.strategy].insert(signal.instrument);
        } else {
          known_[signal.strategy];
        }
        out.items.emplace_back(d.letter);
        proto::OrderEvent ev;
        ev.client_order_id = client_order_id(signal.signal_id).substr(0, proto::max_id_length);
        ev.signal_id = signal.signal_id;
        ev.instrument = signal.instrument;
        ev.side = signal.action;
        ev.status = proto::OrderStatus::rejected;
        ev.quantity = signal.quantity;
        ev.reason = d.reason + ": " + d.detail;
        ev.created_ts_ns = now;
        ev.event_ts_ns = now;
        ev.causation_ts_ns = signal.causation_ts_ns;
        out.items.emplace_back(std::move(ev));
        ack(signal, proto::AckStatus::rejected, d.reason, out);
        continue;
      }
      case Verdict::accept:
        ++counters_.signals_accepted;
        ++counters_.groups[signal.strategy].signals;
        known_[signal.strategy].insert(signal.instrument);
        if (d.held) ++counters_.orders_held;
        ack(signal, proto::AckStatus::accepted, "", out);
        out.items.emplace_back(event_of(d.order, proto::OrderStatus::new_order, d.order.created_ns));
        continue;
    }
  }
  return decided;
}

bool ExecutionDesk::hold(OrderRecord& order) {
  // Unless HELD is durable it stays INTENT, never sent: reconciliation then
  // asks about it and sends it (same id).
  if (!stored("hold an order",
              [&] { store_.set_state(order.client_order_id, OrderState::held, clock_.now_ns()); }))
    return false;
  order.state = OrderState::held;
  ++held_;
  ++counters_.orders_held;
  return true;
}

bool ExecutionDesk::release(OrderRecord& order) {
  // INTENT is durable before the order can leave: from here on it is
  // reconciled (query first), never given up.
  if (!stored("release a held order",
              [&] { store_.set_state(order.client_order_id, OrderState::intent, clock_.now_ns()); }))
    return false;
  order.state = OrderState::intent;
  --held_;
  return true;
}

bool ExecutionDesk::give_up(const OrderRecord& order, Outbox& out) {
  return give_up(order, out, "expired", "expired: held while dll_gateway was unavailable; never sent",
                 "its signal expired at " + std::to_string(order.expires_ns));
}

bool ExecutionDesk::give_up(const OrderRecord& order, Outbox& out, std::string_view reason,
                            const std::string& outcome_reason, const std::string& why) {
  const auto now = clock_.now_ns();
  proto::OrderReply outcome;
  outcome.client_order_id = order.client_order_id;
  outcome.status = proto::OrderStatus::rejected;
  outcome.reason = outcome_reason;
  outcome.broker_ts_ns = now;
  // The dead letter carries the order that was not sent (its signal_id names
  // the signal; the signal's own bytes are not kept).
  Outbox::DeadLetter letter{std::string(reason), "held order " + order.client_order_id + " not sent: " + why,
                            std::string(encoder_.encode(request_of(order, now))), order.signal_id, now};
  if (!stored("give up a held order",
              [&] { store_.record_outcome(order.client_order_id, outcome, now, &letter); }))
    return false;
  --held_;
  open_.remove(order.client_order_id);
  if (reason == "expired") ++counters_.held_expired;
  count_rejected(reason);

  out.items.emplace_back(std::move(letter));
  auto ev = event_of(order, proto::OrderStatus::rejected, now);
  ev.reason = outcome.reason;
  out.items.emplace_back(std::move(ev));
  return true;
}

void ExecutionDesk::mark_unknown(const OrderRecord& order) {
  stored("mark an order unknown",
         [&] { store_.set_state(order.client_order_id, OrderState::unknown, clock_.now_ns()); });
}

ExecutionDesk::News ExecutionDesk::judge(const OrderFacts& order, const proto::OrderReply& reply) {
  // dll_gateway could not tell (its store or the broker failed): SENT
  // without a status, asked again by reconciliation.
  if (reply.status == proto::OrderStatus::unknown) return News::no_status;
  const bool unsettled = order.state == OrderState::intent || order.state == OrderState::unknown;
  const auto c = proto::classify({order.status, order.filled_quantity}, {reply.status, reply.filled_quantity},
                                 order.quantity);
  if (c.step == proto::Step::invalid) {
    ++counters_.invalid_transitions;
    // Rate-limited: a peer repeating an impossible update must not flood the log.
    if (std::uint64_t suppressed = 0;
        limiter_.allow("invalid_transition", clock_.monotonic_ns(), suppressed)) {
      spdlog::error("order {}: {} ({} filled) -> {} ({} filled) refused: {} ({} more since the last line)",
                    order.client_order_id, proto::to_string(order.status), order.filled_quantity,
                    proto::to_string(reply.status), reply.filled_quantity, c.why, suppressed);
    }
    return News::none;
  }
  if (c.step == proto::Step::stale) ++counters_.stale_updates;
  // Nothing new: a working order asked about again, or news already known.
  if (c.step != proto::Step::apply && !(unsettled && c.step == proto::Step::same)) return News::none;
  return News::change;
}

bool ExecutionDesk::take_effects(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t now,
                                 ReplySource source, News news, Outbox& out) {
  if (news == News::no_status) {
    auto ev = event_of(order, reply.status, now);
    ev.order_id = reply.order_id;
    ev.reason = reply.reason;
    out.items.emplace_back(std::move(ev));
    return true;
  }
  open_.update(order.client_order_id, order.quantity - reply.filled_quantity, proto::is_final(reply.status));
  // Only a committed row: a batch still open may yet be rolled back.
  if (proto::is_final(reply.status) && !store_.in_transaction())
    finals_.add(order.client_order_id, FinalOrder{reply.status, order.quantity, reply.filled_quantity});

  // Only what is new since the stored outcome moves the position (an order
  // the broker was still working may have filled more since).
  const double new_qty = reply.filled_quantity - order.filled_quantity;
  if (new_qty > 0) {
    const double new_price =
        (reply.filled_quantity * reply.fill_price - order.filled_quantity * order.fill_price) / new_qty;
    book_.apply_fill(order.instrument, order.side, new_qty, new_price);
    if (!order.strategy.empty()) {
      group_books_[order.strategy].apply_fill(order.instrument, order.side, new_qty, new_price);
      ++counters_.groups[order.strategy].fills;
      known_[order.strategy].insert(order.instrument);
    }
  }
  count_outcome(order, reply, now, out);
  if (source == ReplySource::round_trip && new_qty > 0 && order.causation_ts_ns > 0) {
    tick_to_fill_.record(now - order.causation_ts_ns);
    tick_to_fill_seconds_.observe(static_cast<double>(now - order.causation_ts_ns) / 1e9);
  }

  auto ev = event_of(order, reply.status, now);
  ev.order_id = reply.order_id;
  ev.filled_quantity = reply.filled_quantity;
  ev.fill_price = reply.fill_price;
  ev.reason = reply.reason;
  out.items.emplace_back(std::move(ev));
  // After the event: a subscriber adding the event's fill to the last report
  // then takes this one, which includes it.
  if (new_qty > 0 && !order.strategy.empty())
    out.items.emplace_back(report(order.strategy, order.instrument));
  return !proto::is_final(reply.status);
}

template <class Persist>
bool ExecutionDesk::apply_change(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t now,
                                 ReplySource source, Outbox& out, Persist&& persist, Change& change) {
  change = Change::not_news;
  const News news = judge(order, reply);
  if (news == News::none) return !proto::is_final(order.status);
  // Unrecorded, nothing of it is applied: the row stays as it was and
  // reconciliation asks the broker again once the store can write.
  const auto letter = news == News::change ? expiry_letter(order, reply, now) : std::nullopt;
  if (!stored("record an order's outcome", [&] { persist(letter ? &*letter : nullptr); })) {
    change = Change::failed;
    return true;
  }
  change = Change::applied;
  return take_effects(order, reply, now, source, news, out);
}

std::optional<OutcomeLetter> ExecutionDesk::expiry_letter(const OrderRecord& order,
                                                          const proto::OrderReply& reply, std::int64_t now) {
  if (reply.status != proto::OrderStatus::rejected || !proto::is_expiry_refusal(reply)) return std::nullopt;
  return OutcomeLetter{"expired", "order " + order.client_order_id + " refused: " + reply.reason,
                       std::string(encoder_.encode(request_of(order, now))), order.signal_id, now};
}

void ExecutionDesk::count_outcome(const OrderRecord& order, const proto::OrderReply& reply, std::int64_t now,
                                  Outbox& out) {
  switch (reply.status) {
    case proto::OrderStatus::filled:
      ++counters_.fills;
      ++counters_.fills_by_instrument[order.instrument];
      break;
    case proto::OrderStatus::partially_filled:
      ++counters_.partial_fills;
      break;
    case proto::OrderStatus::canceled:
      ++counters_.canceled;
      if (reply.filled_quantity > 0) ++counters_.partial_fills;  // an IOC order's rest canceled
      break;
    case proto::OrderStatus::expired:
      ++counters_.expired_at_broker;
      break;
    case proto::OrderStatus::rejected:
      ++counters_.broker_rejects;
      if (proto::is_expiry_refusal(reply)) {
        // Its deadline passed before it could reach the broker (an order
        // that waited on a frozen dll_gateway): accounted as expired.
        count_rejected("expired");
        out.items.emplace_back(*expiry_letter(order, reply, now));
      }
      break;
    default:
      break;
  }
}

bool ExecutionDesk::apply_reply(const OrderRecord& order, const proto::OrderReply& reply,
                                std::int64_t received_ns, ReplySource source, Outbox& out) {
  Change change = Change::not_news;
  return apply_change(
      order, reply, received_ns, source, out,
      [&](const OutcomeLetter* letter) {
        store_.record_outcome(order.client_order_id, reply, received_ns, letter);
      },
      change);
}

void ExecutionDesk::apply_replies(std::span<const AnsweredOrder> answers, ReplySource source, Outbox& out) {
  if (answers.size() == 1) {
    apply_reply(answers[0].order, answers[0].reply, answers[0].received_ns, source, out);
    return;
  }
  news_.clear();
  try {
    store_.begin_batch();
    for (const auto& a : answers) {
      news_.push_back(judge(a.order, a.reply));
      if (news_.back() == News::none) continue;
      const auto letter =
          news_.back() == News::change ? expiry_letter(a.order, a.reply, a.received_ns) : std::nullopt;
      store_.record_outcome(a.order.client_order_id, a.reply, a.received_ns, letter ? &*letter : nullptr);
    }
    store_.commit_batch();
  } catch (const StoreError& e) {
    // None of them is recorded, so none is applied: each order stays as it
    // was and reconciliation asks the broker again once the store writes.
    const int err = store_.last_errno();  // before the rollback clears it
    store_.abort_batch();
    if (on_store_failed_) on_store_failed_("record the answers of several orders", e, err);
    return;
  }
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (news_[i] == News::none) continue;
    take_effects(answers[i].order, answers[i].reply, answers[i].received_ns, source, news_[i], out);
  }
}

ReportResult ExecutionDesk::apply_report(const proto::ExecutionReport& r, std::int64_t received_ns,
                                         Outbox& out) {
  // The usual report repeats an answer just recorded: judged against the
  // final order as recorded, without a read of the store.
  if (const FinalOrder* final = finals_.find(r.client_order_id)) {
    proto::OrderReply news;  // what judge() reads of the report: no copies of its strings
    news.status = r.status;
    news.filled_quantity = r.filled_quantity;
    const OrderFacts recorded{r.client_order_id, OrderState::done, final->status, final->quantity,
                              final->filled_quantity};
    if (judge(recorded, news) == News::none) {
      ++counters_.reports_known;
      return ReportResult::known;
    }
    finals_.forget(r.client_order_id);  // news about a final order: the store's row decides
  }
  std::optional<OrderRecord> order;
  if (!stored("read the order of a report", [&] { order = store_.find_order(r.client_order_id); }))
    return ReportResult::failed;
  if (!order) {
    ++counters_.reports_unknown_order;
    if (std::uint64_t suppressed = 0;
        limiter_.allow("report_unknown_order", clock_.monotonic_ns(), suppressed)) {
      spdlog::error(
          "execution report {}:{} for {}, an order this executor never placed: recorded, not applied ({} "
          "more "
          "since the last line)",
          r.stream, r.seq, r.client_order_id, suppressed);
    }
    return ReportResult::known;
  }
  const proto::OrderReply reply = reply_of(r, *order);
  Change change = Change::not_news;
  apply_change(
      *order, reply, received_ns, ReplySource::report, out,
      [&](const OutcomeLetter* letter) { store_.record_report(r, true, &reply, received_ns, letter); },
      change);
  switch (change) {
    case Change::failed:
      return ReportResult::failed;
    case Change::applied:
      ++counters_.reports_applied;
      if (proto::is_final(reply.status) && order->cancel == CancelState::requested) cancel_settled(*order);
      return ReportResult::applied;
    case Change::not_news:
      break;
  }
  // Not news (an answer brought it first) or refused by the state machine.
  ++counters_.reports_known;
  return ReportResult::known;
}

void ExecutionDesk::ack_cancel(const proto::CancelRequest& request, proto::AckStatus status,
                               std::string_view reason, Outbox& out) const {
  Outbox::Ack a;
  a.topic = proto::ack_topic(request.strategy, request.instance);
  a.ack.signal_id = request.signal_id;
  a.ack.status = status;
  a.ack.reason = std::string(reason);
  a.ack.ts_ns = clock_.now_ns();
  a.ack.cancel = true;
  out.items.emplace_back(std::move(a));
}

CancelDecision ExecutionDesk::request_cancel(const proto::CancelRequest& request, Outbox& out) {
  CancelDecision d;
  const auto now = clock_.now_ns();
  std::optional<OrderRecord> order;
  if (!stored("read the order of a cancel",
              [&] { order = store_.find_order(client_order_id(request.signal_id)); })) {
    d.stored = false;
    return d;
  }
  auto refuse = [&](std::string reason, bool dead_letter, std::string detail) {
    d.ack = proto::AckStatus::rejected;
    d.reason = std::move(reason);
    ++counters_.cancels_refused[d.reason];
    if (dead_letter)
      out.items.emplace_back(
          Outbox::DeadLetter{"cancel_refused", detail, std::string(encoder_.encode(request))});
    ack_cancel(request, d.ack, d.reason + ": " + detail, out);
    return d;
  };
  if (!order) return refuse("unknown_order", true, "no order for signal " + request.signal_id);
  if (order->strategy != request.strategy)
    return refuse("not_owner", true,
                  "signal " + request.signal_id + " is group " + order->strategy + "'s, not " +
                      request.strategy + "'s");
  if (order->cancel != CancelState::none) {
    ++counters_.cancel_duplicates;
    d.ack = proto::AckStatus::duplicate;
    ack_cancel(request, d.ack, "", out);
    return d;
  }
  if (proto::is_final(order->status))
    return refuse("order_final", false,
                  "the order is already " + std::string(proto::to_string(order->status)));
  const std::string reason =
      request.reason.empty() ? std::string("canceled by the strategy") : request.reason;
  if (order->state == OrderState::held) {
    // It never left the executor: canceled here, no broker involved.
    proto::OrderReply outcome;
    outcome.client_order_id = order->client_order_id;
    outcome.status = proto::OrderStatus::canceled;
    outcome.reason = "canceled before it was sent: " + reason;
    outcome.broker_ts_ns = now;
    if (!stored("cancel a held order", [&] {
          store_.record_outcome(order->client_order_id, outcome, now);
          store_.set_cancel(order->client_order_id, CancelState::done, reason, now);
        })) {
      d.stored = false;
      return d;
    }
    --held_;
    open_.remove(order->client_order_id);
    ++counters_.cancel_requests;
    ++counters_.canceled;
    ack_cancel(request, proto::AckStatus::accepted, "", out);
    auto ev = event_of(*order, proto::OrderStatus::canceled, now);
    ev.reason = outcome.reason;
    out.items.emplace_back(std::move(ev));
    return d;
  }
  if (!stored("record a cancel request",
              [&] { store_.set_cancel(order->client_order_id, CancelState::requested, reason, now); })) {
    d.stored = false;
    return d;
  }
  ++counters_.cancel_requests;
  ack_cancel(request, proto::AckStatus::accepted, "", out);
  order->cancel = CancelState::requested;
  order->cancel_reason = reason;
  d.send_now = order->working();
  d.order = std::move(order);
  return d;
}

bool ExecutionDesk::request_cancel(const OrderRecord& order, std::string_view reason) {
  return stored("record a cancel request", [&] {
    store_.set_cancel(order.client_order_id, CancelState::requested, reason, clock_.now_ns());
  });
}

void ExecutionDesk::apply_cancel_answer(const OrderRecord& order, const proto::OrderReply& reply,
                                        Outbox& out) {
  if (reply.status == proto::OrderStatus::unknown)
    return;  // not settled: sent again later (once at the broker)
  apply_reply(order, reply, clock_.now_ns(), ReplySource::cancel, out);
  cancel_settled(order);
}

void ExecutionDesk::cancel_settled(const OrderRecord& order) {
  stored("settle a cancel", [&] {
    store_.set_cancel(order.client_order_id, CancelState::done, order.cancel_reason, clock_.now_ns());
  });
}

std::string_view to_string(OrdersCheck c) noexcept {
  switch (c) {
    case OrdersCheck::pending:
      return "pending";
    case OrdersCheck::matched:
      return "matched";
    case OrdersCheck::mismatch:
      return "mismatch";
    case OrdersCheck::unavailable:
      return "unavailable";
  }
  return "?";
}

void ExecutionDesk::compare_open_orders(const std::vector<std::string>& unknown) {
  unknown_open_orders_ = unknown;
  if (unknown.empty()) {
    orders_check_ = OrdersCheck::matched;
    spdlog::info("open orders agree with the broker's");
    return;
  }
  orders_check_ = OrdersCheck::mismatch;
  for (const auto& id : unknown)
    spdlog::critical("OPEN ORDER MISMATCH: {} is open at the broker but not a working order of this executor",
                     id);
  spdlog::critical(
      "new signals are refused (open_orders_mismatch) until the orders are settled by hand (cancel them at "
      "the broker), the executor restarted and trading resumed (tpctl resume)");
  escalate(
      proto::TradingState::halted,
      fmt::format("open orders mismatch at start: {} open at the broker unknown to the executor, first {}",
                  unknown.size(), unknown.front()));
}

void ExecutionDesk::open_orders_unavailable(std::string_view reason) {
  orders_check_ = OrdersCheck::unavailable;
  spdlog::warn("open orders not checked: {}", reason);
}

proto::StrategyPosition ExecutionDesk::report(std::string_view group, std::string_view instrument) const {
  proto::StrategyPosition p;
  p.strategy = std::string(group);
  p.instrument = std::string(instrument);
  const auto it = group_books_.find(group);
  p.quantity = it == group_books_.end() ? 0.0 : it->second.position(instrument);
  p.ts_ns = clock_.now_ns();
  return p;
}

std::vector<proto::StrategyPosition> ExecutionDesk::position_reports() const {
  std::vector<proto::StrategyPosition> reports;
  for (const auto& [group, instruments] : known_) {
    for (const auto& sym : instruments) reports.push_back(report(group, sym));
  }
  return reports;
}

std::set<std::string, std::less<>> ExecutionDesk::instruments_to_check() const {
  std::set<std::string, std::less<>> instruments;
  for (const auto& i : config_.instruments) instruments.insert(i.symbol);
  for (const auto& [sym, p] : book_.all()) instruments.insert(sym);
  return instruments;
}

void ExecutionDesk::positions_unavailable(std::string_view instrument, std::string_view reason) {
  position_check_ = PositionCheck::unavailable;
  spdlog::warn("positions not checked: the broker could not tell its {} position ({})", instrument, reason);
}

void ExecutionDesk::compare_positions(const std::map<std::string, double, std::less<>>& broker) {
  std::map<std::string, Mismatch, std::less<>> mismatches;
  for (const auto& [sym, quantity] : broker) {
    if (!same_position(book_.position(sym), quantity))
      mismatches.emplace(sym, Mismatch{book_.position(sym), quantity});
  }
  if (mismatches.empty()) {
    position_check_ = PositionCheck::matched;
    suspected_.clear();
    spdlog::info("positions agree with the broker's ({} instruments)", broker.size());
    return;
  }
  // A resting order may fill at the broker between the last report fetched
  // and the broker's answer: its report is on its way, and the comparison
  // differs by that fill. A real mismatch differs by the same amount at the
  // next pass (after the reports caught up); a fill in flight does not.
  // Only the instruments whose difference the previous pass saw too count.
  std::map<std::string, double, std::less<>> seen;
  for (const auto& [sym, m] : mismatches) seen.emplace(sym, m.broker - m.executor);
  std::erase_if(mismatches, [&](const auto& entry) {
    const auto it = suspected_.find(entry.first);
    return it == suspected_.end() || !same_position(it->second, seen.at(entry.first));
  });
  if (mismatches.empty()) {
    for (const auto& [sym, difference] : seen)
      spdlog::warn(
          "positions differ for {}: executor {} vs broker {} (difference {}); asking again once the "
          "reports caught up",
          sym, book_.position(sym), broker.at(sym), difference);
    suspected_ = std::move(seen);
    return;
  }
  suspected_.clear();
  for (const auto& [sym, m] : mismatches) {
    spdlog::critical("POSITION MISMATCH {}: executor {} vs broker {} (difference {})", sym, m.executor,
                     m.broker, m.broker - m.executor);
  }
  if (config_.executor.adopt_broker_positions) {
    for (const auto& [sym, m] : mismatches) book_.adopt(sym, m.broker);
    position_check_ = PositionCheck::adopted;
    spdlog::warn("adopted the broker's figures for {} instrument(s) (executor.adopt_broker_positions = true)",
                 mismatches.size());
  } else {
    position_check_ = PositionCheck::mismatch;
    spdlog::critical(
        "new signals are refused (position_mismatch) until the books are reconciled by hand (or "
        "executor.adopt_broker_positions = true takes the broker's figures at the next start) and trading "
        "resumed (tpctl resume)");
    const auto& [sym, m] = *mismatches.begin();
    escalate(
        proto::TradingState::halted,
        fmt::format("position mismatch at start: {} executor {} vs broker {}{}", sym, m.executor, m.broker,
                    mismatches.size() > 1 ? fmt::format(" (+{} more)", mismatches.size() - 1) : ""));
  }
  mismatches_ = std::move(mismatches);
}

}  // namespace tp::executor

namespace tp::executor {

bool ExecutionDesk::store_trading(const TradingStatus& next, std::string_view command) {
  if (!stored("store the trading state", [&] { store_.save_trading_status(next, command, clock_.now_ns()); }))
    return false;
  if (next.state != trading_.state || next.flatten_pending != trading_.flatten_pending) {
    const auto level =
        next.state == proto::TradingState::halted ? spdlog::level::critical : spdlog::level::warn;
    spdlog::log(level, "trading {} -> {}{} ({})", proto::to_string(trading_.state),
                proto::to_string(next.state), next.flatten_pending ? ", flattening" : "", next.cause);
  }
  if (next.flatten_pending && !trading_.flatten_pending) flatten_rounds_ = 0;
  trading_ = next;
  return true;
}

proto::ControlReply ExecutionDesk::command(const proto::ControlRequest& request) {
  ++counters_.control_commands;
  if (request.command != proto::ControlCommand::status) {
    const auto next =
        after_command(trading_, request.command, request.reason, request.sent_by, clock_.now_ns());
    if (!store_trading(next, proto::to_string(request.command)))
      return control_reply("not applied: the trading state could not be stored (see the executor's log)");
  }
  return control_reply();
}

proto::ControlReply ExecutionDesk::control_reply(std::string_view refusal) const {
  proto::ControlReply reply;
  reply.ok = refusal.empty();
  reply.detail = std::string(refusal);
  reply.state = trading_.state;
  reply.cause = trading_.cause;
  reply.since_ns = trading_.since_ns;
  reply.flatten_pending = trading_.flatten_pending;
  reply.open_orders = static_cast<std::uint32_t>(open_.count());
  reply.ts_ns = clock_.now_ns();
  return reply;
}

bool ExecutionDesk::escalate(proto::TradingState at_least, std::string_view cause) {
  const auto next = tp::executor::escalate(trading_, at_least, cause, clock_.now_ns());
  if (next == trading_) return true;
  if (store_trading(next, "AUTO")) return true;
  // Not stored: it holds for this run all the same (fail closed); the
  // trigger fires again after a restart.
  trading_ = next;
  return false;
}

std::size_t ExecutionDesk::cancel_all(Outbox& out) {
  std::size_t changed = 0;
  std::vector<OrderRecord> working;
  std::vector<OrderRecord> held;
  if (!stored("read the orders to cancel", [&] {
        working = store_.working_orders();
        held = store_.held_orders();
      }))
    return 0;
  const std::string why = "trading " + std::string(proto::to_string(trading_.state)) + ": " + trading_.cause;
  for (const auto& order : working) {
    if (order.cancel != CancelState::none) continue;
    if (request_cancel(order, why)) ++changed;
  }
  const bool halted = trading_.state == proto::TradingState::halted;
  const std::string reason = halted ? "trading_halted" : "flattening";
  for (const auto& order : held) {
    if (!halted && is_closing_order(order.signal_id)) continue;  // the flatten's own
    if (give_up(order, out, reason, reason + ": held when trading changed (" + why + "); never sent",
                "trading changed (" + why + ")"))
      ++changed;
  }
  return changed;
}

bool is_closing_order(std::string_view signal_id) noexcept {
  return signal_id.starts_with(closing_order_prefix);
}

std::size_t ExecutionDesk::flatten(const Marks& marks, Outbox& out) {
  if (!trading_.flatten_pending) return 0;
  if (open_.count() > 0) return 0;  // cancels and earlier closing orders first
  const auto now = clock_.now_ns();
  std::vector<proto::TradingSignal> closing;
  std::size_t stuck = 0;  // positions no closing order can be made for
  for (const auto& [instrument, p] : book_.all()) {
    const double net = p.position;
    if (same_position(net, 0)) continue;
    const double price = mark_of(marks, instrument).value_or(p.last_price);
    if (!(price > 0)) {
      spdlog::error("flatten: no price for {} (no tick, no fill): its position {} is left open", instrument,
                    net);
      ++stuck;
      continue;
    }
    // The account's position is closed, not each group's: groups holding
    // opposite positions offset each other (and stay so in their books)
    // instead of each paying to close against the market. Each closing order
    // belongs to a group on the net's side and shrinks that group's position
    // as much as the instrument's. Larger positions close over several
    // rounds, each order within the per-order limits.
    std::vector<std::pair<double, std::string>> holders;  // (size on the net's side, group)
    for (const auto& [group, book] : group_books_) {
      const double g = book.position(instrument);
      if (!same_position(g, 0) && (g > 0) == (net > 0)) holders.emplace_back(std::abs(g), group);
    }
    std::sort(holders.rbegin(), holders.rend());
    // Whole units: max_notional / price times the price again may come out
    // an ulp above max_notional, which check_risk refuses.
    const double cap =
        std::min(config_.risk.max_order_quantity, std::floor(config_.risk.max_notional / price));
    double left = std::abs(net);
    double held_by_groups = 0;
    for (const auto& [size, group] : holders) {
      held_by_groups += size;
      if (same_position(left, 0)) continue;
      proto::TradingSignal s;
      s.signal_id = fmt::format("{}{}.{}.{}.{}", closing_order_prefix, group, instrument, now / ns_per_ms,
                                flatten_rounds_);
      s.strategy = group;
      s.instance = 0;
      s.instrument = instrument;
      s.action = net > 0 ? proto::Side::sell : proto::Side::buy;
      s.quantity = std::min({left, size, cap});
      s.trigger_price = price;
      s.confidence = 1;
      s.created_ts_ns = now;
      s.expires_ts_ns = now + closing_order_ttl_ns;
      left -= s.quantity;
      closing.push_back(std::move(s));
    }
    if (held_by_groups < std::abs(net) && !same_position(held_by_groups, std::abs(net))) {
      // Adopted from the broker (executor.adopt_broker_positions): no group
      // holds it, so no closing order can be booked to one.
      spdlog::error(
          "flatten: {} {} of the {} position is held by no strategy group (adopted from the broker); "
          "close it at the broker by hand",
          std::abs(net) - held_by_groups, instrument, net);
      if (closing.empty() || closing.back().instrument != instrument) ++stuck;
    }
  }
  if (closing.empty() || flatten_rounds_ >= max_flatten_rounds) {
    auto done = trading_;
    done.flatten_pending = false;
    const bool flat = closing.empty() && stuck == 0;
    if (!flat)
      spdlog::error(
          "flatten: positions still open after {} rounds of closing orders; giving up (see positions in "
          "executor.stats.json)",
          flatten_rounds_);
    store_trading(done, flat ? "FLATTENED" : "FLATTEN_GAVE_UP");
    return 0;
  }
  ++flatten_rounds_;
  // Decided as one batch and recorded HELD: reconciliation's release of held
  // orders sends them, the way any order waiting for the broker goes out.
  for (auto& s : closing) {
    next_signal() = s;
    decide(encoder_.encode(s), /*broker_closed=*/false, Origin::executor);
  }
  commit();
  publish(out);
  return closing.size();
}

}  // namespace tp::executor
