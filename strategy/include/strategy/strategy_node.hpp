// One strategy instance (shard k of n of a strategy group) on the wire: the
// runtime of the strategy API. It owns its sockets, the group's strategy
// (a built-in or a plugin, driven through tp::Strategy and served a
// tp::Context), the signal journal and the single poll loop.
// SUB ticks (exact topics) -> feed checks -> strategy -> emit -> journal ->
// PUSH signals; SUB acks -> journal; SUB ORDER.<sym> and POS.<group> -> the
// strategy's order updates and positions; Context::cancel -> CancelRequest
// on the same PUSH, resent until acked. It also owns the journals of departed shards (<group>-j.journal
// with j >= n and j % n == k, left behind by a scale-down): it adopts them,
// resends their pending signals with their original bytes and ids, listens
// to their ack topics and gives up on them like on its own. One RunLoop:
// the two SUB sockets, then the monitors and the journal probe, then the
// resend scan, the adoption scan and the stats as timers. Not thread-safe:
// everything runs on the thread that calls run() / poll_once().
//
// A journal it cannot write (disk full...) stops the emission: a signal whose
// record fails is dropped before it is sent (counted, signals_not_journaled),
// the failure is logged with the file and errno at a bounded rate and shown
// in the stats ("emitting": false, "journal_state", "alert"); the next signal,
// or a probe every journal_probe_ns, tries again, and a success resumes.
//
// Cancels are not journaled: an instance keeps its open orders (emitted this
// run, or seen in a non-final ORDER event) and its pending cancels in memory,
// so a restarted instance forgets the cancels it had under way.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/clock_skew.hpp"
#include "common/config.hpp"
#include "common/dead_letter.hpp"
#include "common/disk_watch.hpp"
#include "common/histogram.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/run_loop.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "common/zmq_util.hpp"
#include "proto/codec.hpp"
#include "strategy/feed.hpp"
#include "strategy/plugin.hpp"
#include "strategy/signal_journal.hpp"
#include "strategy/strategies.hpp"
#include "tp/strategy.hpp"

namespace tp::strategy {

class StrategyNode {
 public:
  // Runs shard `shard` of `shards` of the strategy group `group` (empty: the
  // config's first group). Opens the journal (replaying pending signals),
  // adopts the journals of departed shards, connects every socket, creates
  // the strategy and starts it. Throws tp::ConfigError for a bad shard or
  // group, a python group, or parameters the strategy refuses or leaves
  // unread; PluginError for a plugin that cannot be used; JournalLocked when
  // another process holds this shard's journal; std::runtime_error for an
  // endpoint or journal that cannot be used. `strategy`, when given, runs in
  // place of the one the group names (an embedded or a test strategy).
  StrategyNode(zmq::context_t& ctx, const Config& cfg, std::uint32_t shard, std::uint32_t shards,
               const Clock& clock, const Security& security = Security::none(), std::string_view group = {},
               StrategyPtr strategy = nullptr);
  ~StrategyNode();

  // Loops until tp::stop_requested(), then writes the final stats. Returns 0.
  int run();
  // One turn of the loop: a poll (waiting at most `max_wait_ms`, capped by
  // the next timer and 100 ms), the messages that arrived, and the timers
  // that are due.
  void poll_once(int max_wait_ms = 100);
  // Writes <run.dir>/<group>-<k>.stats.json now, and hands the same figures
  // to the metrics server when [metrics] port is set; false when the file
  // could not be written.
  bool write_stats();
  // False while this instance's own journal cannot be written: no new signal
  // is sent then.
  bool emitting() const noexcept { return emitting_; }

  // While not emitting, the journal is probed (a boot record) this often.
  static constexpr std::int64_t journal_probe_ns = 500'000'000;

  const std::vector<std::string>& instruments() const noexcept { return symbols_; }
  const StrategyGroup& group() const noexcept { return group_; }
  const std::string& stats_path() const noexcept { return stats_path_; }
  // Unacked signals of this shard and of every adopted journal.
  std::size_t signals_pending() const noexcept;
  // Cancels sent (or waiting for their signal's ack) and not yet acked.
  std::size_t cancels_pending() const noexcept { return cancels_.size(); }
  // Orders of this instance not known to be final, the ones cancel() takes.
  std::size_t orders_open() const noexcept { return open_orders_.size(); }
  // Shards whose journals this instance has adopted, ascending.
  std::vector<std::uint32_t> adopted_shards() const;
  std::string stats_json();
  // The stats' figures as Prometheus metrics (tp_strategy_* and the shared
  // tp_connections_*, tp_disk_*, tp_dead_letters_*), labelled program,
  // process and group: README "Metrics (Prometheus)".
  std::string metrics_text() const;

 private:
  // One instrument this shard trades: its feed's sequence, its last tick
  // (what a signal defaults to and is caused by) and the group's position
  // in it (the config's Instrument is what the instrument is; this is our
  // state of it).
  struct Traded {
    std::string symbol;
    SeqTracker seq;
    bool ticked = false;
    double bid = 0;
    double ask = 0;
    std::uint64_t tick_seq = 0;
    std::int64_t tick_gateway_ts_ns = 0;
    double position = 0;
    bool position_known = false;
  };
  class Host;  // the tp::Context served to the strategy
  // A cancel under way: its encoded CancelRequest, resent every resend_ns_
  // until a SignalAck with cancel = true (or a final ORDER event) ends it.
  struct PendingCancel {
    std::string payload;
    std::int64_t next_send_ns = 0;
    bool sent = false;  // at least once (held while the signal is unacked)
  };
  // Heterogeneous lookup: the topic frame is found without building a string.
  struct TopicHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  // A departed shard's journal, held (and locked) until this process ends.
  struct AdoptedJournal {
    std::uint32_t shard = 0;
    std::unique_ptr<SignalJournal> journal;
    std::unique_ptr<SignalOutbox> outbox;
    bool compacted_empty = false;  // rewritten as its boot record once nothing was pending
  };

  // Adopts every departed shard's journal in the run dir that is this
  // instance's and not yet held; a locked one is left for the next scan.
  void adopt_departed(std::int64_t now_ns);
  // Dead-letters what replay could not use: unreadable committed records
  // (journal_corrupt) and a torn last record that held a signal (journal_torn).
  void report_replay(const SignalJournal& journal);
  // Subscribes to the ack topic of every pending signal of `outbox` and to
  // that of `shard`.
  void subscribe_acks(std::uint32_t shard, const SignalJournal& journal);
  void subscribe_ack_topic(const std::string& topic);
  void give_up_due(SignalOutbox& outbox, std::int64_t now_ns, const std::string& origin);
  void on_feed_message(std::size_t frame_count);
  void on_tick(Traded& inst, std::string_view payload);
  // The dead-letter reason for a tick stamped too long ago or too far ahead
  // of this host's clock, or empty when its gateway_ts_ns is plausible.
  std::string_view timestamp_problem(const proto::TickEvent& tick, std::int64_t now_ns,
                                     std::string& detail) const;
  void on_heartbeat(const proto::Heartbeat& hb);
  void on_ack_message(std::size_t frame_count);
  // The strategy's emit(): checks the request, fills in the defaults, then
  // journals and sends. The signal id, or empty when nothing was sent.
  std::string emit(const tp::SignalRequest& request);
  // The order terms of a request over the group's defaults and the signal's
  // trigger price and TTL; empty `why` when they hold, else why not.
  proto::OrderTerms terms_of(const tp::SignalRequest& r, double trigger, std::int64_t now_ns,
                             std::int64_t ttl_ns, std::string& why) const;
  // The strategy's cancel(): false when `signal_id` is not an open order.
  bool cancel_order(std::string_view signal_id, std::string_view reason);
  // A SignalAck with cancel = true: ends the cancel of its signal.
  void on_cancel_ack(const proto::SignalAck& ack);
  // Sends what is due of the pending cancels (held while their signal is
  // itself unacked: a cancel must not overtake its order).
  void send_cancels_due(std::int64_t now_ns);
  bool signal_unacked(std::string_view signal_id) const;
  void send_cancel(PendingCancel& cancel, std::int64_t now_ns);
  // The order of `signal_id` is over (final, refused, or given up): no
  // longer open, and a cancel of it ends. True when a cancel was under way.
  bool order_over(std::string_view signal_id);
  void remember_open(std::string_view signal_id);
  void on_order_event(std::string_view payload);
  void on_position(std::string_view payload);
  // A refused signal (ack REJECTED) of `outbox`, told to the strategy.
  void tell_refusal(const SignalOutbox& outbox, const proto::SignalAck& ack);
  // Runs a callback of the strategy; what it throws is dead-lettered
  // (strategy_error) and counted, and the instance carries on.
  template <class F>
  void guarded(std::string_view what, F&& f);
  // Tells the strategy when the feed died or came back.
  void check_feed(std::int64_t now_ns);
  // Journals a new signal (after this run's boot record, if that is still
  // owed); false when it could not, and then the signal must not be sent.
  bool journal_signal(const proto::TradingSignal& signal, std::string_view payload, std::int64_t now_ns);
  // Writes this run's boot record when it is still owed (or, at start, the
  // compaction that drops reported unreadable records); false on failure.
  bool ensure_boot_record();
  // A failed journal write of `journal`: counted, logged through
  // write_failures_ with `consequence`.
  void journal_write_failed(const SignalJournal& journal, std::string_view what,
                            std::string_view consequence);
  // This instance's journal could not take a signal: emission stops.
  void stop_emitting(std::int64_t now_ns);
  // A write to this instance's journal succeeded: emission resumes.
  void journal_ok();
  // Acks `signal_id` in `outbox`, reporting an A record that failed.
  bool ack_in(SignalOutbox& outbox, std::string_view signal_id);
  // Compacts `outbox`'s journal now, reporting a failure (and putting off
  // the next attempt by compact_retry_ns); true when it compacted.
  bool compact_journal(SignalOutbox& outbox, std::int64_t boot_ms, std::int64_t now_ns);
  bool send_signal(std::string_view payload);
  // Registers the sockets, the per-turn work and the timers with loop_.
  void add_loop_callbacks();
  // The resend timer: resends what is due, retries owed settlement records,
  // gives up on what expired and compacts, in every outbox (wall `now_ns`).
  void scan_outboxes(std::int64_t now_ns);
  // While not emitting: a boot record every journal_probe_ns tells when
  // the journal takes writes again.
  void probe_journal(std::int64_t now_ns);
  // Sequence gaps and out-of-order ticks over every traded instrument.
  std::pair<std::uint64_t, std::uint64_t> sequence_totals() const;

  const Config cfg_;
  const StrategyGroup group_;
  // Made before any file is touched (a plugin that cannot be loaded fails
  // the start with nothing left behind) and destroyed last: the loop's timers
  // hold the strategy's callbacks, code of a plugin that must stay loaded.
  StrategyPtr strategy_;
  const std::uint32_t shard_;
  const std::uint32_t shards_;
  const Clock& clock_;
  const std::string name_;  // "strategy-<k>"

  DeadLetterSender dead_letters_;
  zmq::socket_t ticks_;
  zmq::socket_t acks_;
  zmq::socket_t signals_;
  // After the sockets they watch: destroyed first.
  SocketMonitor ticks_monitor_;
  SocketMonitor acks_monitor_;
  std::string ack_topic_;
  std::set<std::string, std::less<>> ack_topics_;  // own and adopted shards'

  std::vector<std::string> symbols_;
  // "TICK.<sym>" -> state. A hash map: the lookup costs the same for 10 or
  // 10,000 instruments (a std::map walked ~14 nodes at 10,000).
  std::unordered_map<std::string, Traded, TopicHash, std::equal_to<>> by_topic_;
  // The same Traded by symbol, and the exact ORDER.<sym> topics (SUB
  // filters are prefixes).
  std::unordered_map<std::string, Traded*, TopicHash, std::equal_to<>> by_symbol_;
  std::set<std::string, std::less<>> order_topics_;
  std::string position_topic_;
  std::string signal_prefix_;  // "<group>.": the group's signal ids
  // Filled quantity already counted into the position, per order not yet final.
  std::unordered_map<std::string, double, TopicHash, std::equal_to<>> filled_;
  // Orders whose final event was counted, the last settled_memory of them: a
  // repeated final event (a reconciliation republishes one) counts nothing.
  static constexpr std::size_t settled_memory = 4096;
  std::unordered_set<std::string, TopicHash, std::equal_to<>> settled_;
  std::deque<std::string> settled_order_;
  // This instance's orders not known to be final (what cancel() may cancel),
  // each with the number it was remembered under; open_by_age_ holds them
  // oldest first. At most open_memory (then the oldest is forgotten).
  static constexpr std::size_t open_memory = 65536;
  std::unordered_map<std::string, std::uint64_t, TopicHash, std::equal_to<>> open_orders_;
  std::map<std::uint64_t, std::string> open_by_age_;
  std::uint64_t open_count_ = 0;
  std::unordered_map<std::string, PendingCancel, TopicHash, std::equal_to<>> cancels_;
  // The group's order terms, for a request that leaves them at zero.
  proto::OrderType default_order_type_ = proto::OrderType::market;
  proto::TimeInForce default_time_in_force_ = proto::TimeInForce::ioc;
  FeedMonitor feed_;
  bool feed_reported_alive_ = false;  // as last told to the strategy

  SignalJournal journal_;
  SignalOutbox outbox_;
  SignalIdGenerator ids_;
  std::vector<AdoptedJournal> adopted_;

  proto::Decoder decoder_;
  proto::TickEvent tick_;  // decoded into in place: no allocation per tick
  proto::Encoder encoder_;
  std::vector<zmq::message_t> frames_;
  LogLimiter limiter_;
  WriteFailures write_failures_;
  DiskWatch disk_;
  LatencyHistogram tick_latency_;
  metrics::Histogram tick_latency_seconds_{metrics::latency_bounds_seconds()};  // the same, for Prometheus
  ClockLags clock_lags_;
  LagWindow& tick_lag_ = clock_lags_.add("gateway");  // the gateway's clock, from its ticks' stamps
  std::string stats_path_;

  std::int64_t resend_ns_;
  std::int64_t give_up_ns_;
  std::int64_t resend_scan_ns_;
  Freshness freshness_;
  std::int64_t next_journal_probe_ns_ = 0;
  std::int64_t next_compact_ns_ = 0;  // after a failed compaction: not before then

  // The own journal's state: emitting_ false from a failed signal (or boot)
  // record until a record is written again; boot_journaled_ false while this
  // run's boot record (or the start-up rewrite) is still owed.
  bool emitting_ = true;
  bool boot_journaled_ = false;
  bool rewrite_owed_ = false;  // the start-up compaction that drops unreadable records
  std::string journal_error_;  // why not emitting, for the alert
  std::int64_t last_stats_ns_ = 0;
  std::uint64_t ticks_at_last_stats_ = 0;
  double ticks_per_s_ = 0;

  std::uint64_t ticks_received_ = 0;
  std::uint64_t heartbeats_ = 0;
  proto::Heartbeat last_heartbeat_;  // to tell a restarted gateway
  std::uint64_t wrong_topic_ = 0;
  std::uint64_t feed_restarts_ = 0;
  std::uint64_t signals_emitted_ = 0;
  std::uint64_t signals_suppressed_ = 0;  // emits while the feed was dead
  std::uint64_t signals_stale_ = 0;       // emits whose tick was older than max_signal_tick_age_ms
  std::uint64_t heartbeats_refused_ = 0;  // stamped too old or too far ahead: not keeping the feed alive
  std::uint64_t signals_acked_ = 0;
  std::uint64_t signals_resent_ = 0;
  std::uint64_t signals_given_up_ = 0;
  SendCounters signal_sends_;             // dropped: the executor's queue was full, or no executor
  std::uint64_t signal_send_errors_ = 0;  // a send that threw (logged)
  std::uint64_t acks_unmatched_ = 0;
  std::uint64_t journal_errors_ = 0;          // failed journal writes of any kind, own and adopted
  std::uint64_t signals_not_journaled_ = 0;   // dropped before sending: their record failed
  std::uint64_t acks_not_journaled_ = 0;      // acked, A record failed: resent once after a restart
  std::uint64_t give_ups_not_journaled_ = 0;  // given up, X record failed: resent once after a restart
  std::uint64_t compactions_failed_ = 0;
  std::uint64_t emission_stops_ = 0;   // times emission stopped for a journal failure
  std::uint64_t journal_corrupt_ = 0;  // unreadable committed records reported
  std::uint64_t journal_torn_ = 0;     // torn last records set aside
  std::uint64_t journal_locked_ = 0;   // adoptions put off: another process held the journal
  std::uint64_t signals_refused_ = 0;  // emit() requests refused (not ours, invalid, no price yet)
  std::uint64_t strategy_errors_ = 0;  // exceptions out of the strategy's callbacks
  std::uint64_t order_updates_ = 0;    // order events and refusals told to the strategy
  std::uint64_t position_reports_ = 0;
  std::uint64_t cancels_sent_ = 0;           // cancels sent a first time
  std::uint64_t cancels_resent_ = 0;         // sent again, no ack yet
  std::uint64_t cancels_acked_ = 0;          // acked ACCEPTED or DUPLICATE
  std::uint64_t cancels_refused_ = 0;        // acked REJECTED (unknown_order, not_owner, order_final)
  std::uint64_t cancels_overtaken_ = 0;      // ended by the order's final event before an ack
  std::uint64_t cancels_not_open_ = 0;       // cancel() of an id that is no open order: false
  std::uint64_t cancel_acks_unmatched_ = 0;  // a cancel ack for no pending cancel (a repeat)
  SendCounters cancel_sends_;

  // What the strategy is served.
  tp::Params params_;
  std::unique_ptr<Host> host_;
  // While the strategy handles a tick that ends a dead spell: what the
  // indicators say across the outage is stale, so no signal from it.
  bool suppress_emits_ = false;

  std::unique_ptr<metrics::MetricsServer> metrics_;  // nullptr: [metrics] port = 0
  RunLoop loop_;                                     // last: it holds the sockets above and callbacks on this
};

}  // namespace tp::strategy
