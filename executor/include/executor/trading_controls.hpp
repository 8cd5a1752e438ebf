// The executor's trading controls as pure rules: what each trading state
// lets through, how operators' commands and automatic triggers move the
// state, the remaining quantity of open orders (so that position limits
// count them at their worst case) and the order-rate throttle. Values in,
// values out; the desk owns the instances (one thread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "proto/messages.hpp"

namespace tp::executor {

// The trading state and why (stored before a command is answered).
struct TradingStatus {
  proto::TradingState state = proto::TradingState::active;
  std::string cause;
  std::int64_t since_ns = 0;
  bool flatten_pending = false;  // FLATTEN: positions are still being closed
  bool operator==(const TradingStatus&) const = default;
};

// A cause at most this long (then "..."), so that every message quoting it
// (with its own words around) stays within proto::max_text_length.
inline constexpr std::size_t max_cause_bytes = 512;

// The state after an operator's command: HALT -> HALTED, REDUCE ->
// REDUCING, FLATTEN -> REDUCING with flatten_pending, RESUME -> ACTIVE,
// STATUS -> unchanged. A command that repeats the state keeps its `since`.
// `cause` reads "<command> by <sent_by>: <reason>", cut to max_cause_bytes.
TradingStatus after_command(const TradingStatus& now, proto::ControlCommand command, std::string_view reason,
                            std::string_view sent_by, std::int64_t now_ns);

// An automatic trigger (the daily loss limit, a mismatch with the broker
// found at start) raises the state to `at_least` and never lowers it: only
// an operator's RESUME does. Returns `now` unchanged when it is already there.
TradingStatus escalate(const TradingStatus& now, proto::TradingState at_least, std::string_view cause,
                       std::int64_t now_ns);

// Whether an order of `quantity` on `side` shrinks the position without
// flipping it, even if every open order on the same side fills first
// (`open_same_side`): the test REDUCING applies.
bool reduces(double position, double open_same_side, proto::Side side, double quantity) noexcept;

// Remaining (unfilled) quantities of the orders that are not final, by
// instrument and side, over all groups and per group, kept up to date order
// by order so that a check costs a lookup.
class OpenOrders {
 public:
  struct Sides {
    double buy = 0;
    double sell = 0;
    double on(proto::Side side) const noexcept { return side == proto::Side::buy ? buy : sell; }
  };

  // Adds an order (or replaces the remaining quantity of one already there).
  void add(std::string_view client_order_id, std::string_view instrument, std::string_view group,
           proto::Side side, double remaining);
  // The order's remaining quantity is now `remaining`; `final`: it is gone.
  void update(std::string_view client_order_id, double remaining, bool final);
  void remove(std::string_view client_order_id) { update(client_order_id, 0, true); }
  void clear();

  Sides instrument(std::string_view instrument) const;
  Sides group(std::string_view group, std::string_view instrument) const;
  std::size_t count() const noexcept { return orders_.size(); }

 private:
  struct Entry {
    std::string instrument;
    std::string group;
    proto::Side side = proto::Side::buy;
    double remaining = 0;
  };
  void shift(const Entry& e, double delta, int orders);

  struct Total {
    Sides sides;
    std::size_t orders = 0;  // back to exactly 0 when none is left (no rounding residue)
  };
  std::map<std::string, Entry, std::less<>> orders_;
  std::map<std::string, Total, std::less<>> by_instrument_;
  std::map<std::pair<std::string, std::string>, Total, std::less<>> by_group_;
};

// A token bucket: `per_second` tokens a second, at most a second's worth
// (and at least one) kept: a burst of that many after a quiet spell; 0 = no
// limit.
class RateThrottle {
 public:
  explicit RateThrottle(double per_second = 0)
      : rate_(per_second), depth_(per_second > 1 ? per_second : 1), tokens_(depth_) {}
  bool limited() const noexcept { return rate_ > 0; }
  double rate() const noexcept { return rate_; }
  // Whether a token is there at `now_ns` (monotonic), refilling first.
  bool available(std::int64_t now_ns) noexcept;
  // Takes the token available() found.
  void take() noexcept {
    if (limited()) tokens_ -= 1;
  }

 private:
  double rate_;
  double depth_;
  double tokens_;
  std::int64_t last_ns_ = 0;
  bool started_ = false;
};

}  // namespace tp::executor
