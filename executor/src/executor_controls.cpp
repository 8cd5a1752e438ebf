// The executor's trading controls and portfolio, the node's side: the
// control socket (tpctl's commands, answered after the desk stored the new
// state), the tick feed's latest mids, the periodic valuation (PNL.<sym> and
// PORTFOLIO events, the equity curve, the daily loss limit) and what a
// HALTED or flattening executor does to its orders. The rules themselves are
// the desk's (execution_desk.hpp) and trading_controls.hpp's.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common/zmq_util.hpp"
#include "executor/executor_node.hpp"
#include "executor/portfolio.hpp"

namespace tp::executor {
namespace {

constexpr std::size_t max_ticks_per_wakeup = 1000;

// The instruments whose position holds back the day's start: open, and
// without a mark yet, or without the rate a configured pair will give once
// it has a mark (a currency no pair converts is left out of the totals
// today and every day, so it does not wait).
std::vector<std::string> unvalued(const Valuation& v, const Config& config) {
  Marks every_pair;
  for (const auto& i : config.instruments) every_pair.emplace(i.symbol, 1.0);
  const CurrencyConverter converter(config.instruments);
  std::vector<std::string> out;
  for (const auto& line : v.instruments) {
    if (line.position == 0) continue;
    const bool convertible =
        converter.rate(line.quote_currency, config.portfolio.account_currency, every_pair).has_value();
    if (!(line.mark_price > 0) || (!line.converted && convertible)) out.push_back(line.instrument);
  }
  return out;
}

}  // namespace

void ExecutorNode::handle_control() {
  if (take_control_request()) enforce_trading_state();
}

void ExecutorNode::answer_control() {
  // A command's state is stored in a transaction of its own.
  if (store_.in_transaction()) return;
  while (take_control_request()) enforce_pending_ = true;
}

bool ExecutorNode::take_control_request() {
  std::size_t total = 0;
  if (!recv_message(control_, frames_control_, max_kept_frames, total)) return false;
  proto::ControlReply reply;
  const auto refuse = [&](const std::string& why) { reply = desk_.control_reply(why); };
  if (total != 1) {
    dead_letters_.send("bad_frames", fmt::format("control: expected 1 frame, got {}", total),
                       join_frames(frames_control_, total));
    refuse(fmt::format("bad_frames: expected 1 frame, got {}", total));
  } else if (auto request = decoder_.decode_control_request(bytes_of(frames_control_[0])); !request) {
    dead_letters_.send(request.error(), view_of(frames_control_[0]));
    refuse(std::string(proto::to_string(request.error().code)) + ": " + request.error().detail);
  } else {
    const auto& r = request.value();
    if (r.command != proto::ControlCommand::status)
      spdlog::warn("control: {} from {} ({})", proto::to_string(r.command),
                   r.sent_by.empty() ? "?" : r.sent_by, r.reason);
    reply = desk_.command(r);
  }
  // The REP answers every request: the state was stored (or not) before.
  tp::publish(control_, encoder_.encode(reply), control_sends_);
  return true;
}

void ExecutorNode::drain_ticks() {
  // The gateway's clock is judged once a wakeup, by the newest stamp read
  // against the clock after the reads: one clock read, and a lag never
  // smaller than any tick's own.
  std::int64_t newest_stamp = 0;
  for (std::size_t i = 0; i < max_ticks_per_wakeup; ++i) {
    std::size_t total = 0;
    if (!recv_message(ticks_, frames_, 2, total)) break;
    // The feed is the gateway's and every strategy judges it; here a bad
    // tick only fails to move a mark.
    if (total != 2) continue;
    auto tick = decoder_.decode_tick(bytes_of(frames_[1]));
    if (!tick || !(tick->bid > 0) || !(tick->ask > 0)) continue;
    newest_stamp = std::max(newest_stamp, tick->gateway_ts_ns);
    if (!marks_.contains(tick->instrument) && config_.find_instrument(tick->instrument) == nullptr) continue;
    marks_.insert_or_assign(tick->instrument, (tick->bid + tick->ask) / 2);
  }
  tick_lag_.observe(clock_.now_ns(), newest_stamp);  // 0: no tick, nothing learnt
}

void ExecutorNode::value_portfolio() {
  const auto now = clock_.now_ns();
  const auto valuation = value(desk_.positions(), marks_, config_);
  const double total = valuation.realized_pnl + valuation.unrealized_pnl;
  const auto day = utc_day(now);
  if (day != day_) {
    // The day's zero is its first full valuation's PnL, every position
    // marked and converted (before the first ticks a carried position would
    // count its whole unrealised PnL as today's), or the one a run stored
    // earlier today, so that a restart counts from there too.
    std::optional<double> stored;
    try {
      stored = store_.day_start_pnl(day);
    } catch (const StoreError& e) {
      storage_failed("read the day's starting PnL", e, store_.last_errno());
    }
    waiting_marks_ = stored ? std::vector<std::string>{} : unvalued(valuation, config_);
    if (stored || waiting_marks_.empty()) {
      day_start_pnl_ = stored.value_or(total);
      day_start_stored_ = stored.has_value();
      day_ = day;
    }
  }
  if (day_ == day && !day_start_stored_) {
    // Kept for this run even when it cannot be written (a full disk): the
    // limit matters most then; the write is tried again each valuation.
    try {
      store_.set_day_start_pnl(day, day_start_pnl_, now);
      day_start_stored_ = true;
    } catch (const StoreError& e) {
      storage_failed("store the day's starting PnL", e, store_.last_errno());
    }
  }
  // Not known before the day's start is (no mark yet for an open position).
  daily_pnl_ = day_ == day ? total - day_start_pnl_ : 0;
  if (daily_loss_breached(daily_pnl_, config_.risk.max_daily_loss) &&
      desk_.trading().state == proto::TradingState::active) {
    desk_.escalate(proto::TradingState::reducing,
                   fmt::format("daily loss limit: the day's PnL {:.2f} {} is below -risk.max_daily_loss {}",
                               daily_pnl_, config_.portfolio.account_currency, config_.risk.max_daily_loss));
  }
  for (const auto& line : pnl_messages(valuation, now))
    tp::publish(events_, proto::pnl_topic(line.instrument), encoder_.encode(line), event_sends_);
  const auto event =
      portfolio_event(valuation, config_, daily_pnl_, utc_day_start_ns(now), desk_.trading().state,
                      static_cast<std::uint32_t>(desk_.open_order_count()), now);
  tp::publish(events_, proto::portfolio_topic, encoder_.encode(event), event_sends_);
  try {
    store_.add_equity_point(EquityPoint{now, valuation.equity, valuation.realized_pnl,
                                        valuation.unrealized_pnl, daily_pnl_, valuation.complete});
  } catch (const StoreError& e) {
    storage_failed("store an equity point", e, store_.last_errno());
  }
  valuation_ = valuation;
}

void ExecutorNode::enforce_trading_state() {
  enforce_pending_ = false;
  const auto& t = desk_.trading();
  if (t.state != proto::TradingState::halted && !t.flatten_pending) return;
  if (desk_.cancel_all(outbox_) > 0) publish(outbox_);
  if (!link_.allows()) return;  // the breaker is open: the next pass sends them
  send_requested_cancels();
  if (!desk_.trading().flatten_pending) return;
  try {
    if (desk_.flatten(marks_, outbox_) == 0) return;
  } catch (const StoreError& e) {
    const int err = store_.last_errno();
    desk_.abort();
    storage_failed("record the flatten's closing orders", e, err);
    return;
  }
  publish(outbox_);
  Unrecorded unrecorded;
  release_held(unrecorded);
  record(unrecorded);
}

}  // namespace tp::executor
