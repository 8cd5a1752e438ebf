#include "executor/trading_controls.hpp"

#include <algorithm>
#include <cmath>

namespace tp::executor {

TradingStatus after_command(const TradingStatus& now, proto::ControlCommand command, std::string_view reason,
                            std::string_view sent_by, std::int64_t now_ns) {
  TradingStatus next = now;
  switch (command) {
    case proto::ControlCommand::status:
      return now;
    case proto::ControlCommand::halt:
      next.state = proto::TradingState::halted;
      next.flatten_pending = false;
      break;
    case proto::ControlCommand::reduce:
      next.state = proto::TradingState::reducing;
      next.flatten_pending = false;
      break;
    case proto::ControlCommand::flatten:
      next.state = proto::TradingState::reducing;
      next.flatten_pending = true;
      break;
    case proto::ControlCommand::resume:
      next.state = proto::TradingState::active;
      next.flatten_pending = false;
      break;
  }
  std::string cause(proto::to_string(command));
  std::transform(cause.begin(), cause.end(), cause.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!sent_by.empty()) cause += " by " + std::string(sent_by);
  if (!reason.empty()) cause += ": " + std::string(reason);
  // The cause is quoted again in refusals, cancels and events, each bounded
  // by the wire's max_text_length: kept well under it, cut on a character.
  if (cause.size() > max_cause_bytes) {
    std::size_t cut = max_cause_bytes;
    while (cut > 0 && (static_cast<unsigned char>(cause[cut]) & 0xC0) == 0x80) --cut;
    cause.resize(cut);
    cause += "...";
  }
  next.cause = std::move(cause);
  if (next.state != now.state) next.since_ns = now_ns;
  return next;
}

TradingStatus escalate(const TradingStatus& now, proto::TradingState at_least, std::string_view cause,
                       std::int64_t now_ns) {
  if (static_cast<int>(now.state) >= static_cast<int>(at_least)) return now;
  TradingStatus next = now;
  next.state = at_least;
  next.cause = std::string(cause);
  next.since_ns = now_ns;
  if (at_least == proto::TradingState::halted) next.flatten_pending = false;
  return next;
}

bool reduces(double position, double open_same_side, proto::Side side, double quantity) noexcept {
  if (side == proto::Side::buy) return position < 0 && position + open_same_side + quantity <= 0;
  return position > 0 && position - open_same_side - quantity >= 0;
}

void OpenOrders::shift(const Entry& e, double delta, int orders) {
  auto apply = [&](Total& t) {
    (e.side == proto::Side::buy ? t.sides.buy : t.sides.sell) += delta;
    t.orders = static_cast<std::size_t>(static_cast<std::int64_t>(t.orders) + orders);
    if (t.orders == 0) t.sides = {};
  };
  auto inst = by_instrument_.find(e.instrument);
  if (inst == by_instrument_.end()) inst = by_instrument_.emplace(e.instrument, Total{}).first;
  apply(inst->second);
  auto key = std::pair{e.group, e.instrument};
  auto grp = by_group_.find(key);
  if (grp == by_group_.end()) grp = by_group_.emplace(key, Total{}).first;
  apply(grp->second);
}

void OpenOrders::add(std::string_view client_order_id, std::string_view instrument, std::string_view group,
                     proto::Side side, double remaining) {
  remaining = std::max(0.0, remaining);
  if (auto it = orders_.find(client_order_id); it != orders_.end()) {
    shift(it->second, remaining - it->second.remaining, 0);
    it->second.remaining = remaining;
    return;
  }
  Entry e{std::string(instrument), std::string(group), side, remaining};
  shift(e, remaining, 1);
  orders_.emplace(std::string(client_order_id), std::move(e));
}

void OpenOrders::update(std::string_view client_order_id, double remaining, bool final) {
  auto it = orders_.find(client_order_id);
  if (it == orders_.end()) return;
  if (final) {
    shift(it->second, -it->second.remaining, -1);
    orders_.erase(it);
    return;
  }
  remaining = std::max(0.0, remaining);
  shift(it->second, remaining - it->second.remaining, 0);
  it->second.remaining = remaining;
}

void OpenOrders::clear() {
  orders_.clear();
  by_instrument_.clear();
  by_group_.clear();
}

OpenOrders::Sides OpenOrders::instrument(std::string_view instrument) const {
  auto it = by_instrument_.find(instrument);
  return it == by_instrument_.end() ? Sides{} : it->second.sides;
}

OpenOrders::Sides OpenOrders::group(std::string_view group, std::string_view instrument) const {
  auto it = by_group_.find(std::pair{std::string(group), std::string(instrument)});
  return it == by_group_.end() ? Sides{} : it->second.sides;
}

bool RateThrottle::available(std::int64_t now_ns) noexcept {
  if (!limited()) return true;
  if (started_ && now_ns > last_ns_)
    tokens_ = std::min(depth_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) / 1e9);
  if (!started_ || now_ns > last_ns_) last_ns_ = now_ns;
  started_ = true;
  return tokens_ >= 1;
}

}  // namespace tp::executor
