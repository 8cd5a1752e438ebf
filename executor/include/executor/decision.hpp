// What to do with a decoded signal: the executor's decision layer, pure.
// Given the signal, the configuration, the instrument's position and a
// clock, it says accept or reject (with a dead-letter reason code and a
// detail), and what order an accepted signal becomes. Whether the id was
// seen before is not asked here: the store's primary key is the one check
// (ExecutionDesk turns its refusal into DUPLICATE). No I/O; not stateful.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "executor/order_record.hpp"
#include "proto/messages.hpp"

namespace tp::executor {

// The order's id at the broker, derived from the signal so that a retry or a
// reconciliation can never mint a second one.
std::string client_order_id(std::string_view signal_id);

// duplicate comes from the store (the id is already recorded), never from decide().
enum class Verdict { accept, duplicate, reject };

struct Decision {
  Verdict verdict = Verdict::accept;
  // reject: "unknown_instrument", "future_timestamp", "expired", "out_of_range", "risk_rejected",
  // "group_position_limit"
  std::string reason;
  std::string detail;  // reject: human-readable, with the numbers
};

// The positions a signal is checked against, in its instrument: every
// group's together, and its own group's alone (signal.strategy).
struct Exposure {
  double instrument = 0;
  double group = 0;
};

// How much earlier than its signal's expiry an order's deadline falls. Across
// hosts the expiry is stamped by the strategy's clock and checked by the
// executor's and dll_gateway's, which may be up to executor.max_clock_skew_ms
// behind it: a deadline that much earlier keeps every order from the broker
// after its signal's expiry in true time. One host ([[hosts]] lists at most
// one) has one clock: 0.
std::int64_t expiry_margin_ns(const Config& config);

// Checks in this order: unknown instrument (not in config.instruments), a
// creation stamp too far ahead, expired (clock.now_ns() >= expires_ts_ns -
// expiry_margin_ns(config)), a
// signal id too long to carry the "C-" prefix, risk limits against
// `exposure.instrument`, then the signal's group's own max_position (a group
// of config.strategy.groups with max_position > 0) against `exposure.group`.
Decision decide(const proto::TradingSignal& signal, const Config& config, Exposure exposure,
                const Clock& clock);

// The order intent an accepted signal becomes, recorded at `now_ns`: state
// INTENT, status NEW, nothing filled, the signal's expiry less
// `margin_ns` (expiry_margin_ns) as its deadline (every later check, dll_gateway's and
// the broker's good-till included, uses it). The caller turns it HELD when
// the circuit breaker is not closed.
OrderRecord intent_for(const proto::TradingSignal& signal, std::int64_t now_ns, std::int64_t margin_ns = 0);

// The request that places a recorded order, stamped `now_ns`; a retry or a
// resend is the same request (same client order id, same deadline).
proto::OrderRequest request_of(const OrderRecord& order, std::int64_t now_ns);

}  // namespace tp::executor
