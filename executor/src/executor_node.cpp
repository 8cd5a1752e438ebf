#include "executor/executor_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <variant>

#include "common/disk_watch.hpp"
#include "common/run_loop.hpp"
#include "common/stats.hpp"
#include "common/stop.hpp"
#include "common/zmq_util.hpp"
#include "executor/decision.hpp"

namespace tp::executor {
namespace {

constexpr std::size_t max_signals_per_wakeup = 256;  // then timers get a turn
constexpr int max_poll_ms = 100;                     // the stop flag is looked at least this often
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
      desk_(store_, config, clock,
            [this](std::string_view what, const StoreError& e, int err) { storage_failed(what, e, err); }),
      signals_(make_socket(ctx, zmq::socket_type::pull, SocketOptions{.rcvhwm = signal_rcvhwm})),
      signals_monitor_(ctx, signals_),
      events_(
          make_socket(ctx, zmq::socket_type::pub, SocketOptions{.linger_ms = 1000, .sndhwm = event_sndhwm})),
      link_(ctx, config, clock,
            BrokerLinkOptions{.security = &security,
                              .stopping = [this] { return stopping(); },
                              // Stats only (see broker_link.hpp): no order is touched mid-exchange.
                              .while_waiting = [this] { heartbeat(); },
                              .held_count = [this] { return desk_.held_count(); }}),
      dead_letters_(ctx, config.endpoints.dead_letters, "executor", clock, security),
      disk_({config.run.dir, std::filesystem::path(store_.path()).parent_path().string()},
            config.run.min_free_bytes) {
  disk_.poll(clock_.monotonic_ns());
  security.bind(signals_, config.endpoints.signals);
  security.bind(events_, config.endpoints.order_events);
}

int ExecutorNode::run() {
  // Stats first: they tell the supervisor this process is up even when the
  // start-up reconcile waits on an absent dll_gateway.
  stats_every_ns_ = std::int64_t{std::max(1, config_.run.stats_interval_ms)} * ns_per_ms;
  write_stats();
  publish_positions();
  next_stats_ns_ = clock_.monotonic_ns() + stats_every_ns_;
  reconcile();
  std::int64_t next_reconcile = clock_.monotonic_ns() + reconcile_interval_ns;
  write_stats();
  publish_positions();
  next_stats_ns_ = clock_.monotonic_ns() + stats_every_ns_;

  // The loop's poll, bound and stop are RunLoop's. The two deadlines are
  // kept here, not as RunLoop timers: the stats deadline also moves when an
  // order's wait writes the heartbeat (while_waiting), and the next pass is
  // counted from the end of the previous one, which may have waited on
  // dll_gateway (a fixed-delay timer would count from its start).
  RunLoop loop(
      clock_, [this] { return stopping(); }, max_poll_ms);
  // While the store cannot write, signals wait in their queues (and in the
  // strategies' journals) instead of being read and left unacked.
  loop.add_reader(
      signals_, [this] { drain_signals(max_signals_per_wakeup); }, [this] { return !storage_paused(); });
  loop.add_work([&] {
    signals_monitor_.drain();
    if (clock_.monotonic_ns() >= next_reconcile) {
      reconcile();
      next_reconcile = clock_.monotonic_ns() + reconcile_interval_ns;
    }
    heartbeat();
    loop.wake_by(std::min(next_stats_ns_, next_reconcile));
    return 0;
  });
  loop.run();
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
  const std::size_t per_batch = crash_point_ == CrashPoint::none ? ExecutorNode::max_signals_per_batch : 1;
  std::size_t received = 0;
  while (received < limit && !storage_paused()) {
    bool more = true;
    try {
      accept_batch(std::min(per_batch, limit - received), received, more);
    } catch (const StoreError& e) {
      // Nothing of the batch is kept and nothing of it was published: no
      // ack, so every strategy resends, and the next batch is tried after
      // storage_retry_ns (a full disk is not a crash loop).
      const int err = store_.last_errno();  // before the rollback clears it
      desk_.abort();
      storage_failed("commit a batch of signals", e, err);
      return;
    }
    if (const auto decided = desk_.batch(); !decided.empty() && crash_point_ == CrashPoint::after_intent &&
                                            decided[0].verdict == Verdict::accept) {
      crash("after_intent");
    }
    const auto batch = desk_.publish(outbox_);
    publish(outbox_);
    // Sent in order; the last answer is recorded before the next batch's
    // risk checks, which must see every fill of this one.
    Unrecorded unrecorded;
    for (auto& decided : batch) {
      if (decided.verdict != Verdict::accept || decided.held) continue;
      // The breaker may have opened while earlier orders of the batch went
      // out (or one of them was held): this one, never handed to the order
      // socket, is held as it would have been had it arrived a moment later.
      if (desk_.must_hold(link_.closed())) {
        desk_.hold(decided.order);
        continue;
      }
      send_order(decided.order, unrecorded);
    }
    record(unrecorded);
    if (!more) break;
  }
}

void ExecutorNode::accept_batch(std::size_t max_messages, std::size_t& received, bool& more) {
  for (std::size_t taken = 0; taken < max_messages; ++taken) {
    std::size_t total = 0;
    if (!recv_message(signals_, frames_, max_kept_frames, total)) {
      more = false;
      break;
    }
    ++received;
    if (!take_signal(total)) continue;
    desk_.decide(view_of(frames_[0]), link_.closed());
  }
  if (desk_.commit()) failures_.recovered(store_.path());
}

bool ExecutorNode::take_signal(std::size_t total_frames) {
  ++signals_received_;
  if (total_frames != 1) {
    dead_letters_.send("bad_frames", fmt::format("expected 1 frame, got {}", total_frames),
                       join_frames(frames_, total_frames));
    return false;
  }
  if (auto err = decoder_.decode_into(bytes_of(frames_[0]), desk_.next_signal())) {
    const auto reason = proto::to_string(err->code);
    dead_letters_.send(*err, view_of(frames_[0]));
    // A sender that can be named gets its refusal acked, so that it stops
    // resending; it is not recorded (there is no valid signal to record), so
    // a resend is refused and acked again.
    if (auto sender = decoder_.signal_sender(bytes_of(frames_[0]))) {
      proto::SignalAck ack;
      ack.signal_id = sender->signal_id;
      ack.status = proto::AckStatus::rejected;
      ack.reason = std::string(reason);
      ack.ts_ns = clock_.now_ns();
      publish_ack(proto::ack_topic(sender->strategy, sender->instance), ack);
    }
    return false;
  }
  return true;
}

bool ExecutorNode::send_order(const OrderRecord& order, Unrecorded& unrecorded) {
  link_.start_order(order);
  record(unrecorded);  // while dll_gateway works on this one
  auto reply = link_.finish_order();
  if (!reply) {
    desk_.mark_unknown(order);
    return false;  // reconcile() asks again later, with the same id
  }
  if (crash_point_ == CrashPoint::after_send) crash("after_send");
  unrecorded.answer.emplace(UnrecordedAnswer{order, std::move(*reply), clock_.now_ns()});
  return true;
}

void ExecutorNode::record(Unrecorded& unrecorded) {
  if (!unrecorded.answer) return;
  const auto& a = *unrecorded.answer;
  unrecorded.left_open |=
      desk_.apply_reply(a.order, a.reply, a.received_ns, ReplySource::round_trip, outbox_);
  unrecorded.answer.reset();
  publish(outbox_);
}

void ExecutorNode::reconcile() {
  if (!link_.allows()) return;  // open: nothing goes out before the cooling period ends
  const auto open = store_.open_orders();
  // Nothing to ask about: the half-open probe, or the idle liveness check,
  // is a query for an id that never exists (one attempt, no retries).
  if (open.empty() && link_.probe_due(desk_.held_count() == 0) && !link_.probe()) return;
  Unrecorded unrecorded;
  bool left_open = false;  // an order of this pass is still open after it
  bool whole_pass = true;
  for (const auto& order : open) {
    if (stopping()) {
      whole_pass = false;
      break;
    }
    auto reply = link_.query(order.client_order_id);
    if (!reply) {  // dll_gateway is away; the next pass tries again
      whole_pass = false;
      break;
    }
    if (reply->status == proto::OrderStatus::unknown) {
      // It never reached the broker: send it now, under the same id, with
      // its deadline. An expired one is not given up here: a copy may still
      // be in flight to dll_gateway (an attempt that timed out), so the
      // decision is left to dll_gateway, which refuses it past the deadline
      // and stores that answer under the id; any later copy gets the same.
      if (!send_order(order, unrecorded)) {
        whole_pass = false;
        break;
      }
    } else {
      left_open |= desk_.apply_reply(order, *reply, clock_.now_ns(), ReplySource::reconciliation, outbox_);
      publish(outbox_);
    }
  }
  if (whole_pass && desk_.held_count() > 0) left_open |= release_held(unrecorded);
  record(unrecorded);
  left_open |= unrecorded.left_open;
  // Every open order was answered final and nothing is held: the books can
  // be compared (the pass's own answers say so; the store is not read again).
  if (whole_pass && !left_open && desk_.held_count() == 0 &&
      desk_.position_check() == PositionCheck::pending) {
    check_positions();
  }
}

void ExecutorNode::check_positions() {
  std::map<std::string, double, std::less<>> broker;
  for (const auto& sym : desk_.instruments_to_check()) {
    auto reply = link_.position(sym);
    if (!reply) return;  // dll_gateway is away: the next pass asks again
    if (!reply->known) {
      desk_.positions_unavailable(sym, reply->reason);
      return;
    }
    broker.emplace(sym, reply->quantity);
  }
  desk_.compare_positions(broker);
}

bool ExecutorNode::release_held(Unrecorded& unrecorded) {
  for (auto order : desk_.held_orders()) {
    if (stopping() || !link_.closed()) break;
    if (order.expires_ns > 0 && clock_.now_ns() >= order.expires_ns) {
      desk_.give_up(order, outbox_);  // never sent, so it can be given up without asking the broker
      publish(outbox_);
      continue;
    }
    if (!desk_.release(order)) break;
    if (!send_order(order, unrecorded)) return true;  // UNKNOWN
  }
  return false;
}

void ExecutorNode::publish(Outbox& out) {
  for (auto& item : out.items) {
    if (auto* ack = std::get_if<Outbox::Ack>(&item)) {
      publish_ack(ack->topic, ack->ack);
    } else if (auto* ev = std::get_if<proto::OrderEvent>(&item)) {
      publish_event(*ev);
    } else if (auto* pos = std::get_if<proto::StrategyPosition>(&item)) {
      publish_position(*pos);
    } else {
      const auto& dl = std::get<Outbox::DeadLetter>(item);
      dead_letters_.send(dl.reason, dl.detail, dl.original);
    }
  }
  out.items.clear();
}

void ExecutorNode::publish_ack(const std::string& topic, const proto::SignalAck& ack) {
  tp::publish(events_, topic, encoder_.encode(ack), event_sends_);
}

void ExecutorNode::publish_event(const proto::OrderEvent& event) {
  tp::publish(events_, proto::order_topic(event.instrument), encoder_.encode(event), event_sends_);
}

void ExecutorNode::publish_position(const proto::StrategyPosition& position) {
  tp::publish(events_, proto::position_topic(position.strategy), encoder_.encode(position), event_sends_);
}

void ExecutorNode::publish_positions() {
  // Also from heartbeat() while an order waits on dll_gateway: its fill is
  // not in the books yet, and its event (then a report) follows when it is.
  for (const auto& p : desk_.position_reports()) publish_position(p);
}

ExecutorCounters ExecutorNode::counters() const {
  ExecutorCounters c;
  static_cast<DeskCounters&>(c) = desk_.counters();
  static_cast<LinkCounters&>(c) = link_.counters();
  c.signals_received = signals_received_;
  return c;
}

std::string ExecutorNode::stats_json() {
  JsonObject rejected;
  const auto& desk = desk_.counters();
  const auto& link = link_.counters();
  for (const auto& [reason, n] : desk.rejected) rejected.add(reason, n);
  JsonObject positions;
  for (const auto& [sym, p] : desk_.positions().all()) {
    positions.add(sym, JsonObject()
                           .add("position", p.position)
                           .add("avg_price", p.avg_price)
                           .add("realized_pnl", p.realized_pnl)
                           .add("last_price", p.last_price));
  }
  const auto& tick_to_fill = desk_.tick_to_fill();
  auto us = [&](double q) { return static_cast<double>(tick_to_fill.percentile(q)) / 1000.0; };
  JsonObject latency;
  latency.add("p50", us(0.50)).add("p99", us(0.99)).add("p999", us(0.999)).add("count", tick_to_fill.count());

  // Per strategy group: every (group, instrument) the desk reports, with the
  // realized PnL in each instrument's quote currency (as "positions" above).
  JsonObject groups;
  for (const auto& [group, instruments] : desk_.known_groups()) {
    const auto book = desk_.group_positions().find(group);
    JsonObject held;
    JsonObject pnl;
    for (const auto& sym : instruments) {
      const Position* p = book == desk_.group_positions().end() ? nullptr : book->second.find(sym);
      held.add(sym, p ? p->position : 0.0);
      pnl.add(sym, p ? p->realized_pnl : 0.0);
    }
    const auto counted = desk.groups.find(group);
    const GroupCounters c = counted == desk.groups.end() ? GroupCounters{} : counted->second;
    groups.add(group, JsonObject()
                          .add("positions", held)
                          .add("realized_pnl", pnl)
                          .add("signals", c.signals)
                          .add("rejected", c.rejected)
                          .add("fills", c.fills));
  }

  JsonObject mismatches;
  for (const auto& [sym, m] : desk_.position_mismatches()) {
    mismatches.add(sym, JsonObject().add("executor", m.executor).add("broker", m.broker));
  }

  auto o = stats_header("executor", clock_.now_ns());
  o.add("signals_received", signals_received_)
      .add("signals_accepted", desk.signals_accepted)
      .add("duplicates", desk.duplicates)
      .add("rejected", rejected)
      .add("orders_sent", link.orders_sent)
      .add("order_retries", link_.retries())
      .add("order_timeouts", link.order_timeouts)
      .add("fills", desk.fills)
      .add("partial_fills", desk.partial_fills)
      .add("broker_rejects", desk.broker_rejects)
      .add("positions", positions)
      .add("groups", groups)
      .add("latency_tick_to_fill_us", latency)
      .add("dead_letters", dead_letters_.sent() + dead_letters_.dropped())
      .add("dead_letters_dropped", dead_letters_.dropped())
      .add("connections_dropped", signals_monitor_.counters().dropped)
      .add("handshakes_failed", signals_monitor_.counters().handshakes_failed)
      .add("orders_unknown", store_.count_in_state(OrderState::unknown))
      .add("orders_intent", store_.count_in_state(OrderState::intent))
      .add("orders_held_now", desk_.held_count())
      .add("orders_held", desk.orders_held)
      .add("held_expired", desk.held_expired)
      .add("breaker", to_string(link_.breaker_state()))
      .add("breaker_opens", link_.breaker_opens())
      .add("broker_alive", link_.alive())
      .add("liveness_probes", link.liveness_probes)
      .add("position_check", to_string(desk_.position_check()))
      .add("trading_halted", desk_.position_check() == PositionCheck::mismatch)
      .add("position_mismatches", mismatches);
  failures_.add_stats(o);
  disk_.add_stats(o);
  o.add("accept_failed", signals_monitor_.counters().accept_failed)
      .add("order_socket_failures", link_.socket_failures())
      .add("open_files", open_files());
  std::string alert;
  if (desk_.position_check() == PositionCheck::mismatch) {
    alert = fmt::format("new signals refused: {} position(s) differ from the broker's",
                        desk_.position_mismatches().size());
  }
  if (const auto it = failures_.failing().find(store_.path()); it != failures_.failing().end()) {
    if (!alert.empty()) alert += "; ";
    alert += "signals not acked: cannot write " + store_.path() + " (" + it->second + ")";
  }
  if (!alert.empty()) o.add("alert", alert);
  return o.str();
}

void ExecutorNode::storage_failed(std::string_view what, const StoreError& e, int err) {
  failures_.record(
      store_.path(), std::string(what) + " (" + e.what() + ")", err,
      "nothing of it counts as done: signals are not acked (strategies resend them), orders stay to "
      "be reconciled; retrying every second");
  storage_paused_until_ns_ = clock_.monotonic_ns() + storage_retry_ns;
}

bool ExecutorNode::storage_paused() const noexcept {
  return clock_.monotonic_ns() < storage_paused_until_ns_;
}

void ExecutorNode::heartbeat() {
  const std::int64_t now = clock_.monotonic_ns();
  disk_.poll(now);
  if (now < next_stats_ns_) return;
  write_stats();
  publish_positions();
  next_stats_ns_ = now + stats_every_ns_;
}

void ExecutorNode::write_stats() {
  write_stats_file(stats_path_, stats_json(), failures_, "the supervisor sees no heartbeat meanwhile");
}

}  // namespace tp::executor
