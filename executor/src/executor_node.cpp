#include "executor/executor_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <variant>

#include "common/disk_watch.hpp"
#include "common/endpoints.hpp"
#include "common/run_loop.hpp"
#include "common/stats.hpp"
#include "common/stop.hpp"
#include "common/zmq_util.hpp"
#include "executor/decision.hpp"

namespace tp::executor {
namespace {

constexpr std::size_t max_signals_per_wakeup = 256;  // then timers get a turn
constexpr int max_poll_ms = 100;                     // the stop flag is looked at least this often
// Queues in bytes = messages x the larger of their size and ~8 KiB (a
// small message received alone keeps ZeroMQ's whole receive buffer alive
// while it waits). Signals: 64 per connected strategy x 64 KiB
// (ZMQ_MAXMSGSIZE) = 4 MiB at most while the loop is busy (a batch is 64
// signals); a strategy keeps the rest in its own PUSH queue. Events and
// acks: 10,000 per subscriber x at most ~1.6 KiB (ids <= 128 B, reason <=
// 1 KiB) = 16 MiB for a subscriber that stalls, ~2 MB for typical ~200 B
// events; beyond that PUB drops for that subscriber only (an ack it misses
// is recovered by the strategy's resend, answered DUPLICATE).
constexpr int signal_rcvhwm = 64;
constexpr int event_sndhwm = 10000;
// Reports wait in the SUB's queue while an order round trip runs; beyond
// this many the PUB drops them for us, and the gap is fetched by seq.
// 1,000 x ~8 KiB = 8 MiB at most (see above), not 10,000's 80.
constexpr int report_rcvhwm = 1000;
constexpr std::size_t max_reports_per_wakeup = 1000;
// Only the latest tick per instrument matters (a mark): a short queue. Short
// in bytes too: a small message received alone keeps ZeroMQ's whole ~8 KiB
// receive buffer alive while it waits, so a tick queued while the loop is
// busy (a wait on dll_gateway, a garbage flood) costs ~8 KB of RSS, not its
// ~100 B (1000 of them took the executor past its 30 MB in the chaos test).
constexpr int tick_rcvhwm = 100;
// Reports asked per ReportQuery, and batches per fetch before the loop gets
// a turn (the rest follows at the next pass).
constexpr std::uint32_t reports_per_query = 500;
constexpr int max_report_batches_per_fetch = 20;
// A GTD order still working this long after its good-till time: the broker
// did not expire it, so the executor cancels it.
constexpr std::int64_t gtd_grace_ns = 2'000'000'000;
// How long SIGTERM may spend on executor.cancel_on_shutdown's cancels.
constexpr std::int64_t shutdown_cancel_ns = 3'000'000'000;

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
      signals_(make_socket(ctx, zmq::socket_type::pull,
                           SocketOptions{.rcvhwm = signal_rcvhwm, .network = config.network})),
      signals_monitor_(ctx, signals_),
      events_(
          make_socket(ctx, zmq::socket_type::pub,
                      SocketOptions{.linger_ms = 1000, .sndhwm = event_sndhwm, .network = config.network})),
      reports_(make_socket(ctx, zmq::socket_type::sub,
                           SocketOptions{.rcvhwm = report_rcvhwm, .network = config.network})),
      reports_monitor_(ctx, reports_, reports_endpoint(config.endpoints.reports, config.endpoints.orders)),
      link_(ctx, config, clock,
            BrokerLinkOptions{.security = &security,
                              // Not while the shutdown cancels go out (bounded there).
                              .stopping = [this] { return stopping() && !shutdown_cancels_; },
                              // Stats only (see broker_link.hpp): no order is touched mid-exchange.
                              .while_waiting =
                                  [this] {
                                    heartbeat();
                                    // The kill switch answers during a long wait
                                    // too; what it implies is done after it.
                                    answer_control();
                                  },
                              .held_count = [this] { return desk_.held_count(); },
                              // A resend after an ok HALT is an order sent while HALTED.
                              .hold_order_retries =
                                  [this] { return desk_.trading().state == proto::TradingState::halted; }}),
      dead_letters_(ctx, config.endpoints.dead_letters, "executor", clock, security,
                    DeadLetterSender::SinkWatch::on),
      disk_({config.run.dir, std::filesystem::path(store_.path()).parent_path().string()},
            config.run.min_free_bytes),
      control_(make_socket(ctx, zmq::socket_type::rep, SocketOptions{.network = config.network})),
      ticks_(make_socket(ctx, zmq::socket_type::sub,
                         SocketOptions{.rcvhwm = tick_rcvhwm, .network = config.network})) {
  disk_.poll(clock_.monotonic_ns());
  security.bind(signals_, config.endpoints.signals);
  security.bind(events_, config.endpoints.order_events);
  security.bind(control_, control_endpoint(config.endpoints.control, config.endpoints.orders));
  ticks_.set(zmq::sockopt::subscribe, proto::tick_topic_prefix);
  security.connect(ticks_, config.endpoints.ticks);
  reports_.set(zmq::sockopt::subscribe, proto::report_topic_prefix);
  security.connect(reports_, reports_endpoint(config.endpoints.reports, config.endpoints.orders));
  cursor_ = store_.report_cursor();
  metrics_ = metrics::start_metrics_server(config.metrics, "executor", "executor");
}

int ExecutorNode::run() {
  // Stats first: they tell the supervisor this process is up even when the
  // start-up reconcile waits on an absent dll_gateway.
  stats_every_ns_ = std::int64_t{std::max(1, config_.run.stats_interval_ms)} * ns_per_ms;
  write_stats();
  publish_positions();
  next_stats_ns_ = clock_.monotonic_ns() + stats_every_ns_;
  resend_stored_letters();
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
  loop.add_reader(
      reports_, [this] { drain_reports(); }, [this] { return !storage_paused(); });
  loop.add_reader(control_, [this] { handle_control(); });
  loop.add_reader(ticks_, [this] { drain_ticks(); });
  const std::int64_t portfolio_every_ns = std::int64_t{config_.portfolio.interval_ms} * ns_per_ms;
  next_portfolio_ns_ = clock_.monotonic_ns();
  loop.add_work([&] {
    signals_monitor_.drain();
    reports_monitor_.drain();
    if (dead_letters_.sink_back_after_loss()) resend_stored_letters();
    if (clock_.monotonic_ns() >= next_reconcile) {
      reconcile();
      next_reconcile = clock_.monotonic_ns() + reconcile_interval_ns;
    }
    if (enforce_pending_) enforce_trading_state();
    if (clock_.monotonic_ns() >= next_portfolio_ns_) {
      value_portfolio();
      next_portfolio_ns_ = clock_.monotonic_ns() + portfolio_every_ns;
    }
    heartbeat();
    checkpoint_if_quiet();
    loop.wake_by(std::min({next_stats_ns_, next_reconcile, next_portfolio_ns_}));
    return 0;
  });
  loop.run();
  if (config_.executor.cancel_on_shutdown) cancel_working_orders();
  flush_reports();
  write_stats();
  return 0;
}

// Each batch has two phases. Accept: every waiting signal (up to
// max_signals_per_batch) is decoded and decided, and the accepted ones'
// signal rows and order intents (and the rejected ones' rows) are written in
// ONE transaction; only after its commit are the acks (an ack means durably
// recorded), NEW events and dead letters published. Send: the batch's orders
// go out in order, up to executor.orders_in_flight at once (Lazy Pirate
// each), each intent already durable, and the answers that come together
// are recorded under one commit. The next batch is decided while the last
// one's orders are still out: its risk checks count them at their worst
// case (ExecutionDesk::worst_after), as they count every order not final,
// so dll_gateway works on one batch while the executor decides the next.
// So a burst waits for a few commits and round trips instead of a commit
// plus an order round trip each.
void ExecutorNode::drain_signals(std::size_t limit) {
  // A crash point reproduces the moment of one order: one signal per batch.
  const std::size_t per_batch = crash_point_ == CrashPoint::none ? ExecutorNode::max_signals_per_batch : 1;
  std::size_t received = 0;
  Unrecorded unrecorded;
  while (received < limit && !storage_paused()) {
    bool more = true;
    try {
      accept_batch(std::min(per_batch, limit - received), received, more);
    } catch (const StoreError& e) {
      // Nothing of the batch is kept and nothing of it was published: no
      // ack, so every strategy resends, and the next batch is tried after
      // storage_retry_ns (a full disk is not a crash loop). The orders of
      // the batches before it are still answered and recorded.
      const int err = store_.last_errno();  // before the rollback clears it
      desk_.abort();
      storage_failed("commit a batch of signals", e, err);
      break;
    }
    if (const auto decided = desk_.batch(); !decided.empty() && crash_point_ == CrashPoint::after_intent &&
                                            decided[0].verdict == Verdict::accept) {
      crash("after_intent");
    }
    const auto batch = desk_.publish(outbox_);
    publish(outbox_);
    for (auto& decided : batch) {
      if (decided.verdict != Verdict::accept || decided.held) continue;
      // The breaker may have opened, or a HALT come, while earlier orders
      // were out (or one of them was held): this one, never handed to the
      // order socket, is held as it would have been had it arrived a
      // moment later. Checked once a client is free for it: the wait for
      // one is when those happen.
      await_order_slot(unrecorded);
      if (desk_.must_hold(link_.closed())) {
        desk_.hold(decided.order);
        continue;
      }
      latencies_.order_sent(decided.order.created_ns, clock_.now_ns());
      send_order(decided.order, unrecorded);
    }
    // A cancel read with its own order's signal finds the order's answer
    // recorded.
    if (!cancels_.empty()) {
      record(unrecorded);
      handle_cancels();
    }
    // The queue is empty: a signal that comes while orders are out is
    // decided at once, not after their answers.
    if (!more && !record(unrecorded, &signals_)) break;
  }
  record(unrecorded);
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
    const auto read_ns = clock_.now_ns();
    latencies_.signal_read(desk_.next_signal(), read_ns);
    signal_lag_.observe(read_ns, desk_.next_signal().created_ts_ns);
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
  if (auto type = decoder_.peek_type(bytes_of(frames_[0]));
      type && type.value() == proto::MsgType::cancel_request) {
    // Handled after the batch's orders are sent: a cancel read with its own
    // order's signal finds the order recorded.
    auto cancel = decoder_.decode_cancel_request(bytes_of(frames_[0]));
    if (!cancel) {
      dead_letters_.send(cancel.error(), view_of(frames_[0]));
      return false;
    }
    cancels_.push_back(std::move(cancel).value());
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

bool ExecutorNode::enough_to_record(const Unrecorded& unrecorded) const noexcept {
  // Half the window's answers per commit: few commits for a burst, and
  // still one while the other half is at dll_gateway. With one order in
  // flight: each answer while the next order is out.
  return !unrecorded.answers.empty() &&
         unrecorded.answers.size() >= std::max<std::size_t>(1, link_.order_slots() / 2);
}

void ExecutorNode::await_order_slot(Unrecorded& unrecorded) {
  while (!link_.order_slot_free()) {
    if (enough_to_record(unrecorded)) {
      record_answers(unrecorded);  // while every order client has one at dll_gateway
    } else {
      collect(unrecorded);
    }
  }
}

bool ExecutorNode::send_order(const OrderRecord& order, Unrecorded& unrecorded) {
  await_order_slot(unrecorded);
  if (flying_.size() < link_.order_slots()) {
    flying_.resize(link_.order_slots());
    flying_sent_.resize(link_.order_slots());
  }
  const SentAt sent{clock_.now_ns(), clock_.monotonic_ns()};
  const auto slot = link_.start_order(order);
  flying_[slot] = order;
  flying_sent_[slot] = sent;
  return !unrecorded.unanswered;
}

void ExecutorNode::collect(Unrecorded& unrecorded, zmq::socket_t* also) {
  settled_.clear();
  link_.wait_orders(settled_, also);
  const auto now = clock_.now_ns();
  const auto now_monotonic = clock_.monotonic_ns();
  for (auto& s : settled_) {
    auto order = std::move(*flying_[s.slot]);
    flying_[s.slot].reset();
    if (!s.reply) {
      desk_.mark_unknown(order);  // reconcile() asks again later, with the same id
      unrecorded.unanswered = true;
      continue;
    }
    const SentAt& sent = flying_sent_[s.slot];
    latencies_.answered(*s.reply, sent.wall_ns, now_monotonic - sent.monotonic_ns, now);
    if (crash_point_ == CrashPoint::after_send) crash("after_send");
    unrecorded.answers.push_back(AnsweredOrder{std::move(order), std::move(*s.reply), now});
  }
}

void ExecutorNode::record_answers(Unrecorded& unrecorded) {
  if (unrecorded.answers.empty()) return;
  desk_.apply_replies(unrecorded.answers, ReplySource::round_trip, outbox_);
  unrecorded.answers.clear();
  publish(outbox_);
}

bool ExecutorNode::record(Unrecorded& unrecorded, zmq::socket_t* also) {
  while (link_.orders_in_flight() > 0) {
    if (enough_to_record(unrecorded)) {
      record_answers(unrecorded);  // while the rest are at dll_gateway
      continue;
    }
    collect(unrecorded, also);
    if (also && (also->get(zmq::sockopt::events) & ZMQ_POLLIN)) return true;
  }
  record_answers(unrecorded);
  return false;
}

void ExecutorNode::reconcile() {
  if (!link_.allows()) return;  // open: nothing goes out before the cooling period ends
  // Reports first: what the broker did while nobody listened (or what the
  // socket dropped) settles working orders without asking about each. Asked
  // at start until caught up and while orders work at the broker; when idle,
  // the liveness probe asks for them too.
  if (!reports_caught_up_ || store_.count_working() > 0) {
    if (!fetch_reports()) return;  // dll_gateway is away; the next pass tries again
  } else if (link_.probe_due(desk_.held_count() == 0) && store_.open_orders().empty()) {
    auto batch = link_.probe(cursor_.next_seq);
    if (!batch) return;
    if (!apply_batch(*batch)) fetch_reports();
  }
  // Read after the reports: one may have settled an order (its answer lost
  // with the last process), and a copy read before would apply it twice.
  const auto open = store_.open_orders();
  Unrecorded unrecorded;
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
      // While HALTED it waits, asked about again each pass: sent after a
      // RESUME (dll_gateway refusing it if its deadline passed meanwhile).
      if (desk_.trading().state == proto::TradingState::halted) continue;
      if (!send_order(order, unrecorded)) {
        whole_pass = false;
        break;
      }
    } else {
      desk_.apply_reply(order, *reply, clock_.now_ns(), ReplySource::reconciliation, outbox_);
      publish(outbox_);
    }
  }
  // HALTED or flattening: the held orders are given up (and the working
  // ones' cancels sent) before any held order could be released.
  record(unrecorded);
  if (whole_pass) enforce_trading_state();
  if (whole_pass && desk_.held_count() > 0) release_held(unrecorded);
  record(unrecorded);
  if (whole_pass) send_requested_cancels();
  // Every order was answered (an open one works at the broker, followed by
  // reports), nothing is held and the reports are caught up: the open
  // orders, then the books, can be compared with the broker's.
  const bool checks_pending =
      desk_.orders_check() == OrdersCheck::pending || desk_.position_check() == PositionCheck::pending;
  if (checks_pending && whole_pass && desk_.held_count() == 0 && reports_caught_up_ &&
      store_.open_orders().empty()) {
    if (desk_.orders_check() == OrdersCheck::pending) check_open_orders();
    if (desk_.orders_check() != OrdersCheck::pending && desk_.position_check() == PositionCheck::pending)
      check_positions();
  }
}

void ExecutorNode::drain_reports() {
  for (std::size_t i = 0; i < max_reports_per_wakeup; ++i) {
    std::size_t total = 0;
    if (!recv_message(reports_, frames_, 2, total)) return;
    ++stream_counters_.received;
    if (total != 2) {
      dead_letters_.send("bad_frames", fmt::format("report: expected 2 frames, got {}", total),
                         join_frames(frames_, std::min<std::size_t>(total, 2)));
      continue;
    }
    auto report = decoder_.decode_execution_report(bytes_of(frames_[1]));
    if (!report) {
      dead_letters_.send(report.error(), view_of(frames_[1]));
      continue;
    }
    on_report(report.value(), false);
    if (storage_paused()) break;
  }
  flush_reports();
}

void ExecutorNode::flush_reports() {
  try {
    store_.flush_known();
  } catch (const StoreError& e) {
    // Kept in memory; a crash before they are written only costs a fetch.
    storage_failed("record known execution reports", e, store_.last_errno());
  }
}

void ExecutorNode::on_report(const proto::ExecutionReport& report, bool fetched) {
  if (report.stream != cursor_.stream) {
    if (fetched) return;  // a fetch answers for the stream it started on
    follow_stream(report.stream);
  }
  if (report.seq < cursor_.next_seq) {
    ++stream_counters_.duplicate;
    return;
  }
  if (report.seq > cursor_.next_seq) {
    if (fetched) return;  // cannot happen: a fetch answers in order
    ++stream_counters_.gaps;
    if (!fetch_reports(report.seq) || report.seq != cursor_.next_seq) return;  // the next pass fetches it
  }
  const auto now = clock_.now_ns();
  switch (desk_.apply_report(report, now, outbox_)) {
    case ReportResult::applied:
      cursor_.next_seq = report.seq + 1;
      break;
    case ReportResult::known:
      store_.defer_known(report, now);  // written in bulk: flush_reports()
      cursor_.next_seq = report.seq + 1;
      break;
    case ReportResult::failed:
      break;  // fetched again from the cursor once the store writes
  }
  publish(outbox_);
}

void ExecutorNode::follow_stream(const std::string& stream) {
  // A new dll_gateway store (or the first report ever): its numbering starts
  // at 1, and every report of it is fetched in order.
  if (!cursor_.stream.empty()) {
    spdlog::warn(
        "dll_gateway's report stream changed from {} (next seq {}) to {}: its store is new; reading "
        "the new one from seq 1",
        cursor_.stream, cursor_.next_seq, stream);
  }
  ++stream_counters_.streams;
  cursor_ = ReportCursor{stream, 1};
}

bool ExecutorNode::apply_batch(const proto::ReportBatch& batch) {
  if (batch.stream != cursor_.stream) {
    follow_stream(batch.stream);
    return false;
  }
  if (!batch.reason.empty()) spdlog::warn("report query from seq {}: {}", cursor_.next_seq, batch.reason);
  auto reports = proto::unpack_reports(batch);
  if (!reports) {
    spdlog::error("report batch unreadable: {}", reports.error().message());
    return false;
  }
  stream_counters_.fetched += reports.value().size();
  if (!reports.value().empty() && reports.value().front().seq > cursor_.next_seq) {
    // dll_gateway no longer keeps the reports before its oldest (pruned):
    // the orders they were about are settled by query and the open-orders
    // check, not by the stream.
    spdlog::warn("reports {} to {} are no longer kept by dll_gateway ({}); reading on from {}",
                 cursor_.next_seq, reports.value().front().seq - 1, batch.reason,
                 reports.value().front().seq);
    cursor_.next_seq = reports.value().front().seq;
  }
  for (const auto& r : reports.value()) {
    on_report(r, true);
    if (cursor_.next_seq <= r.seq) return false;  // not applied (store trouble): later
  }
  if (cursor_.next_seq > batch.last_seq) {
    reports_caught_up_ = true;
    return true;
  }
  if (reports.value().empty()) {
    // Pruned at dll_gateway: what remains is settled by the open-orders check.
    spdlog::warn("reports from seq {} are no longer kept by dll_gateway; skipping to {}", cursor_.next_seq,
                 batch.last_seq + 1);
    cursor_.next_seq = batch.last_seq + 1;
    try {
      store_.set_report_cursor(cursor_);
    } catch (const StoreError& e) {
      storage_failed("move the report cursor", e, store_.last_errno());
    }
  }
  return false;
}

bool ExecutorNode::fetch_reports(std::uint64_t until_seq) {
  for (int i = 0; i < max_report_batches_per_fetch; ++i) {
    if (until_seq != 0 && cursor_.next_seq >= until_seq) return true;
    if (storage_paused()) return false;
    const auto before = cursor_;
    auto batch = link_.reports(cursor_.next_seq, reports_per_query);
    if (!batch) return false;
    if (apply_batch(*batch)) return true;                                                      // caught up
    if (cursor_.stream == before.stream && cursor_.next_seq == before.next_seq) return false;  // no progress
  }
  return true;
}

void ExecutorNode::handle_cancels() {
  for (const auto& request : cancels_) {
    auto decision = desk_.request_cancel(request, outbox_);
    publish(outbox_);
    if (decision.send_now && decision.order && link_.closed()) send_cancel(*decision.order);
  }
  cancels_.clear();
}

void ExecutorNode::send_cancel(const OrderRecord& order) {
  auto reply = link_.cancel(order);
  if (!reply) return;  // still REQUESTED: the next pass sends it again (dll_gateway lets one through)
  desk_.apply_cancel_answer(order, *reply, outbox_);
  publish(outbox_);
}

void ExecutorNode::send_requested_cancels() {
  const auto now = clock_.now_ns();
  for (const auto& order : store_.working_orders()) {
    if (order.cancel != CancelState::none || order.terms.time_in_force != proto::TimeInForce::gtd) continue;
    if (now < order.terms.good_till_ns + gtd_grace_ns) continue;
    spdlog::warn("order {} is still {} {} ms after its good-till time: canceling it", order.client_order_id,
                 proto::to_string(order.status), (now - order.terms.good_till_ns) / 1'000'000);
    desk_.request_cancel(order, "gtd_overdue: the broker did not expire it");
  }
  for (const auto& order : store_.cancel_requested()) {
    if (stopping() || !link_.closed()) return;
    if (proto::is_final(order.status)) {
      desk_.cancel_settled(order);  // it ended on its own meanwhile
    } else if (order.working()) {
      send_cancel(order);
    }
    // INTENT or UNKNOWN: reconciliation settles the order first.
  }
}

void ExecutorNode::check_open_orders() {
  std::vector<proto::ExecutionReport> at_broker;
  for (std::uint32_t offset = 0;;) {
    auto batch = link_.open_orders(offset);
    if (!batch) return;  // away: the next pass asks again
    if (!batch->reason.empty() && batch->count == 0 && !batch->complete) {
      desk_.open_orders_unavailable(batch->reason);
      return;
    }
    auto reports = proto::unpack_reports(*batch);
    if (!reports) {
      desk_.open_orders_unavailable("open orders unreadable: " + reports.error().message());
      return;
    }
    for (auto& r : reports.value()) at_broker.push_back(std::move(r));
    if (batch->complete || reports->empty()) break;
    offset += batch->count;
  }
  std::set<std::string, std::less<>> open_at_broker;
  for (const auto& r : at_broker) open_at_broker.insert(r.client_order_id);
  std::vector<std::string> unknown;
  for (const auto& r : at_broker) {
    auto order = store_.find_order(r.client_order_id);
    if (order && order->working()) continue;
    if (order && (order->state == OrderState::intent || order->state == OrderState::unknown)) continue;
    unknown.push_back(r.client_order_id);
  }
  // Working here but no longer open there: a report that never came; ask.
  for (const auto& order : store_.working_orders()) {
    if (open_at_broker.contains(order.client_order_id)) continue;
    if (auto reply = link_.query(order.client_order_id)) {
      desk_.apply_reply(order, *reply, clock_.now_ns(), ReplySource::reconciliation, outbox_);
      publish(outbox_);
    }
  }
  desk_.compare_open_orders(unknown);
}

void ExecutorNode::cancel_working_orders() {
  const auto working = store_.working_orders();
  if (working.empty()) return;
  spdlog::info("executor.cancel_on_shutdown: canceling {} working order(s)", working.size());
  // The stop flag is up, and the order client sends nothing once it is: the
  // cancels go out with it lowered, within a bound (shutdown_cancel_ns) and
  // only while dll_gateway answers, so that SIGTERM still ends the process
  // well within the supervisor's grace.
  shutdown_cancels_ = true;
  const auto until = clock_.monotonic_ns() + shutdown_cancel_ns;
  std::size_t sent = 0;
  for (const auto& order : working) {
    if (clock_.monotonic_ns() >= until) break;
    if (order.cancel == CancelState::none &&
        !desk_.request_cancel(order, "shutdown: executor.cancel_on_shutdown"))
      continue;
    auto again = store_.find_order(order.client_order_id);
    if (!again) continue;
    auto reply = link_.cancel(*again);
    if (!reply) break;  // dll_gateway is away: the rest stay REQUESTED, sent at the next start
    desk_.apply_cancel_answer(*again, *reply, outbox_);
    publish(outbox_);
    ++sent;
  }
  shutdown_cancels_ = false;
  if (sent < working.size())
    spdlog::warn(
        "executor.cancel_on_shutdown: {} of {} working order(s) canceled; the rest are REQUESTED and "
        "sent at the next start",
        sent, working.size());
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

void ExecutorNode::release_held(Unrecorded& unrecorded) {
  // HALTED: held orders are given up (enforce_trading_state), never sent.
  if (desk_.trading().state == proto::TradingState::halted) return;
  for (auto order : desk_.held_orders()) {
    await_order_slot(unrecorded);  // a HALT may come while earlier ones are out
    if (stopping() || !link_.closed() || desk_.trading().state == proto::TradingState::halted) break;
    if (order.expires_ns > 0 && clock_.now_ns() >= order.expires_ns) {
      desk_.give_up(order, outbox_);  // never sent, so it can be given up without asking the broker
      publish(outbox_);
      continue;
    }
    if (!desk_.release(order)) break;
    if (!send_order(order, unrecorded)) return;  // UNKNOWN: reconciled by the next pass
  }
}

void ExecutorNode::resend_stored_letters() {
  // At start, what a kill left in the dead-letter queues is gone with the
  // process; when the sink is back after a lost connection, what it had
  // not written, and what was sent as it died, is gone with it. Either way
  // the newest letters that can have been lost are sent again (the sink
  // writes each key once), newest first: the queues may already hold
  // letters (the ones waiting for the sink, new ones), and what does not
  // fit is dropped, so the drops fall on the oldest, the likeliest to have
  // been written before.
  std::uint64_t resent = 0;
  try {
    const auto letters =
        store_.recent_letters(DeadLetterSender::small_queue_letters + DeadLetterSender::large_queue_letters);
    for (auto l = letters.rbegin(); l != letters.rend(); ++l) {
      dead_letters_.send(l->reason, l->detail, l->original, l->key, l->ts_ns);
      ++resent;
    }
  } catch (const StoreError& e) {
    spdlog::error("stored dead letters not sent again: {}", e.what());
  }
  letters_resent_ += resent;
  if (resent > 0) spdlog::info("sent {} stored dead letters again", resent);
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
      // A stored letter the queue cannot take now is owed: sent once there
      // is room (heartbeat), not only at the next start or reconnection.
      if (!dead_letters_.send(dl.reason, dl.detail, dl.original, dl.key, dl.ts_ns) && !dl.key.empty())
        owed_letters_.owe(dl);
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
  c.report_stream = stream_counters_;
  return c;
}

std::string ExecutorNode::stats_json() {
  const auto working = store_.count_working();
  JsonObject rejected;
  const auto& desk = desk_.counters();
  const auto& link = link_.counters();
  for (const auto& [reason, n] : desk.rejected) rejected.add(reason, n);
  JsonObject fills_by_instrument;
  for (const auto& [sym, n] : desk.fills_by_instrument) fills_by_instrument.add(sym, n);
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

  JsonObject cancels_refused;
  for (const auto& [reason, n] : desk.cancels_refused) cancels_refused.add(reason, n);
  std::string unknown_open;
  for (const auto& id : desk_.unknown_open_orders()) unknown_open += (unknown_open.empty() ? "" : " ") + id;
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
      .add("fills_by_instrument", fills_by_instrument)
      .add("partial_fills", desk.partial_fills)
      .add("broker_rejects", desk.broker_rejects)
      .add("positions", positions)
      .add("groups", groups)
      .add("latency_tick_to_fill_us", latency)
      .add("dead_letters", dead_letters_.sent() + dead_letters_.dropped())
      .add("dead_letters_dropped", dead_letters_.dropped())
      .add("dead_letters_replayed", letters_resent_)
      .add("dead_letters_owed", owed_letters_.size())
      .add("dead_letters_given_up", owed_letters_.given_up())
      .add("connections_dropped", signals_monitor_.counters().dropped + reports_monitor_.counters().dropped)
      .add("handshakes_failed",
           signals_monitor_.counters().handshakes_failed + reports_monitor_.counters().handshakes_failed)
      .add("report_redials", reports_monitor_.counters().redials)
      .add("orders_unknown", store_.count_in_state(OrderState::unknown))
      .add("orders_intent", store_.count_in_state(OrderState::intent))
      .add("orders_held_now", desk_.held_count())
      .add("orders_held", desk.orders_held)
      .add("held_expired", desk.held_expired)
      .add("breaker", to_string(link_.breaker_state()))
      .add("breaker_opens", link_.breaker_opens())
      .add("broker_alive", link_.alive())
      .add("liveness_probes", link.liveness_probes)
      .add("canceled", desk.canceled)
      .add("expired_at_broker", desk.expired_at_broker)
      .add("cancel_requests", desk.cancel_requests)
      .add("cancel_duplicates", desk.cancel_duplicates)
      .add("cancels_sent", link.cancels_sent)
      .add("cancels_refused", cancels_refused)
      .add("orders_working", working)
      .add("report_stream", cursor_.stream)
      .add("report_next_seq", cursor_.next_seq)
      .add("reports_received", stream_counters_.received)
      .add("reports_fetched", stream_counters_.fetched)
      .add("reports_duplicate", stream_counters_.duplicate)
      .add("report_gaps", stream_counters_.gaps)
      .add("report_queries", link.report_queries)
      .add("reports_applied", desk.reports_applied)
      .add("reports_known", desk.reports_known)
      .add("reports_unknown_order", desk.reports_unknown_order)
      .add("stale_updates", desk.stale_updates)
      .add("invalid_transitions", desk.invalid_transitions)
      .add("orders_check", to_string(desk_.orders_check()))
      .add("unknown_open_orders", unknown_open)
      .add("position_check", to_string(desk_.position_check()))
      .add("trading_halted", desk_.trading().state == proto::TradingState::halted)
      .add("trading_state", proto::to_string(desk_.trading().state))
      .add("trading_state_cause", desk_.trading().cause)
      .add("trading_state_since_ns", desk_.trading().since_ns)
      .add("flatten_pending", desk_.trading().flatten_pending)
      .add("open_orders", desk_.open_order_count())
      .add("control_commands", desk.control_commands)
      .add("account_currency", config_.portfolio.account_currency)
      .add("equity", valuation_.equity)
      .add("realized_pnl", valuation_.realized_pnl)
      .add("unrealized_pnl", valuation_.unrealized_pnl)
      .add("daily_pnl", daily_pnl_)
      .add("daily_pnl_known", waiting_marks_.empty())
      .add("portfolio_complete", valuation_.complete)
      .add("marks", marks_.size())
      .add("position_mismatches", mismatches);
  clock_lags_.add_stats(o);
  failures_.add_stats(o);
  disk_.add_stats(o);
  o.add("accept_failed", signals_monitor_.counters().accept_failed)
      .add("order_socket_failures", link_.socket_failures())
      .add("store_checkpoints", checkpoint_.made())
      .add("open_files", open_files());
  std::string alert;
  if (desk_.position_check() == PositionCheck::mismatch) {
    alert = fmt::format("new signals refused: {} position(s) differ from the broker's",
                        desk_.position_mismatches().size());
  }
  if (desk_.orders_check() == OrdersCheck::mismatch) {
    if (!alert.empty()) alert += "; ";
    alert += fmt::format("new signals refused: {} order(s) open at the broker are unknown here",
                         desk_.unknown_open_orders().size());
  }
  if (config_.risk.max_daily_loss > 0 && !waiting_marks_.empty()) {
    if (!alert.empty()) alert += "; ";
    alert += fmt::format("daily loss limit not armed: no mark yet for {} (of {} open positions)",
                         waiting_marks_.front(), waiting_marks_.size());
  }
  if (desk_.trading().state != proto::TradingState::active) {
    if (!alert.empty()) alert += "; ";
    alert += fmt::format("trading {}: {}", proto::to_string(desk_.trading().state), desk_.trading().cause);
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
  systemd_.alive(now);
  if (!owed_letters_.empty()) {
    owed_letters_.pay([this](const OutcomeLetter& l) {
      return dead_letters_.send_if_room(l.reason, l.detail, l.original, l.key, l.ts_ns);
    });
  }
  if (store_.deferred_known() > 0 && !storage_paused()) flush_reports();
  disk_.poll(now);
  if (now < next_stats_ns_) return;
  write_stats();
  publish_positions();
  next_stats_ns_ = now + stats_every_ns_;
}

void ExecutorNode::checkpoint_if_quiet() {
  // Between bursts: in a commit, the copy into the database and its
  // fdatasync(2) would hold up the batch behind it.
  checkpoint_.run(
      store_, clock_.monotonic_ns(),
      [&] { return store_.in_transaction() || (signals_.get(zmq::sockopt::events) & ZMQ_POLLIN); },
      [&](const StoreError& e) {
        failures_.record(store_.path(), std::string("checkpoint the write-ahead log (") + e.what() + ")",
                         store_.last_errno(),
                         "its write-ahead log grows until one succeeds; retrying every second");
      });
}

void ExecutorNode::write_stats() {
  clock_lags_.roll();
  write_stats_file(stats_path_, stats_json(), failures_, "the supervisor sees no heartbeat meanwhile");
  publish_metrics();
}

ExecutorFigures ExecutorNode::figures() {
  ExecutorFigures f;
  f.desk = desk_.counters();
  f.link = link_.counters();
  f.stream = stream_counters_;
  f.signals_received = signals_received_;
  f.order_retries = link_.retries();
  f.order_socket_failures = link_.socket_failures();
  f.dead_letters_sent = dead_letters_.sent();
  f.dead_letters_dropped = dead_letters_.dropped();
  f.dead_letters_replayed = letters_resent_;
  f.dead_letters_owed = owed_letters_.size();
  f.dead_letters_given_up = owed_letters_.given_up();
  f.store_checkpoints = checkpoint_.made();
  f.report_next_seq = cursor_.next_seq;
  f.orders_unknown = store_.count_in_state(OrderState::unknown);
  f.orders_intent = store_.count_in_state(OrderState::intent);
  f.orders_held_now = desk_.held_count();
  f.orders_working = store_.count_working();
  f.open_orders = desk_.open_order_count();
  f.breaker = link_.breaker_state();
  f.breaker_opens = link_.breaker_opens();
  f.broker_alive = link_.alive();
  f.orders_check = desk_.orders_check();
  f.unknown_open_orders = desk_.unknown_open_orders().size();
  f.position_check = desk_.position_check();
  f.position_mismatches = desk_.position_mismatches();
  f.trading_state = desk_.trading().state;
  f.trading_state_since_ns = desk_.trading().since_ns;
  f.flatten_pending = desk_.trading().flatten_pending;
  f.positions = desk_.positions().all();
  for (const auto& [group, instruments] : desk_.known_groups()) {
    const auto book = desk_.group_positions().find(group);
    auto& held = f.group_positions[group];
    for (const auto& sym : instruments) {
      const Position* p = book == desk_.group_positions().end() ? nullptr : book->second.find(sym);
      held[sym] = p ? *p : Position{};
    }
  }
  f.account_currency = config_.portfolio.account_currency;
  f.equity = valuation_.equity;
  f.realized_pnl = valuation_.realized_pnl;
  f.unrealized_pnl = valuation_.unrealized_pnl;
  f.daily_pnl = daily_pnl_;
  f.daily_pnl_known = waiting_marks_.empty();
  f.portfolio_complete = valuation_.complete;
  f.marks = marks_.size();
  return f;
}

void ExecutorNode::publish_metrics() {
  if (!metrics_) return;
  metrics::MetricsText m({{"program", "executor"}, {"process", "executor"}});
  add_executor_metrics(m, figures());
  add_latency_metrics(m, desk_.tick_to_fill_seconds(), latencies_);
  clock_lags_.add_metrics(m);
  auto connections = signals_monitor_.counters();
  connections += reports_monitor_.counters();
  metrics::add_connection_metrics(m, connections);
  metrics::add_disk_metrics(m, disk_, config_.run.min_free_bytes, failures_);
  metrics_->publish(m.str(), clock_.now_ns());
}

}  // namespace tp::executor
