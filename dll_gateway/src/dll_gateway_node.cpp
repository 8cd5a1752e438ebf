#include "dll_gateway/dll_gateway_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "common/endpoints.hpp"
#include "common/stats.hpp"
#include "common/zmq_util.hpp"

namespace tp::dll_gateway {

namespace {

// Ticks handled per loop turn at most, so that a flood of market data
// cannot starve the order socket.
constexpr int max_ticks_per_turn = 1000;
constexpr std::size_t max_groups_per_turn = 4;
constexpr int max_wait_ms = 100;  // the longest poll: the stop flag is looked at least this often
// Reports queued per subscriber: 10,000 x ~250 B; beyond it a stalled
// executor loses reports from the PUB (counted nowhere by ZeroMQ) and fetches
// the gap by seq from the store.
constexpr int report_sndhwm = 10000;

// The directory a file is in ("." for a bare name).
std::string dir_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

DllGatewayNode::DllGatewayNode(zmq::context_t& ctx, const Config& cfg, BrokerPlugin& plugin,
                               OrderStore& store, const Clock& clock, const Security& security)
    : plugin_(plugin),
      store_(store),
      clock_(clock),
      desk_(store, plugin, clock,
            [this](const StoreError* error, std::string_view consequence) {
              on_store_write(error, consequence);
            }),
      stats_path_(cfg.run_path("", "dll_gateway.stats.json")),
      stats_interval_(cfg.run.stats_interval_ms),
      max_order_quantity_(cfg.risk.max_order_quantity),
      orders_(make_socket(ctx, zmq::socket_type::router, SocketOptions{.network = cfg.network})),
      reports_(
          make_socket(ctx, zmq::socket_type::pub,
                      SocketOptions{.linger_ms = 1000, .sndhwm = report_sndhwm, .network = cfg.network})),
      orders_monitor_(ctx, orders_),
      dead_letters_(ctx, cfg.endpoints.dead_letters, "dll_gateway", clock, security),
      disk_({dir_of(store.path()), cfg.run.dir}, cfg.run.min_free_bytes),
      min_free_bytes_(cfg.run.min_free_bytes),
      loop_(clock, RunLoop::default_stop_source(), max_wait_ms) {
  for (const auto& i : cfg.instruments) instruments_.insert(i.symbol);
  security.bind(orders_, cfg.endpoints.orders);
  security.bind(reports_, reports_endpoint(cfg.endpoints.reports, cfg.endpoints.orders));
  if (plugin_.wants_quotes()) {
    sub_.emplace(make_socket(ctx, zmq::socket_type::sub, SocketOptions{.network = cfg.network}));
    sub_monitor_.emplace(ctx, *sub_, cfg.endpoints.ticks);
    sub_->set(zmq::sockopt::subscribe, proto::tick_topic_prefix);
    security.connect(*sub_, cfg.endpoints.ticks);
  }
  add_loop_callbacks();
  metrics_ = metrics::start_metrics_server(cfg.metrics, "dll_gateway", "dll_gateway");
}

void DllGatewayNode::add_loop_callbacks() {
  loop_.add_reader(orders_, [this] {
    // Each request may wait on the broker: the stop flag is looked at
    // between groups, so that SIGTERM is not held up by a queue of them.
    for (std::size_t i = 0; i < max_groups_per_turn && !loop_.stopping() && handle_requests(); ++i) {
    }
  });
  if (sub_) {
    loop_.add_reader(*sub_, [this] {
      for (int i = 0; i < max_ticks_per_turn && handle_tick(); ++i) {
      }
      poll_reports();  // the ticks may have filled resting orders
    });
  }
  loop_.add_work([this] {
    orders_monitor_.drain();
    if (sub_monitor_) sub_monitor_->drain();
    watch_connections();
    checkpoint_if_quiet();
    return 0;
  });
  const std::int64_t stats_ns = stats_interval_.count() * ns_per_ms;
  loop_.add_timer(clock_.monotonic_ns() + stats_ns, stats_ns, RunLoop::Cadence::fixed_delay,
                  [this](std::int64_t now) {
                    disk_.poll(now);
                    write_stats();
                  });
  const std::int64_t poll_ns = std::int64_t{poll_interval_ms} * ns_per_ms;
  loop_.add_timer(clock_.monotonic_ns() + poll_ns, poll_ns, RunLoop::Cadence::fixed_delay,
                  [this](std::int64_t) { poll_reports(); });
}

void DllGatewayNode::poll_reports() {
  desk_.poll();
  publish_reports();
}

void DllGatewayNode::publish_reports() {
  for (const auto& r : desk_.take_reports())
    publish(reports_, proto::report_topic(r.instrument), encoder_.encode(r), counters_.reports);
}

void DllGatewayNode::run() {
  spdlog::info("serving orders with broker plugin {} (store {}, report stream {} at seq {})", plugin_.path(),
               store_.path(), store_.stream(), store_.last_seq());
  publish_metrics();  // a scrape during the start-up settle sees zeros, not a 503
  desk_.settle();
  publish_reports();
  loop_.run();
  write_stats();
  const auto& c = desk_.counters();
  spdlog::info("stopped: {} orders, {} duplicates, {} queries, {} fills, {} rejects, {} dead letters",
               c.orders_received, c.duplicates, c.queries, c.fills, c.rejects,
               dead_letters_.sent() + dead_letters_.dropped());
}

void DllGatewayNode::poll_once(std::chrono::milliseconds timeout) {
  loop_.run_once(static_cast<int>(std::min<std::int64_t>(timeout.count(), max_wait_ms)));
}

void DllGatewayNode::watch_connections() {
  const auto failed = connections().accept_failed;
  if (failed == accept_failed_logged_) return;
  std::uint64_t suppressed = 0;
  if (limiter_.allow("accept_failed", monotonic_ns(), suppressed)) {
    spdlog::error(
        "{} incoming connections refused so far (accept failed: out of descriptors?); "
        "those peers are not served, the rest are",
        failed);
    accept_failed_logged_ = failed;
  }
}

void DllGatewayNode::checkpoint_if_quiet() {
  // Between groups of requests: in a commit, the copy into the database and
  // its fdatasync(2) would hold up the group's answers.
  checkpoint_.run(
      store_, clock_.monotonic_ns(), [&] { return (orders_.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0; },
      [&](const StoreError& e) {
        on_store_write(&e, "its write-ahead log grows until a checkpoint succeeds; retrying every second");
      });
}

void DllGatewayNode::on_store_write(const StoreError* error, std::string_view consequence) {
  if (!error) {
    write_failures_.recovered(store_.path());
    return;
  }
  // SQLite names the file and its own code in the message; errno is the OS's.
  write_failures_.record(store_.path(), error->what(), error->sys_errno(), consequence);
}

std::string DllGatewayNode::alert() const {
  const auto& failing = write_failures_.failing();
  if (failing.empty()) return {};
  const auto& [path, why] = *failing.begin();
  std::string text = "cannot write " + std::filesystem::path(path).filename().string() + ": ";
  // The last ": " part is the errno's text (or SQLite's message).
  auto cut = why.rfind(": ");
  text += cut == std::string::npos ? why : why.substr(cut + 2);
  if (failing.size() > 1) text += " (+" + std::to_string(failing.size() - 1) + " more files)";
  return text;
}

ConnectionCounters DllGatewayNode::connections() const noexcept {
  ConnectionCounters c = orders_monitor_.counters();
  if (sub_monitor_) c += sub_monitor_->counters();
  return c;
}

bool DllGatewayNode::read_request(Request& r, bool& got) {
  std::size_t total = 0;
  got = recv_message(orders_, frames_, max_kept_frames + 2, total);
  if (!got) return false;
  // A REQ peer's request arrives as [routing id]["" delimiter][body...].
  if (total < 3 || frames_[1].size() != 0) {
    // No envelope to answer through: dropped, as a REP socket drops it.
    ++counters_.bad_requests;
    dead_letters_.send("bad_frames",
                       "a request without a REQ envelope (" + std::to_string(total) + " frames)",
                       join_frames(frames_, std::min(total, max_kept_frames)));
    return false;
  }
  r.peer = std::move(frames_[0]);
  r.payload = std::move(frames_[2]);
  r.order.reset();
  r.refusal.reset();
  const std::size_t body = total - 2;
  if (body != 1) {
    r.refusal = refuse("bad_frames", "expected 1 frame, got " + std::to_string(body), [&] {
      std::string joined(view_of(r.payload));
      for (std::size_t i = 3; i < std::min(total, max_kept_frames + 2); ++i)
        joined.append("|").append(view_of(frames_[i]));
      return joined;
    }());
    return true;
  }
  auto bytes = bytes_of(r.payload);
  if (auto type = decoder_.peek_type(bytes); type && type.value() == proto::MsgType::order_request) {
    auto order = decoder_.decode_order_request(bytes);
    if (!order) {
      r.refusal = refuse(proto::to_string(order.error().code), order.error().detail, view_of(r.payload));
    } else if (auto refusal = refuse_order(order.value(), view_of(r.payload))) {
      r.refusal = std::move(refusal);
    } else {
      order_lag_.observe(clock_.now_ns(), order.value().sent_ts_ns);
      r.order = std::move(order).value();
    }
  }
  return true;
}

bool DllGatewayNode::handle_requests() {
  std::size_t count = 0;
  std::size_t bytes = 0;
  for (std::size_t read = 0; read < max_requests_per_group && bytes < max_group_bytes; ++read) {
    if (requests_.size() == count) requests_.emplace_back();
    bool got = false;
    if (read_request(requests_[count], got)) bytes += requests_[count++].payload.size();
    if (!got) break;
  }
  if (count == 0) return false;
  ++counters_.request_groups;
  // The group's new orders get their PENDING rows in one commit, before any
  // of them goes to the broker.
  group_orders_.clear();
  for (std::size_t i = 0; i < count; ++i)
    if (requests_[i].order) group_orders_.push_back(&*requests_[i].order);
  desk_.prepare(group_orders_);
  for (std::size_t i = 0; i < count; ++i) {
    auto& r = requests_[i];
    std::string_view payload;
    try {
      if (r.refusal) {
        payload = encoder_.encode(*r.refusal);
      } else if (r.order) {
        payload = encoder_.encode(desk_.handle(*r.order));
      } else {
        payload = answer(r.payload);
      }
    } catch (const std::exception& e) {
      // Whatever went wrong with this one request, its peer gets an answer.
      payload = encoder_.encode(refuse("internal_error", e.what(), view_of(r.payload)));
    }
    // At once: the peer records this answer while the group's next orders
    // are at the broker.
    send_answer(r, payload);
    r.payload = zmq::message_t();  // a flood's large frames are not kept between groups
  }
  desk_.flush();  // the group's DONE rows, while the answers travel
  publish_reports();
  return true;
}

void DllGatewayNode::send_answer(Request& r, std::string_view payload) {
  // A peer that went away (a Lazy Pirate reopen) has no route any more:
  // ROUTER drops the answer, and the peer's retry gets the stored outcome.
  const auto more = zmq::send_flags::dontwait | zmq::send_flags::sndmore;
  const bool sent =
      orders_.send(r.peer, more) && orders_.send(zmq::const_buffer(), more) &&
      orders_.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
  ++(sent ? counters_.replies.sent : counters_.replies.dropped);
}

std::string_view DllGatewayNode::answer(const zmq::message_t& frame) {
  auto payload = bytes_of(frame);
  auto refused = [&](const proto::DecodeError& e) {
    return encoder_.encode(refuse(proto::to_string(e.code), e.detail, view_of(frame)));
  };
  auto type = decoder_.peek_type(payload);
  if (!type) return refused(type.error());
  switch (type.value()) {
    case proto::MsgType::order_request: {
      auto order = decoder_.decode_order_request(payload);
      if (!order) return refused(order.error());
      if (auto refusal = refuse_order(order.value(), view_of(frame))) return encoder_.encode(*refusal);
      order_lag_.observe(clock_.now_ns(), order.value().sent_ts_ns);
      return encoder_.encode(desk_.handle(order.value()));
    }
    case proto::MsgType::order_query: {
      auto query = decoder_.decode_order_query(payload);
      if (!query) return refused(query.error());
      return encoder_.encode(desk_.handle(query.value()));
    }
    case proto::MsgType::order_cancel: {
      auto cancel = decoder_.decode_order_cancel(payload);
      if (!cancel) return refused(cancel.error());
      return encoder_.encode(desk_.handle(cancel.value()));
    }
    case proto::MsgType::report_query: {
      auto query = decoder_.decode_report_query(payload);
      if (!query) return refused(query.error());
      return encoder_.encode(desk_.handle(query.value()));
    }
    case proto::MsgType::open_orders_query: {
      auto query = decoder_.decode_open_orders_query(payload);
      if (!query) return refused(query.error());
      return encoder_.encode(desk_.handle(query.value()));
    }
    case proto::MsgType::position_query: {
      auto query = decoder_.decode_position_query(payload);
      if (!query) return refused(query.error());
      return encoder_.encode(position_of(query.value()));
    }
    default:
      return encoder_.encode(refuse(proto::to_string(proto::ErrorCode::wrong_message),
                                    "expected OrderRequest, OrderQuery, OrderCancel, ReportQuery, "
                                    "OpenOrdersQuery or PositionQuery, got " +
                                        std::string(proto::to_string(type.value())),
                                    view_of(frame)));
  }
}

proto::PositionReply DllGatewayNode::position_of(const proto::PositionQuery& query) {
  ++counters_.position_queries;
  proto::PositionReply r;
  r.instrument = query.instrument;
  r.ts_ns = clock_.now_ns();
  if (auto q = plugin_.position(query.instrument)) {
    r.known = true;
    r.quantity = *q;
  } else {
    r.reason = "the broker plugin could not tell";
  }
  return r;
}

proto::OrderReply DllGatewayNode::refuse(std::string_view reason, const std::string& detail,
                                         std::string_view original) {
  ++counters_.bad_requests;
  dead_letters_.send(reason, detail, original);
  proto::OrderReply r;
  r.client_order_id = "-";  // unknown: the request could not be read
  r.status = proto::OrderStatus::rejected;
  r.reason = std::string(reason) + ": " + detail;
  r.broker_ts_ns = clock_.now_ns();
  return r;
}

std::optional<proto::OrderReply> DllGatewayNode::refuse_order(const proto::OrderRequest& order,
                                                              std::string_view original) {
  std::string_view reason;
  std::string detail;
  if (!instruments_.contains(order.instrument)) {
    reason = "unknown_instrument";
    detail = "instrument '" + order.instrument + "' is not configured";
  } else if (!plugin_.supports_resting_orders() && order.terms() != proto::OrderTerms{}) {
    ++counters_.unsupported_orders;
    reason = "unsupported_order";
    detail = "broker plugin " + plugin_.path() + " is ABI revision " + std::to_string(plugin_.abi_version()) +
             ": market IOC orders only, not " + std::string(proto::to_string(order.order_type)) + " " +
             std::string(proto::to_string(order.time_in_force));
  } else if (order.quantity > max_order_quantity_) {
    reason = "risk_rejected";
    detail = "quantity " + std::to_string(order.quantity) + " > risk.max_order_quantity " +
             std::to_string(max_order_quantity_);
  } else {
    return std::nullopt;
  }
  // Not stored: nothing reached the broker, and a retry is refused the same way.
  ++counters_.refused_orders;
  dead_letters_.send(reason, detail, original);
  proto::OrderReply r;
  r.client_order_id = order.client_order_id;
  r.status = proto::OrderStatus::rejected;
  r.reason = std::string(reason) + ": " + detail;
  r.broker_ts_ns = clock_.now_ns();
  return r;
}

bool DllGatewayNode::handle_tick() {
  std::size_t total = 0;
  if (!recv_message(*sub_, frames_, 2, total)) return false;
  auto bad = [&](std::string_view reason, const std::string& detail) {
    ++counters_.bad_ticks;
    dead_letters_.send(reason, detail, join_frames(frames_, std::min<std::size_t>(total, 2)));
    return true;
  };
  if (total != 2) return bad("bad_frames", "expected 2 frames (topic, tick), got " + std::to_string(total));
  auto tick = decoder_.decode_tick(bytes_of(frames_[1]));
  if (!tick) return bad(proto::to_string(tick.error().code), tick.error().detail);
  if (!proto::topic_matches(view_of(frames_[0]), proto::tick_topic(tick->instrument)))
    return bad("topic_mismatch",
               "tick for " + tick->instrument + " on topic " + std::string(view_of(frames_[0])));
  if (!instruments_.contains(tick->instrument))
    return bad("unknown_instrument", "instrument '" + tick->instrument + "' is not configured");
  ++counters_.ticks_received;
  plugin_.on_tick(tick.value());  // the whole tick: sizes cap fills, seq names the quote a fill matched
  return true;
}

std::string DllGatewayNode::stats_json() const {
  const auto& c = desk_.counters();
  JsonObject by_reason;
  for (const auto& [reason, n] : dead_letters_.by_reason()) by_reason.add(reason, n);
  JsonObject rejects_by_reason;
  for (const auto& [reason, n] : c.rejects_by_reason) rejects_by_reason.add(reason, n);
  auto o = stats_header("dll_gateway", clock_.now_ns());
  o.add("orders_received", c.orders_received)
      .add("duplicates", c.duplicates)
      .add("queries", c.queries)
      .add("submitted", c.submitted)
      .add("fills", c.fills)
      .add("partial_fills", c.partial_fills)
      .add("rejects", c.rejects)
      .add("expired", c.expired)
      .add("broker_errors", c.broker_errors)
      .add("store_errors", c.store_errors)
      .add("bad_requests", counters_.bad_requests)
      .add("request_groups", counters_.request_groups)
      .add("ticks_received", counters_.ticks_received)
      .add("bad_ticks", counters_.bad_ticks)
      .add("dead_letters", dead_letters_.sent() + dead_letters_.dropped())
      .add("refused_orders", counters_.refused_orders)
      .add("position_queries", counters_.position_queries)
      .add("unsupported_orders", counters_.unsupported_orders)
      .add("cancels_received", c.cancels_received)
      .add("cancels_sent", c.cancels_sent)
      .add("cancel_duplicates", c.cancel_duplicates)
      .add("cancels_too_late", c.cancels_too_late)
      .add("reports", c.reports)
      .add("report_seq", store_.last_seq())
      .add("report_stream", store_.stream())
      .add("reports_published", counters_.reports.sent)
      .add("broker_reports", c.broker_reports)
      .add("reports_stale", c.reports_stale)
      .add("invalid_transitions", c.invalid_transitions)
      .add("reports_unknown_order", c.reports_unknown_order)
      .add("unknown_open_orders", c.unknown_open_orders)
      .add("report_queries", c.report_queries)
      .add("open_orders_queries", c.open_orders_queries)
      .add("rejects_by_reason", rejects_by_reason)
      .add("dead_letters_dropped", dead_letters_.dropped())
      .add("dead_letters_by_reason", by_reason)
      .add("connections_dropped", connections().dropped)
      .add("handshakes_failed", connections().handshakes_failed)
      .add("redials", connections().redials)
      .add("accept_failed", connections().accept_failed)
      .add("open_files", open_files())
      .add("store_checkpoints", checkpoint_.made())
      .add("store_unknown", c.store_unknown)
      .add("plugin", plugin_.path())
      .add("db", store_.path());
  clock_lags_.add_stats(o);
  disk_.add_stats(o);
  write_failures_.add_stats(o);
  if (auto a = alert(); !a.empty()) o.add("alert", a);
  return o.str();
}

bool DllGatewayNode::write_stats() {
  clock_lags_.roll();
  const bool written = write_stats_file(stats_path_, stats_json(), write_failures_,
                                        "the supervisor sees no heartbeat until it succeeds");
  publish_metrics();
  return written;
}

DllGatewayFigures DllGatewayNode::figures() const {
  DllGatewayFigures f;
  f.desk = desk_.counters();
  f.node = counters_;
  f.report_seq = store_.last_seq();
  f.store_checkpoints = checkpoint_.made();
  f.dead_letters_sent = dead_letters_.sent();
  f.dead_letters_dropped = dead_letters_.dropped();
  const auto& by_reason = dead_letters_.by_reason();
  f.dead_letters_by_reason = std::map<std::string, std::uint64_t>(by_reason.begin(), by_reason.end());
  return f;
}

void DllGatewayNode::publish_metrics() {
  if (!metrics_) return;
  metrics::MetricsText m({{"program", "dll_gateway"}, {"process", "dll_gateway"}});
  add_dll_gateway_metrics(m, figures());
  add_broker_call_metrics(m, desk_);
  clock_lags_.add_metrics(m);
  metrics::add_connection_metrics(m, connections());
  metrics::add_disk_metrics(m, disk_, min_free_bytes_, write_failures_);
  metrics_->publish(m.str(), clock_.now_ns());
}

}  // namespace tp::dll_gateway
