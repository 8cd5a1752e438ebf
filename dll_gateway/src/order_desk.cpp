#include "dll_gateway/order_desk.hpp"

namespace tp::dll_gateway {

namespace {

proto::OrderReply make_reply(const std::string& client_order_id, proto::OrderStatus status,
                             std::string reason, std::int64_t ts_ns) {
  proto::OrderReply r;
  r.client_order_id = client_order_id;
  r.status = status;
  r.reason = std::move(reason);
  r.broker_ts_ns = ts_ns;
  return r;
}

// When the broker call failed the order may or may not exist at the broker;
// "unknown" tells the executor to retry the same id, which then reconciles
// through the PENDING row (query before any new submit).
proto::OrderReply outcome_unknown(const BrokerAnswer& a, std::int64_t ts_ns) {
  return make_reply(a.reply.client_order_id, proto::OrderStatus::unknown,
                    a.reply.reason + "; outcome unknown, retry the same client order id", ts_ns);
}

}  // namespace

proto::OrderReply OrderDesk::handle(const proto::OrderRequest& order) {
  flush();
  ++counters_.orders_received;
  std::optional<StoredOrder> stored;
  try {
    stored = store_.find(order.client_order_id);
  } catch (const StoreError& e) {
    // Whether the id was seen before is unknown: sending could send twice.
    store_failed(e, "orders are answered UNKNOWN and not sent until it can be read");
    return unsent(order, e, "look-up");
  }

  if (stored && stored->state == OrderState::done) {
    ++counters_.duplicates;
    proto::OrderReply reply = refreshed(std::move(stored->reply));
    reply.duplicate = true;
    return reply;
  }

  if (stored) {  // PENDING: a previous run recorded it but may not have sent it
    BrokerAnswer known = broker_.query(order.client_order_id);
    if (!known.ok) {
      ++counters_.broker_errors;
      return outcome_unknown(known, clock_.now_ns());
    }
    if (known.reply.status != proto::OrderStatus::unknown) {
      ++counters_.duplicates;
      remember(known.reply);
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
    return unsent(order, e, "PENDING row");
  }
  store_ok();
  return submit(order);
}

proto::OrderReply OrderDesk::submit(const proto::OrderRequest& order) {
  // The last check before the broker: nothing reaches it at or after its
  // deadline, however long the request waited (a frozen process, a retry, a
  // resend by reconciliation). The refusal is stored like any answer, so a
  // later copy of the request gets it too and is never submitted.
  if (const auto now = clock_.now_ns(); order.expires_ts_ns > 0 && now >= order.expires_ts_ns) {
    ++counters_.expired;
    ++counters_.rejects;
    auto refusal = make_reply(order.client_order_id, proto::OrderStatus::rejected,
                              std::string(proto::expired_reason_prefix) + " deadline " +
                                  std::to_string(order.expires_ts_ns) + " passed " +
                                  std::to_string((now - order.expires_ts_ns) / 1'000'000) +
                                  " ms before the broker call; never sent",
                              now);
    unrecorded_ = refusal;
    return refusal;
  }
  ++counters_.submitted;
  BrokerAnswer a = broker_.submit(order);
  if (!a.ok) {
    ++counters_.broker_errors;
    return outcome_unknown(a, clock_.now_ns());
  }
  unrecorded_ = a.reply;  // DONE after the answer left: see flush()
  switch (a.reply.status) {
    case proto::OrderStatus::partially_filled:
      ++counters_.partial_fills;
      [[fallthrough]];
    case proto::OrderStatus::filled:
      ++counters_.fills;
      break;
    case proto::OrderStatus::rejected:
      ++counters_.rejects;
      break;
    default:
      break;
  }
  return a.reply;
}

proto::OrderReply OrderDesk::refreshed(proto::OrderReply stored) {
  if (proto::is_final(stored.status)) return stored;
  // A broker that answers "accepted" works the order on: ask for news.
  BrokerAnswer a = broker_.query(stored.client_order_id);
  if (!a.ok || a.reply.status == proto::OrderStatus::unknown || a.reply == stored) return stored;
  remember(a.reply);
  return a.reply;
}

void OrderDesk::flush() {
  if (!unrecorded_) return;
  remember(*unrecorded_);
  unrecorded_.reset();
}

void OrderDesk::remember(const proto::OrderReply& reply) {
  try {
    store_.store_done(reply, clock_.now_ns());
  } catch (const StoreError& e) {
    store_failed(e, "the answered order " + reply.client_order_id +
                        " stays PENDING; a retry or query asks the broker");
    return;
  }
  store_ok();
}

proto::OrderReply OrderDesk::unsent(const proto::OrderRequest& order, const StoreError& e,
                                    std::string_view what) {
  ++counters_.store_unknown;
  return make_reply(order.client_order_id, proto::OrderStatus::unknown,
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
  try {
    if (auto stored = store_.find(query.client_order_id); stored && stored->state == OrderState::done)
      return refreshed(std::move(stored->reply));
  } catch (const StoreError& e) {
    store_failed(e, "queries go to the broker");  // it may still know
  }
  // PENDING or no row (e.g. a lost database): the broker is the authority.
  BrokerAnswer a = broker_.query(query.client_order_id);
  if (!a.ok) {
    ++counters_.broker_errors;
    return make_reply(query.client_order_id, proto::OrderStatus::unknown, a.reply.reason, clock_.now_ns());
  }
  if (a.reply.status != proto::OrderStatus::unknown) remember(a.reply);
  return a.reply;
}

}  // namespace tp::dll_gateway
