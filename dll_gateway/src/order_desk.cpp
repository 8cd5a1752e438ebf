#include "dll_gateway/order_desk.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <utility>

#include "proto/codec.hpp"
#include "proto/order_lifecycle.hpp"

namespace tp::dll_gateway {

namespace {

// Room left for the ReportBatch's own fields under proto::max_payload_bytes.
constexpr std::size_t max_batch_report_bytes = 60 * 1024;

proto::OrderReply make_reply(const std::string& client_order_id, proto::OrderStatus status,
                             std::string reason, std::int64_t ts_ns) {
  proto::OrderReply r;
  r.client_order_id = client_order_id;
  r.status = status;
  r.reason = std::move(reason);
  r.broker_ts_ns = ts_ns;
  return r;
}

// An order before any answer: the state the first change starts from.
proto::OrderReply unanswered(const std::string& client_order_id) {
  return make_reply(client_order_id, proto::OrderStatus::new_order, "", 0);
}

// When the broker call failed the order may or may not exist at the broker;
// "unknown" tells the executor to retry the same id, which then reconciles
// through the PENDING row (query before any new submit).
proto::OrderReply outcome_unknown(const BrokerAnswer& a, std::int64_t ts_ns) {
  return make_reply(a.reply.client_order_id, proto::OrderStatus::unknown,
                    a.reply.reason + "; outcome unknown, retry the same client order id", ts_ns);
}

proto::OrderProgress progress_of(const proto::OrderReply& r) { return {r.status, r.filled_quantity}; }

// The part of a reason that names its kind ("stale quote" of "stale quote:
// EURUSD last quote 8200 ms old"): a bounded label for counting.
std::string reason_kind(std::string_view reason) {
  auto cut = reason.find(':');
  std::string kind(reason.substr(0, cut == std::string_view::npos ? std::min<std::size_t>(reason.size(), 40)
                                                                  : std::min<std::size_t>(cut, 40)));
  return kind.empty() ? std::string("unspecified") : kind;
}

}  // namespace

std::string_view to_string(BrokerCall call) noexcept {
  switch (call) {
    case BrokerCall::submit:
      return "submit";
    case BrokerCall::query:
      return "query";
    case BrokerCall::cancel:
      return "cancel";
  }
  return "?";
}

template <class Call>
BrokerAnswer OrderDesk::timed(BrokerCall call, Call&& make_call) {
  const std::int64_t start = clock_.monotonic_ns();
  BrokerAnswer answer = make_call();
  broker_latency_[static_cast<std::size_t>(call)].observe(static_cast<double>(clock_.monotonic_ns() - start) /
                                                          1e9);
  return answer;
}

OrderDesk::OrderInfo OrderDesk::info_of(const proto::OrderRequest& order) {
  return {order.instrument, order.side, order.quantity};
}

OrderDesk::OrderInfo OrderDesk::info_of(const StoredOrder& row) {
  return {row.instrument, row.side, row.quantity};
}

std::optional<proto::ExecutionReport> OrderDesk::report_of(const OrderInfo& info,
                                                           const proto::OrderReply& known,
                                                           const proto::OrderReply& now,
                                                           const BrokerReport* from_broker) const {
  if (info.instrument.empty()) return std::nullopt;
  proto::ExecutionReport r;
  r.client_order_id = now.client_order_id;
  r.order_id = now.order_id;
  r.instrument = info.instrument;
  r.side = info.side;
  r.status = now.status;
  r.quantity = info.quantity;
  r.filled_quantity = now.filled_quantity;
  r.avg_price = now.filled_quantity > 0 ? now.fill_price : 0;
  const double delta = now.filled_quantity - known.filled_quantity;
  if (delta > 0) {
    r.last_quantity = delta;
    r.last_price = (now.filled_quantity * now.fill_price - known.filled_quantity * known.fill_price) / delta;
  }
  r.reason = now.reason;
  r.broker_ts_ns = now.broker_ts_ns;
  if (from_broker) {
    // The broker's own figures for this fill are exact where the average
    // arithmetic above rounds; it also names the quote the fill matched.
    if (delta > 0 && from_broker->last_quantity > 0) r.last_price = from_broker->last_price;
    r.quote_seq = from_broker->quote_seq;
    r.quote_ts_ns = from_broker->quote_ts_ns;
  }
  return r;
}

void OrderDesk::count_answer(const proto::OrderReply& known, const proto::OrderReply& now) {
  if (now.filled_quantity > known.filled_quantity) {
    ++counters_.fills;
    if (now.status != proto::OrderStatus::filled) ++counters_.partial_fills;
  }
  if (now.status == proto::OrderStatus::rejected) {
    ++counters_.rejects;
    ++counters_.rejects_by_reason[reason_kind(now.reason)];
  }
}

void OrderDesk::prepare(std::span<const proto::OrderRequest* const> orders) {
  flush();  // a repeat of an id answered earlier must find its DONE row
  prepared_.clear();
  std::vector<const proto::OrderRequest*> fresh;
  std::set<std::string_view> ids;
  try {
    for (const auto* order : orders) {
      // A second copy of an id in the group (a retry that caught up with
      // its first) is handled after the first, which it then finds.
      if (!ids.insert(order->client_order_id).second) continue;
      if (!store_.find(order->client_order_id)) fresh.push_back(order);
    }
  } catch (const StoreError& e) {
    // Nothing is prepared: each handle() looks its id up again (and answers
    // UNKNOWN, unsent, while that fails).
    store_failed(e, "orders are answered UNKNOWN and not sent until it can be read");
    return;
  }
  if (fresh.empty()) return;
  try {
    store_.insert_pending(fresh, clock_.now_ns());
  } catch (const StoreError& e) {
    // None of the group's rows is committed, so none of them is sent.
    store_failed(e, "orders are answered UNKNOWN and not sent until it can be written");
    for (const auto* order : fresh)
      prepared_.emplace(order->client_order_id, unsent(order->client_order_id, e, "PENDING row"));
    return;
  }
  store_ok();
  for (const auto* order : fresh) prepared_.emplace(order->client_order_id, std::nullopt);
}

proto::OrderReply OrderDesk::handle(const proto::OrderRequest& order) {
  if (auto p = prepared_.find(order.client_order_id); p != prepared_.end()) {
    auto refusal = std::move(p->second);
    prepared_.erase(p);
    ++counters_.orders_received;
    if (refusal) return *refusal;  // counted as store_unknown by unsent()
    return submit(order);          // its PENDING row is committed
  }
  flush();
  ++counters_.orders_received;
  std::optional<StoredOrder> stored;
  try {
    stored = store_.find(order.client_order_id);
  } catch (const StoreError& e) {
    // Whether the id was seen before is unknown: sending could send twice.
    store_failed(e, "orders are answered UNKNOWN and not sent until it can be read");
    return unsent(order.client_order_id, e, "look-up");
  }

  if (stored && stored->state == OrderState::done) {
    ++counters_.duplicates;
    proto::OrderReply reply = refreshed(*stored);
    reply.duplicate = true;
    return reply;
  }

  if (stored) {  // PENDING: a previous run recorded it but may not have sent it
    BrokerAnswer known = timed(BrokerCall::query, [&] { return broker_.query(order.client_order_id); });
    if (!known.ok) {
      ++counters_.broker_errors;
      return outcome_unknown(known, clock_.now_ns());
    }
    if (known.reply.status != proto::OrderStatus::unknown) {
      ++counters_.duplicates;
      remember(info_of(order), unanswered(order.client_order_id), known.reply);
      known.reply.duplicate = true;
      return known.reply;
    }
    return submit(order);  // the broker never saw it; the PENDING row stays valid
  }

  try {
    store_.insert_pending(order, clock_.now_ns());
  } catch (const StoreError& e) {
    // No PENDING row, so no submit (at most once). A full disk is
    // transient: UNKNOWN makes the executor retry the same id, where a final
    // REJECTED would lose the signal.
    store_failed(e, "orders are answered UNKNOWN and not sent until it can be written");
    return unsent(order.client_order_id, e, "PENDING row");
  }
  store_ok();
  return submit(order);
}

proto::OrderReply OrderDesk::submit(const proto::OrderRequest& order) {
  if (answer_unwritten()) {
    // An earlier answer could not be written (the store fails): nothing
    // more goes out until it is.
    ++counters_.store_unknown;
    return make_reply(order.client_order_id, proto::OrderStatus::unknown,
                      "order store cannot write an earlier answer; not sent; outcome unknown, retry the same "
                      "client order id",
                      clock_.now_ns());
  }
  const proto::OrderReply before = unanswered(order.client_order_id);
  // The last check before the broker: nothing reaches it at or after its
  // deadline, however long the request waited (a frozen process, a retry, a
  // resend by reconciliation). The refusal is stored like any answer, so a
  // later copy of the request gets it too and is never submitted.
  if (const auto now = clock_.now_ns(); order.expires_ts_ns > 0 && now >= order.expires_ts_ns) {
    ++counters_.expired;
    auto refusal = make_reply(order.client_order_id, proto::OrderStatus::rejected,
                              std::string(proto::expired_reason_prefix) + " deadline " +
                                  std::to_string(order.expires_ts_ns) + " passed " +
                                  std::to_string((now - order.expires_ts_ns) / 1'000'000) +
                                  " ms before the broker call; never sent",
                              now);
    count_answer(before, refusal);
    unrecorded_.push_back(Unrecorded{info_of(order), refusal});
    return refusal;
  }
  ++counters_.submitted;
  BrokerAnswer a = timed(BrokerCall::submit, [&] { return broker_.submit(order); });
  if (!a.ok) {
    ++counters_.broker_errors;
    return outcome_unknown(a, clock_.now_ns());
  }
  if (a.reply.status == proto::OrderStatus::unknown) {
    // "Never seen" is no answer to a submit: keep the row PENDING and let
    // the retry ask again.
    ++counters_.broker_errors;
    return outcome_unknown(a, clock_.now_ns());
  }
  count_answer(before, a.reply);
  unrecorded_.push_back(Unrecorded{info_of(order), a.reply});  // DONE after the answer left: see flush()
  return a.reply;
}

proto::OrderReply OrderDesk::refreshed(const StoredOrder& stored) {
  if (proto::is_final(stored.reply.status)) return stored.reply;
  // A working order: the broker may know more than the row (a report not
  // polled yet).
  BrokerAnswer a = timed(BrokerCall::query, [&] { return broker_.query(stored.reply.client_order_id); });
  if (!a.ok || a.reply.status == proto::OrderStatus::unknown) return stored.reply;
  const auto step = proto::classify(progress_of(stored.reply), progress_of(a.reply), stored.quantity).step;
  if (step != proto::Step::apply) return stored.reply;
  remember(info_of(stored), stored.reply, a.reply);
  return a.reply;
}

bool OrderDesk::answer_unwritten() const noexcept {
  return std::any_of(unrecorded_.begin(), unrecorded_.end(), [](const Unrecorded& u) { return u.kept; });
}

void OrderDesk::flush() {
  if (unrecorded_.empty()) return;
  auto answers = std::exchange(unrecorded_, {});
  std::vector<OrderStore::Change> changes;
  try {
    for (const auto& u : answers) {
      if (u.kept) {
        // A write since the failed one (a poll, a query) may have settled
        // the row from the broker with a newer state: never write the older
        // one over it.
        if (auto row = store_.find(u.reply.client_order_id); row && row->state == OrderState::done) continue;
      }
      if (auto report = report_of(u.info, unanswered(u.reply.client_order_id), u.reply)) {
        changes.push_back({u.reply, std::move(*report)});
      } else {
        store_.store_done(u.reply, clock_.now_ns());  // no instrument to report it under
      }
    }
    store_.store_changes(changes, clock_.now_ns());
  } catch (const StoreError& e) {
    // Kept for the next flush (every request and poll): the executor has
    // these answers and will not ask again, so nothing else would settle
    // the rows. One settled meanwhile is skipped then.
    store_failed(e, fmt::format("{} answered order(s) stay PENDING; a retry or query asks the broker",
                                answers.size()));
    for (auto& u : answers) {
      u.kept = true;
      unrecorded_.push_back(std::move(u));
    }
    return;
  }
  store_ok();
  for (auto& c : changes) {
    ++counters_.reports;
    stored_reports_.push_back(std::move(c.report));
  }
}

void OrderDesk::remember(const OrderInfo& info, const proto::OrderReply& known,
                         const proto::OrderReply& now) {
  auto report = report_of(info, known, now);
  try {
    store_.store_done(now, clock_.now_ns(), report ? &*report : nullptr);
  } catch (const StoreError& e) {
    store_failed(
        e, "the answered order " + now.client_order_id + " stays PENDING; a retry or query asks the broker");
    return;
  }
  store_ok();
  if (report) {
    ++counters_.reports;
    stored_reports_.push_back(std::move(*report));
  }
}

proto::OrderReply OrderDesk::unsent(const std::string& client_order_id, const StoreError& e,
                                    std::string_view what) {
  ++counters_.store_unknown;
  return make_reply(client_order_id, proto::OrderStatus::unknown,
                    "order store error (" + std::string(what) + "): " + e.what() +
                        "; not sent; outcome unknown, retry the same client order id",
                    clock_.now_ns());
}

void OrderDesk::store_failed(const StoreError& e, std::string_view consequence) {
  ++counters_.store_errors;
  if (listener_) listener_(&e, consequence);
}

void OrderDesk::store_ok() {
  if (listener_) listener_(nullptr, {});
}

proto::OrderReply OrderDesk::handle(const proto::OrderQuery& query) {
  flush();
  ++counters_.queries;
  std::optional<StoredOrder> stored;
  try {
    stored = store_.find(query.client_order_id);
    if (stored && stored->state == OrderState::done) return refreshed(*stored);
  } catch (const StoreError& e) {
    store_failed(e, "queries go to the broker");  // it may still know
  }
  // PENDING or no row (e.g. a lost database): the broker is the authority.
  BrokerAnswer a = timed(BrokerCall::query, [&] { return broker_.query(query.client_order_id); });
  if (!a.ok) {
    ++counters_.broker_errors;
    return make_reply(query.client_order_id, proto::OrderStatus::unknown, a.reply.reason, clock_.now_ns());
  }
  if (a.reply.status != proto::OrderStatus::unknown) {
    remember(stored ? info_of(*stored) : OrderInfo{}, unanswered(query.client_order_id), a.reply);
  }
  return a.reply;
}

proto::OrderReply OrderDesk::handle(const proto::OrderCancel& cancel) {
  flush();
  ++counters_.cancels_received;
  const std::string& id = cancel.client_order_id;
  std::optional<StoredCancel> done_before;
  std::optional<StoredOrder> order;
  try {
    done_before = store_.find_cancel(id);
    order = store_.find(id);
  } catch (const StoreError& e) {
    store_failed(e, "cancels are answered UNKNOWN and not sent until it can be read");
    return unsent(id, e, "cancel look-up");
  }
  if (done_before && done_before->state == OrderState::done) {
    ++counters_.cancel_duplicates;
    proto::OrderReply reply = done_before->reply;
    reply.duplicate = true;
    return reply;
  }
  if (!order)
    return make_reply(id, proto::OrderStatus::unknown, "cannot cancel: no such order", clock_.now_ns());
  if (order->state == OrderState::pending) {
    // Its outcome is not settled: the request or a query settles it first.
    return make_reply(id, proto::OrderStatus::unknown,
                      "cannot cancel yet: the order's outcome is not settled; retry", clock_.now_ns());
  }
  const proto::OrderReply known = order->reply;
  auto finish = [&](proto::OrderReply answer, bool call_made) {
    // The cancel's answer, and the order's change when there is one, in one
    // transaction: a repeat of the cancel gets this answer.
    std::optional<proto::ExecutionReport> report;
    const bool changed =
        call_made &&
        proto::classify(progress_of(known), progress_of(answer), order->quantity).step == proto::Step::apply;
    if (changed) report = report_of(info_of(*order), known, answer);
    try {
      store_.store_cancel_done(answer, changed ? &answer : nullptr, report ? &*report : nullptr,
                               clock_.now_ns());
    } catch (const StoreError& e) {
      store_failed(e, "the cancel of " + id + " stays PENDING; a retry asks the broker, never cancels again");
      // Not the broker's answer: the executor would take it as final and never
      // ask again, and the order's row would keep its old state for good.
      ++counters_.store_unknown;
      return make_reply(id, proto::OrderStatus::unknown,
                        "cancel outcome not recorded (order store: " + std::string(e.what()) +
                            "); retry the same cancel: the broker is asked, never sent it twice",
                        clock_.now_ns());
    }
    store_ok();
    if (changed) count_answer(known, answer);
    if (report) {
      ++counters_.reports;
      stored_reports_.push_back(std::move(*report));
    }
    return answer;
  };
  if (proto::is_final(known.status)) {
    ++counters_.cancels_too_late;
    proto::OrderReply answer = known;
    answer.reason = "cannot cancel: the order is " + std::string(proto::to_string(known.status));
    answer.broker_ts_ns = clock_.now_ns();
    return finish(std::move(answer), false);
  }
  if (done_before) {
    // PENDING: a previous run recorded this cancel and did not store its
    // answer. It may have reached the broker: ask, never cancel twice.
    BrokerAnswer a = timed(BrokerCall::query, [&] { return broker_.query(id); });
    if (!a.ok || a.reply.status == proto::OrderStatus::unknown) {
      ++counters_.broker_errors;
      return outcome_unknown(a, clock_.now_ns());
    }
    if (!proto::is_final(a.reply.status))
      a.reply.reason = "cancel outcome unknown after a restart; the order is still " +
                       std::string(proto::to_string(a.reply.status)) + " and is not canceled twice";
    return finish(std::move(a.reply), true);
  }
  try {
    store_.insert_cancel_pending(id, clock_.now_ns());
  } catch (const StoreError& e) {
    store_failed(e, "cancels are answered UNKNOWN and not sent until it can be written");
    return unsent(id, e, "cancel PENDING row");
  }
  ++counters_.cancels_sent;
  BrokerAnswer a = timed(BrokerCall::cancel, [&] { return broker_.cancel(id); });
  if (!a.ok) {
    ++counters_.broker_errors;
    return outcome_unknown(a, clock_.now_ns());
  }
  return finish(std::move(a.reply), true);
}

std::size_t OrderDesk::poll() {
  flush();
  polled_.clear();
  broker_.poll_reports(polled_, max_reports_per_poll);
  counters_.broker_reports += polled_.size();
  for (auto& r : polled_) unstored_.push_back(std::move(r));
  if (unstored_.empty()) return 0;

  std::vector<OrderStore::Change> changes;
  std::map<std::string, StoredOrder, std::less<>> rows;  // latest state per order within this poll
  std::size_t taken = 0;
  try {
    for (const auto& br : unstored_) {
      ++taken;
      auto it = rows.find(br.client_order_id);
      if (it == rows.end()) {
        auto row = store_.find(br.client_order_id);
        if (!row) {
          ++counters_.reports_unknown_order;
          spdlog::error("broker report for {} ({}), which dll_gateway never sent: not stored",
                        br.client_order_id, proto::to_string(br.status));
          continue;
        }
        if (row->state == OrderState::pending) row->reply = unanswered(br.client_order_id);
        it = rows.emplace(br.client_order_id, std::move(*row)).first;
      }
      StoredOrder& row = it->second;
      proto::OrderReply now;
      now.client_order_id = br.client_order_id;
      now.order_id = br.order_id.empty() ? row.reply.order_id : br.order_id;
      now.status = br.status;
      now.filled_quantity = br.filled_quantity;
      now.fill_price = br.avg_price;
      now.reason = br.reason;
      now.broker_ts_ns = br.broker_ts_ns;
      const auto c = proto::classify(progress_of(row.reply), progress_of(now), row.quantity);
      if (c.step == proto::Step::invalid) {
        ++counters_.invalid_transitions;
        spdlog::error("broker report for {} refused: {} -> {} ({} -> {} filled): {}", br.client_order_id,
                      proto::to_string(row.reply.status), proto::to_string(now.status),
                      row.reply.filled_quantity, now.filled_quantity, c.why);
        continue;
      }
      if (c.step != proto::Step::apply) {
        ++counters_.reports_stale;
        continue;
      }
      auto report = report_of(info_of(row), row.reply, now, &br);
      count_answer(row.reply, now);
      row.reply = now;
      row.state = OrderState::done;
      if (report) changes.push_back({now, std::move(*report)});
    }
    store_.store_changes(changes, clock_.now_ns());
  } catch (const StoreError& e) {
    // Kept for the next poll; nothing of this one was stored.
    store_failed(e, "broker reports are kept in memory and stored at the next poll");
    return 0;
  }
  store_ok();
  unstored_.erase(unstored_.begin(), unstored_.begin() + static_cast<std::ptrdiff_t>(taken));
  for (auto& c : changes) {
    ++counters_.reports;
    stored_reports_.push_back(std::move(c.report));
  }
  return changes.size();
}

void OrderDesk::settle() {
  std::vector<StoredOrder> open;
  try {
    open = store_.open_orders();
  } catch (const StoreError& e) {
    store_failed(e, "open orders not settled at start");
    return;
  }
  std::size_t changed = 0;
  for (const auto& row : open) {
    // A PENDING row's order may have reached the broker (its answer was
    // lost with the last process): an answer from the query settles it
    // now; an id the broker never saw stays PENDING for its retry.
    BrokerAnswer a = timed(BrokerCall::query, [&] { return broker_.query(row.reply.client_order_id); });
    if (!a.ok || a.reply.status == proto::OrderStatus::unknown) continue;
    if (proto::classify(progress_of(row.reply), progress_of(a.reply), row.quantity).step !=
        proto::Step::apply)
      continue;
    count_answer(row.reply, a.reply);
    remember(info_of(row), row.reply, a.reply);
    ++changed;
  }
  std::set<std::string, std::less<>> known;
  for (const auto& row : open) known.insert(row.reply.client_order_id);
  auto at_broker = broker_.open_orders();
  std::size_t unknown = 0;
  if (at_broker) {
    for (const auto& r : *at_broker) {
      if (known.contains(r.client_order_id)) continue;
      std::optional<StoredOrder> row;
      try {
        row = store_.find(r.client_order_id);
      } catch (const StoreError&) {
      }
      if (row && row->state == OrderState::done) continue;  // settled above as final? counted below if not
      ++unknown;
      spdlog::error("order {} is open at the broker ({}, {} filled) but unknown to dll_gateway's store",
                    r.client_order_id, proto::to_string(r.status), r.filled_quantity);
    }
  }
  counters_.unknown_open_orders += unknown;
  spdlog::info(
      "settled at start: {} open order(s) in the store, {} changed at the broker meanwhile, {} open at "
      "the broker{}",
      open.size(), changed, at_broker ? std::to_string(at_broker->size()) : std::string("?"),
      unknown ? fmt::format(", {} of them UNKNOWN here", unknown) : std::string());
}

proto::ReportBatch OrderDesk::handle(const proto::ReportQuery& query) {
  flush();
  ++counters_.report_queries;
  proto::ReportBatch batch;
  batch.stream = store_.stream();
  batch.last_seq = store_.last_seq();
  batch.ts_ns = clock_.now_ns();
  const std::uint64_t from = std::max<std::uint64_t>(query.from_seq, 1);
  const std::uint32_t max = std::min(std::max<std::uint32_t>(query.max_count, 1), max_reports_per_batch);
  try {
    if (from <= batch.last_seq && from < store_.first_seq()) {
      batch.reason = "pruned: the oldest stored report is seq " + std::to_string(store_.first_seq());
    }
    proto::Encoder encoder;
    for (const auto& r : store_.reports_from(from, max)) {
      auto bytes = encoder.encode(r);
      if (batch.reports.size() + bytes.size() > max_batch_report_bytes) break;
      proto::append_report(batch, bytes);
    }
  } catch (const StoreError& e) {
    store_failed(e, "a report query was answered with none");
    batch.reason = std::string("store error: ") + e.what();
  }
  batch.complete = from + batch.count > batch.last_seq;
  return batch;
}

proto::ReportBatch OrderDesk::handle(const proto::OpenOrdersQuery& query) {
  flush();
  ++counters_.open_orders_queries;
  proto::ReportBatch batch;
  batch.stream = store_.stream();
  batch.last_seq = store_.last_seq();
  batch.ts_ns = clock_.now_ns();
  auto open = broker_.open_orders();
  if (!open) {
    batch.reason = "the broker could not list its open orders";
    batch.complete = false;
    return batch;
  }
  proto::Encoder encoder;
  std::size_t i = query.offset;
  for (; i < open->size(); ++i) {
    proto::ExecutionReport r = (*open)[i];
    r.stream = batch.stream;
    r.seq = 0;  // a snapshot, not a stored change
    try {
      if (auto row = store_.find(r.client_order_id)) {
        r.instrument = row->instrument;
        r.side = row->side;
        r.quantity = row->quantity;
      }
    } catch (const StoreError&) {
    }
    if (r.instrument.empty()) r.instrument = "UNKNOWN";
    auto bytes = encoder.encode(r);
    if (batch.reports.size() + bytes.size() > max_batch_report_bytes) break;
    proto::append_report(batch, bytes);
  }
  batch.complete = i >= open->size();
  return batch;
}

}  // namespace tp::dll_gateway
