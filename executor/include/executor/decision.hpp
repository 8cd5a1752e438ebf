// What to do with a decoded signal: the executor's decision layer, pure.
// Given the signal, whether the store has seen its id, the configuration,
// the instrument's position and a clock, it says accept, duplicate or reject
// (with a dead-letter reason code and a detail), and what order an accepted
// signal becomes. No I/O; not stateful.
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

enum class Verdict { accept, duplicate, reject };

struct Decision {
  Verdict verdict = Verdict::accept;
  std::string reason;  // reject: "unknown_instrument", "expired", "risk_rejected", "out_of_range"
  std::string detail;  // reject: human-readable, with the numbers
};

// Checks in this order: duplicate (already_seen), unknown instrument (not in
// config.instruments), expired (clock.now_ns() >= expires_ts_ns), a signal
// id too long to carry the "C-" prefix, risk limits.
Decision decide(const proto::TradingSignal& signal, bool already_seen, const Config& config,
                double current_position, const Clock& clock);

// The order intent an accepted signal becomes, recorded at `now_ns`: state
// INTENT, status NEW, nothing filled, the signal's expiry. The caller turns
// it HELD when the circuit breaker is not closed.
OrderRecord intent_for(const proto::TradingSignal& signal, std::int64_t now_ns);

}  // namespace tp::executor
