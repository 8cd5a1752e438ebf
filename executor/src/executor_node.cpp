#include "executor/executor_node.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/disk_watch.hpp"
#include "common/stats.hpp"
#include "common/stop.hpp"
#include "common/zmq_util.hpp"
#include "executor/decision.hpp"

namespace tp::executor {
namespace {

// The request that places a recorded order (a retry or a resend is the same
// request: same client order id).
proto::OrderRequest request_of(const OrderRecord& order, std::int64_t now_ns) {
  proto::OrderRequest req;
  req.client_order_id = order.client_order_id;
  req.signal_id = order.signal_id;
  req.instrument = order.instrument;
  req.side = order.side;
  req.quantity = order.quantity;
  req.price_hint = order.price_hint;
  req.sent_ts_ns = now_ns;
  req.expires_ts_ns = order.expires_ns;  // dll_gateway makes the last check
  return req;
}

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

constexpr std::size_t max_signals_per_wakeup = 256;  // then timers get a turn
// Signals accepted under one commit before their orders go out: bounds the
// wait of the last one's order behind the others' acceptance.
constexpr std::size_t max_signals_per_batch = 64;
constexpr std::int64_t max_poll_ms = 100;
// Queues in bytes = messages x their largest size. Signals: 64 per
// connected strategy x 64 KiB (ZMQ_MAXMSGSIZE) = 4 MiB at most while the
// loop is busy (a batch is 64 signals); a strategy keeps the rest in its own
// PUSH queue. Events and
// acks: 10,000 per subscriber x at most ~1.6 KiB (ids <= 128 B, reason <=
// 1 KiB) = 16 MiB for a subscriber that stalls, ~2 MB for typical ~200 B
// events; beyond that PUB drops for that subscriber only (an ack it misses
// is recovered by the strategy's resend, answered DUPLICATE).
constexpr int signal_rcvhwm = 64;
constexpr int event_sndhwm = 10000;

[[noreturn]] void crash(const char* where) {
  // Fault-injection only: die the way kill -9 would, with no cleanup.
  spdlog::critical("TP_CRASH_POINT={}: aborting", where);
  std::abort();
}

}  // namespace

std::string_view to_string(ExecutorNode::PositionCheck c) noexcept {
  switch (c) {
    case ExecutorNode::PositionCheck::pending: return "pending";
    case ExecutorNode::PositionCheck::matched: return "matched";
    case ExecutorNode::PositionCheck::mismatch: return "mismatch";
    case ExecutorNode::PositionCheck::adopted: return "adopted";
    case ExecutorNode::PositionCheck::unavailable: return "unavailable";
  }
  return "?";
}

CrashPoint crash_point_from_env() {
  const char* v = std::getenv("TP_CRASH_POINT");
  if (v == nullptr) return CrashPoint::none;
  std::string_view s(v);
  if (s == "after_intent") return CrashPoint::after_intent;
  if (s == "after_send") return CrashPoint::after_send;
  return CrashPoint::none;
}

ExecutorNode::ExecutorNode(zmq::context_t& ctx, const Config& config, const Clock& clock,
                           CrashPoint crash_point, const Security& security)
    : config_(config),
      clock_(clock),
      crash_point_(crash_point),
      stats_path_(config.run_path("", "executor.stats.json")),
      store_(config.run_path(config.executor.db_path, "executor.db"), clock.now_ns()),
      book_(store_.rebuild_positions()),
      signals_(make_socket(ctx, zmq::socket_type::pull, SocketOptions{.rcvhwm = signal_rcvhwm})),
      signals_monitor_(ctx, signals_),
      events_(make_socket(ctx, zmq::socket_type::pub, SocketOptions{.linger_ms = 1000, .sndhwm = event_sndhwm})),
      orders_(ctx, config.endpoints.orders,
              OrderClientOptions{.timeout_ms = std::max(1, config.executor.order_timeout_ms),
                                 .retries = std::max(0, config.executor.order_retries),
                                 .security = &security,
                                 .stopping = [this] { return stopping(); },
                                 .while_waiting = [this] { heartbeat(); }}),
      dead_letters_(ctx, config.endpoints.dead_letters, "executor", clock, security),
      disk_({config.run.dir, std::filesystem::path(store_.path()).parent_path().string()},
            config.run.min_free_bytes),
      breaker_(BreakerOptions{.failure_threshold = config.executor.breaker_failures,
                              .cooling_ns = std::int64_t{config.executor.breaker_cooling_ms} * ns_per_ms},
               clock) {
  held_ = store_.count_in_state(OrderState::held);
  last_broker_exchange_ns_ = monotonic_ns();  // the first idle probe comes liveness_idle_ns after start
  disk_.poll(monotonic_ns());
  security.bind(signals_, config.endpoints.signals);
  security.bind(events_, config.endpoints.order_events);
}

int ExecutorNode::run() {
  // Stats first: they tell the supervisor this process is up even when the
  // start-up reconcile waits on an absent dll_gateway.
  stats_every_ns_ = std::int64_t{std::max(1, config_.run.stats_interval_ms)} * ns_per_ms;
  write_stats();
  next_stats_ns_ = monotonic_ns() + stats_every_ns_;
  reconcile();
  settle();
  std::int64_t next_reconcile = monotonic_ns() + reconcile_interval_ns;
  write_stats();
  next_stats_ns_ = monotonic_ns() + stats_every_ns_;

  while (!stopping()) {
    const std::int64_t now = monotonic_ns();
    const std::int64_t until_timer = std::min(next_stats_ns_, next_reconcile) - now;
    const std::int64_t timeout_ms = std::clamp<std::int64_t>((until_timer + ns_per_ms - 1) / ns_per_ms, 0, max_poll_ms);
    // While the store cannot write, signals wait in their queues (and in the
    // strategies' journals) instead of being read and left unacked.
    zmq::pollitem_t item{signals_.handle(), 0, ZMQ_POLLIN, 0};
    const int items = storage_paused() ? 0 : 1;
    try {
      zmq::poll(&item, items, std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      continue;  // SIGTERM/SIGINT: the loop condition sees the flag
    }
    if (items == 1 && (item.revents & ZMQ_POLLIN)) drain_signals(max_signals_per_wakeup);
    signals_monitor_.drain();
    const std::int64_t after = monotonic_ns();
    if (after >= next_reconcile) {
      reconcile();
      settle();
      next_reconcile = monotonic_ns() + reconcile_interval_ns;
    }
    heartbeat();
  }
  settle();  // an answer that came is recorded, not left to reconciliation
  write_stats();
  return 0;
}

// Each batch has two phases. Accept: every waiting signal (up to
// max_signals_per_batch) is decoded and decided, and the accepted ones'
// signal rows and order intents (and the rejected ones' rows) are written in
// ONE transaction; only after its commit are the acks (an ack means durably
// recorded), NEW events and dead letters published. Send: the batch's orders
// go out one by one (Lazy Pirate), each intent already durable. So a burst
// waits for one commit instead of a commit plus an order round trip each.
void ExecutorNode::drain_signals(std::size_t limit) {
  // A crash point reproduces the moment of one order: one signal per batch.
  const std::size_t per_batch = crash_point_ == CrashPoint::none ? max_signals_per_batch : 1;
  if (slots_.size() < per_batch) slots_.resize(per_batch);
  std::size_t received = 0;
  while (received < limit && !storage_paused()) {
    bool more = true;
    std::size_t used = 0;
    try {
      used = accept_batch(std::min(per_batch, limit - received), received, more);
    } catch (const StoreError& e) {
      // Nothing of the batch is kept and nothing of it was published: no
      // ack, so every strategy resends, and the next batch is tried after
      // storage_retry_ns (a full disk is not a crash loop).
      const int err = store_.last_errno();  // before the rollback clears it
      store_.abort_batch();
      held_ = store_.count_in_state(OrderState::held);
      storage_failed("commit a batch of signals", e, err);
      return;
    }
    if (used > 0 && crash_point_ == CrashPoint::after_intent && slots_[0].verdict == Verdict::accept) {
      crash("after_intent");
    }
    for (std::size_t i = 0; i < used; ++i) publish_outcome(slots_[i]);
    for (std::size_t i = 0; i < used; ++i) {
      if (slots_[i].verdict == Verdict::accept && !slots_[i].hold) send_or_hold(slots_[i].order);
    }
    settle();  // the next batch's risk checks see every fill of this one
    if (!more) break;
  }
}

std::size_t ExecutorNode::accept_batch(std::size_t max_messages, std::size_t& received, bool& more) {
  std::size_t used = 0;
  for (std::size_t taken = 0; taken < max_messages; ++taken) {
    std::size_t total = 0;
    if (!recv_message(signals_, frames_, max_kept_frames, total)) {
      more = false;
      break;
    }
    ++received;
    if (!take_signal(total, slots_[used])) continue;
    if (!store_.in_batch()) store_.begin_batch();
    Slot& slot = slots_[used];
    // A signal id seen earlier in this batch is a duplicate too (the
    // store also sees the batch's uncommitted rows; this says it plainly).
    bool in_batch = false;
    for (std::size_t i = 0; i < used && !in_batch; ++i) in_batch = slots_[i].signal.signal_id == slot.signal.signal_id;
    if (in_batch) {
      slot.verdict = Verdict::duplicate;
    } else {
      decide_slot(slot);
    }
    ++used;
  }
  if (store_.in_batch()) {
    store_.commit_batch();
    failures_.recovered(store_.path());
  }
  return used;
}

bool ExecutorNode::take_signal(std::size_t total_frames, Slot& slot) {
  ++counters_.signals_received;
  if (total_frames != 1) {
    dead_letters_.send("bad_frames", fmt::format("expected 1 frame, got {}", total_frames),
                       join_frames(frames_, total_frames));
    return false;
  }
  if (auto err = decoder_.decode_into(bytes_of(frames_[0]), slot.signal)) {
    const auto reason = proto::to_string(err->code);
    dead_letters_.send(*err, view_of(frames_[0]));
    // A sender that can be named gets its refusal acked, so that it stops
    // resending; it is not recorded (there is no valid signal to record), so
    // a resend is refused and acked again.
    if (auto sender = decoder_.signal_sender(bytes_of(frames_[0]))) {
      publish_ack(*sender, proto::AckStatus::rejected, reason);
    }
    return false;
  }
  return true;
}

void ExecutorNode::count_rejected(std::string_view reason) {
  auto it = counters_.rejected.find(reason);
  if (it == counters_.rejected.end()) it = counters_.rejected.emplace(std::string(reason), 0).first;
  ++it->second;
}

void ExecutorNode::decide_slot(Slot& slot) {
  const auto& signal = slot.signal;
  // The batch's accepted orders have not been sent yet: the risk check takes
  // the worst position they could leave (each filled fully or not at all),
  // so that no limit is looser than when each order was settled before the
  // next signal was decided.
  double pending_buy = 0;
  double pending_sell = 0;
  for (const Slot* s = slots_.data(); s != &slot; ++s) {
    if (s->verdict != Verdict::accept || s->order.instrument != signal.instrument) continue;
    (s->order.side == proto::Side::buy ? pending_buy : pending_sell) += s->order.quantity;
  }
  const double filled = book_.position(signal.instrument);
  const double delta = signal.action == proto::Side::buy ? signal.quantity : -signal.quantity;
  const double high = filled + pending_buy;
  const double low = filled - pending_sell;
  const double worst = std::abs(high + delta) >= std::abs(low + delta) ? high : low;

  const bool seen = store_.find_signal(signal.signal_id).has_value();
  auto decision = decide(signal, seen, config_, worst, clock_);
  if (decision.verdict == Verdict::accept && position_check_ == PositionCheck::mismatch) {
    decision = {Verdict::reject, "position_mismatch",
                "the executor's positions differ from the broker's (see position_mismatches in executor.stats.json)"};
  }
  slot.verdict = decision.verdict;
  const auto now = clock_.now_ns();
  if (decision.verdict == Verdict::reject) {
    slot.reason = std::move(decision.reason);
    slot.detail = std::move(decision.detail);
    slot.payload.assign(view_of(frames_[0]));
    store_.record_rejected(signal, slot.reason + ": " + slot.detail, now);
    return;
  }
  if (decision.verdict != Verdict::accept) return;

  OrderRecord& order = slot.order;
  order = intent_for(signal, now);
  // While the breaker is not closed (or older orders are still held, which
  // keeps the orders in their arrival order) the order is HELD: recorded and
  // acked, sent by reconcile() once dll_gateway answers again.
  slot.hold = held_ > 0 || breaker_.state() != BreakerState::closed;
  if (slot.hold) order.state = OrderState::held;
  // Write-ahead: the signal and the intent are durable (at the batch's
  // commit) before anything leaves.
  if (!store_.record_accepted(signal, order, now)) {
    slot.verdict = Verdict::duplicate;
    return;
  }
  if (slot.hold) {
    ++held_;
    ++counters_.orders_held;
  }
}

void ExecutorNode::publish_outcome(const Slot& slot) {
  const auto& signal = slot.signal;
  switch (slot.verdict) {
    case Verdict::duplicate:
      ++counters_.duplicates;
      publish_ack(signal, proto::AckStatus::duplicate, "");
      return;
    case Verdict::reject:
      reject(signal, slot.reason, slot.detail, slot.payload);
      return;
    case Verdict::accept:
      break;
  }
  const auto& order = slot.order;
  ++counters_.signals_accepted;
  publish_ack(signal, proto::AckStatus::accepted, "");

  publish_event(event_of(order, proto::OrderStatus::new_order, order.created_ns));
}

void ExecutorNode::send_or_hold(OrderRecord& order) {
  // The breaker may have opened while earlier orders of the batch went out
  // (or one of them was held): this one, never handed to the order socket,
  // is held as it would have been had it arrived a moment later.
  if (held_ > 0 || breaker_.state() != BreakerState::closed) {
    // Unless HELD is durable it stays INTENT, never sent: reconciliation
    // then asks about it and sends it (same id).
    if (!stored("hold an order", [&] { store_.set_state(order.client_order_id, OrderState::held, clock_.now_ns()); }))
      return;
    order.state = OrderState::held;
    ++held_;
    ++counters_.orders_held;
    return;
  }
  send_order(order);
}

void ExecutorNode::reject(const proto::TradingSignal& signal, const std::string& reason, const std::string& detail,
                          std::string_view payload) {
  // The signal's REJECTED row was written (and committed) with its batch.
  const auto now = clock_.now_ns();
  count_rejected(reason);
  dead_letters_.send(reason, detail, payload);

  proto::OrderEvent ev;
  ev.client_order_id = client_order_id(signal.signal_id).substr(0, proto::max_id_length);
  ev.signal_id = signal.signal_id;
  ev.instrument = signal.instrument;
  ev.side = signal.action;
  ev.status = proto::OrderStatus::rejected;
  ev.quantity = signal.quantity;
  ev.reason = reason + ": " + detail;
  ev.created_ts_ns = now;
  ev.event_ts_ns = now;
  ev.causation_ts_ns = signal.causation_ts_ns;
  publish_event(ev);
  publish_ack(signal, proto::AckStatus::rejected, reason);
}

bool ExecutorNode::send_order(const OrderRecord& order) {
  const auto req = request_of(order, clock_.now_ns());
  ++counters_.orders_sent;
  auto reply = orders_.request(req, [this] { settle(); });
  settle();  // in case the request never went out
  broker_answered(reply.has_value());
  if (!reply) {
    ++counters_.order_timeouts;
    // Left INTENT when this fails: reconciled the same way.
    stored("mark an order unknown",
           [&] { store_.set_state(order.client_order_id, OrderState::unknown, clock_.now_ns()); });
    return false;  // reconcile() asks again later, with the same id
  }
  if (crash_point_ == CrashPoint::after_send) crash("after_send");
  unsettled_.emplace(Answered{order, std::move(*reply), clock_.now_ns()});
  return true;
}

void ExecutorNode::settle() {
  if (!unsettled_) return;
  Answered a = std::move(*unsettled_);
  unsettled_.reset();
  apply_reply(a.order, a.reply, true, a.received_ns);
}

bool ExecutorNode::breaker_allows() {
  const auto before = breaker_.state();
  const bool allowed = breaker_.allow();
  log_breaker(before);
  return allowed;
}

void ExecutorNode::broker_answered(bool answered) {
  const auto before = breaker_.state();
  if (answered)
    breaker_.on_success();
  else
    breaker_.on_failure();
  broker_alive_ = answered;
  last_broker_exchange_ns_ = monotonic_ns();
  log_breaker(before);
}

void ExecutorNode::log_breaker(BreakerState before) {
  const auto now = breaker_.state();
  if (now == before) return;
  switch (now) {
    case BreakerState::open:
      spdlog::warn("circuit breaker {} -> open (opened {} times): dll_gateway did not answer; new orders are held, "
                   "next probe in {} ms",
                   to_string(before), breaker_.opens(), config_.executor.breaker_cooling_ms);
      break;
    case BreakerState::half_open:
      spdlog::info("circuit breaker open -> half_open: probing dll_gateway");
      break;
    case BreakerState::closed:
      spdlog::info("circuit breaker {} -> closed: dll_gateway answers; {} held order(s) to send", to_string(before),
                   held_);
      break;
  }
}

void ExecutorNode::apply_reply(const OrderRecord& order, const proto::OrderReply& reply, bool live,
                               std::int64_t received_ns) {
  const auto now = received_ns;
  const bool changed = reply.status != order.status || reply.filled_quantity != order.filled_quantity ||
                       order.state == OrderState::intent || order.state == OrderState::unknown;
  if (!changed) return;  // a working order asked about again: nothing new
  // Unrecorded, nothing of it is applied: the row stays as it was and
  // reconciliation asks the broker again once the store can write.
  if (!stored("record an order's outcome", [&] { store_.record_outcome(order.client_order_id, reply, now); })) return;

  // Only what is new since the stored outcome moves the position (an order
  // the broker was still working may have filled more since).
  const double new_qty = reply.filled_quantity - order.filled_quantity;
  if (new_qty > 0) {
    const double new_price =
        (reply.filled_quantity * reply.fill_price - order.filled_quantity * order.fill_price) / new_qty;
    book_.apply_fill(order.instrument, order.side, new_qty, new_price);
  }
  switch (reply.status) {
    case proto::OrderStatus::filled: ++counters_.fills; break;
    case proto::OrderStatus::partially_filled: ++counters_.partial_fills; break;
    case proto::OrderStatus::rejected:
      ++counters_.broker_rejects;
      if (proto::is_expiry_refusal(reply)) {
        // Its deadline passed before it could reach the broker (an order
        // that waited on a frozen dll_gateway): accounted as expired.
        count_rejected("expired");
        dead_letters_.send("expired", "order " + order.client_order_id + " refused: " + reply.reason,
                           encoder_.encode(request_of(order, now)));
      }
      break;
    default: break;
  }
  if (live && reply.filled_quantity > 0 && order.causation_ts_ns > 0) {
    tick_to_fill_.record(now - order.causation_ts_ns);
  }

  auto ev = event_of(order, reply.status, now);
  ev.order_id = reply.order_id;
  ev.filled_quantity = reply.filled_quantity;
  ev.fill_price = reply.fill_price;
  ev.reason = reply.reason;
  publish_event(ev);
}

void ExecutorNode::reconcile() {
  if (!breaker_allows()) return;  // open: nothing goes out before the cooling period ends
  const auto open = store_.open_orders();
  const bool probing = breaker_.state() == BreakerState::half_open;
  const bool idle = held_ == 0 && monotonic_ns() - last_broker_exchange_ns_ >= liveness_idle_ns;
  if (open.empty() && (probing || idle)) {
    // Nothing to ask about: the half-open probe, or the idle liveness check,
    // is a query for an id that never exists (one attempt, no retries).
    ++counters_.liveness_probes;
    auto reply = orders_.query(proto::OrderQuery{std::string(liveness_probe_id), clock_.now_ns()}, 0);
    broker_answered(reply.has_value());
    if (!reply) return;
  }
  for (const auto& order : open) {
    if (stopping()) return;
    proto::OrderQuery q{order.client_order_id, clock_.now_ns()};
    auto reply = orders_.query(q);
    broker_answered(reply.has_value());
    if (!reply) return;  // dll_gateway is away; the next pass tries again
    if (reply->status == proto::OrderStatus::unknown) {
      // It never reached the broker: send it now, under the same id, with
      // its deadline. An expired one is not given up here: a copy may still
      // be in flight to dll_gateway (an attempt that timed out), so the
      // decision is left to dll_gateway, which refuses it past the deadline
      // and stores that answer under the id; any later copy gets the same.
      if (!send_order(order)) return;
    } else {
      apply_reply(order, *reply, false, clock_.now_ns());
    }
  }
  if (held_ > 0) release_held();
  settle();
  if (position_check_ == PositionCheck::pending && held_ == 0 && store_.open_orders().empty()) check_positions();
}

void ExecutorNode::check_positions() {
  std::set<std::string, std::less<>> instruments;
  for (const auto& i : config_.instruments) instruments.insert(i.symbol);
  for (const auto& [sym, p] : book_.all()) instruments.insert(sym);
  std::map<std::string, Mismatch, std::less<>> mismatches;
  for (const auto& sym : instruments) {
    auto reply = orders_.position(proto::PositionQuery{sym, clock_.now_ns()});
    broker_answered(reply.has_value());
    if (!reply) return;  // dll_gateway is away: the next pass asks again
    if (!reply->known) {
      position_check_ = PositionCheck::unavailable;
      spdlog::warn("positions not checked: the broker could not tell its {} position ({})", sym, reply->reason);
      return;
    }
    if (!same_position(book_.position(sym), reply->quantity)) {
      mismatches.emplace(sym, Mismatch{book_.position(sym), reply->quantity});
    }
  }
  if (mismatches.empty()) {
    position_check_ = PositionCheck::matched;
    spdlog::info("positions agree with the broker's ({} instruments)", instruments.size());
    return;
  }
  for (const auto& [sym, m] : mismatches) {
    spdlog::critical("POSITION MISMATCH {}: executor {} vs broker {} (difference {})", sym, m.executor, m.broker,
                     m.broker - m.executor);
  }
  if (config_.executor.adopt_broker_positions) {
    for (const auto& [sym, m] : mismatches) book_.adopt(sym, m.broker);
    position_check_ = PositionCheck::adopted;
    spdlog::warn("adopted the broker's figures for {} instrument(s) (executor.adopt_broker_positions = true)",
                 mismatches.size());
  } else {
    position_check_ = PositionCheck::mismatch;
    spdlog::critical("new signals are refused (position_mismatch) until the books are reconciled by hand and the "
                     "executor restarted, or executor.adopt_broker_positions = true takes the broker's figures");
  }
  position_mismatches_ = std::move(mismatches);
}

bool ExecutorNode::release_held() {
  bool ok = true;
  for (auto order : store_.held_orders()) {
    if (stopping()) break;
    if (breaker_.state() != BreakerState::closed) {
      ok = false;
      break;
    }
    const auto now = clock_.now_ns();
    if (order.expires_ns > 0 && now >= order.expires_ns) {
      give_up_held(order);  // never sent, so it can be given up without asking the broker
      continue;
    }
    // INTENT is durable before the order can leave: from here on it is
    // reconciled (query first), never given up.
    if (!stored("release a held order", [&] { store_.set_state(order.client_order_id, OrderState::intent, now); })) {
      ok = false;
      break;
    }
    order.state = OrderState::intent;
    if (!send_order(order)) {
      ok = false;
      break;
    }
  }
  held_ = store_.count_in_state(OrderState::held);
  return ok;
}

void ExecutorNode::give_up_held(const OrderRecord& order) {
  const auto now = clock_.now_ns();
  proto::OrderReply outcome;
  outcome.client_order_id = order.client_order_id;
  outcome.status = proto::OrderStatus::rejected;
  outcome.reason = "expired: held while dll_gateway was unavailable; never sent";
  outcome.broker_ts_ns = now;
  if (!stored("give up a held order", [&] { store_.record_outcome(order.client_order_id, outcome, now); })) return;
  ++counters_.held_expired;
  count_rejected("expired");

  // The dead letter carries the order that was not sent (its signal_id names
  // the signal; the signal's own bytes are not kept).
  const auto req = request_of(order, now);
  dead_letters_.send("expired", "held order " + order.client_order_id + " not sent: its signal expired at " +
                                    std::to_string(order.expires_ns),
                     encoder_.encode(req));

  auto ev = event_of(order, proto::OrderStatus::rejected, now);
  ev.reason = outcome.reason;
  publish_event(ev);
}

void ExecutorNode::publish_ack(const proto::TradingSignal& signal, proto::AckStatus status, std::string_view reason) {
  proto::SignalAck ack;
  ack.signal_id = signal.signal_id;
  ack.status = status;
  ack.reason = std::string(reason);
  ack.ts_ns = clock_.now_ns();
  const auto topic = proto::ack_topic(signal.strategy, signal.instance);
  const auto payload = encoder_.encode(ack);
  events_.send(zmq::const_buffer(topic.data(), topic.size()), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  events_.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
}

void ExecutorNode::publish_event(const proto::OrderEvent& event) {
  const auto topic = proto::order_topic(event.instrument);
  const auto payload = encoder_.encode(event);
  events_.send(zmq::const_buffer(topic.data(), topic.size()), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  events_.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
}

std::string ExecutorNode::stats_json() {
  JsonObject rejected;
  for (const auto& [reason, n] : counters_.rejected) rejected.add(reason, n);
  JsonObject positions;
  for (const auto& [sym, p] : book_.all()) {
    positions.add(sym, JsonObject()
                           .add("position", p.position)
                           .add("avg_price", p.avg_price)
                           .add("realized_pnl", p.realized_pnl)
                           .add("last_price", p.last_price));
  }
  auto us = [this](double q) { return static_cast<double>(tick_to_fill_.percentile(q)) / 1000.0; };
  JsonObject latency;
  latency.add("p50", us(0.50)).add("p99", us(0.99)).add("p999", us(0.999)).add("count", tick_to_fill_.count());

  JsonObject mismatches;
  for (const auto& [sym, m] : position_mismatches_) {
    mismatches.add(sym, JsonObject().add("executor", m.executor).add("broker", m.broker));
  }

  JsonObject o;
  o.add("program", "executor")
      .add("pid", static_cast<std::int64_t>(::getpid()))
      .add("ts_ns", wall_ns())
      .add("signals_received", counters_.signals_received)
      .add("signals_accepted", counters_.signals_accepted)
      .add("duplicates", counters_.duplicates)
      .add("rejected", rejected)
      .add("orders_sent", counters_.orders_sent)
      .add("order_retries", orders_.retries())
      .add("order_timeouts", counters_.order_timeouts)
      .add("fills", counters_.fills)
      .add("partial_fills", counters_.partial_fills)
      .add("broker_rejects", counters_.broker_rejects)
      .add("positions", positions)
      .add("latency_tick_to_fill_us", latency)
      .add("dead_letters", dead_letters_.sent() + dead_letters_.dropped())
      .add("connections_dropped", signals_monitor_.counters().dropped)
      .add("handshakes_failed", signals_monitor_.counters().handshakes_failed)
      .add("orders_unknown", store_.count_in_state(OrderState::unknown))
      .add("orders_intent", store_.count_in_state(OrderState::intent))
      .add("orders_held_now", held_)
      .add("orders_held", counters_.orders_held)
      .add("held_expired", counters_.held_expired)
      .add("breaker", to_string(breaker_.state()))
      .add("breaker_opens", breaker_.opens())
      .add("broker_alive", broker_alive_)
      .add("liveness_probes", counters_.liveness_probes)
      .add("position_check", to_string(position_check_))
      .add("trading_halted", position_check_ == PositionCheck::mismatch)
      .add("position_mismatches", mismatches);
  failures_.add_stats(o);
  disk_.add_stats(o);
  o.add("accept_failed", signals_monitor_.counters().accept_failed)
      .add("order_socket_failures", orders_.socket_failures())
      .add("open_files", open_files());
  std::string alert;
  if (position_check_ == PositionCheck::mismatch) {
    alert = fmt::format("new signals refused: {} position(s) differ from the broker's", position_mismatches_.size());
  }
  if (const auto it = failures_.failing().find(store_.path()); it != failures_.failing().end()) {
    if (!alert.empty()) alert += "; ";
    alert += "signals not acked: cannot write " + store_.path() + " (" + it->second + ")";
  }
  if (!alert.empty()) o.add("alert", alert);
  return o.str();
}

void ExecutorNode::storage_failed(std::string_view what, const StoreError& e, int err) {
  failures_.record(store_.path(), std::string(what) + " (" + e.what() + ")", err,
                   "nothing of it counts as done: signals are not acked (strategies resend them), orders stay to "
                   "be reconciled; retrying every second");
  storage_paused_until_ns_ = monotonic_ns() + storage_retry_ns;
}

bool ExecutorNode::storage_paused() const noexcept { return monotonic_ns() < storage_paused_until_ns_; }

void ExecutorNode::heartbeat() {
  const std::int64_t now = monotonic_ns();
  disk_.poll(now);
  if (now < next_stats_ns_) return;
  write_stats();
  next_stats_ns_ = now + stats_every_ns_;
}

void ExecutorNode::write_stats() {
  if (write_file_atomically(stats_path_, stats_json())) {
    failures_.recovered(stats_path_);
  } else {
    failures_.record(stats_path_, "write", errno, "the supervisor sees no heartbeat meanwhile");
  }
}

}  // namespace tp::executor
