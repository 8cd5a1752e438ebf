// The order state machine (proto/order_lifecycle.hpp) over every pair of
// statuses, and the cumulative-quantity rules that make a repeated or late
// update harmless.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "proto/order_lifecycle.hpp"

namespace {

using tp::proto::can_follow;
using tp::proto::classify;
using tp::proto::OrderProgress;
using tp::proto::OrderStatus;
using tp::proto::Step;

constexpr std::array all_statuses = {
    OrderStatus::new_order, OrderStatus::accepted, OrderStatus::partially_filled, OrderStatus::filled,
    OrderStatus::rejected,  OrderStatus::canceled, OrderStatus::unknown,          OrderStatus::expired};

std::string name(OrderStatus s) { return std::string(tp::proto::to_string(s)); }

// The arrows of the diagram, written out independently of the code.
bool expected_arrow(OrderStatus from, OrderStatus to) {
  using S = OrderStatus;
  auto one_of = [&](std::initializer_list<S> set) {
    for (S s : set)
      if (s == to) return true;
    return false;
  };
  switch (from) {
    case S::new_order:
    case S::unknown:
      return one_of({S::accepted, S::partially_filled, S::filled, S::rejected, S::canceled, S::expired});
    case S::accepted:
      return one_of({S::partially_filled, S::filled, S::canceled, S::expired});
    case S::partially_filled:
      return one_of({S::filled, S::canceled, S::expired});
    default:
      return false;
  }
}

// A plausible cumulative fill for an order of 10 in `s`.
double filled_in(OrderStatus s) {
  switch (s) {
    case OrderStatus::partially_filled:
      return 4;
    case OrderStatus::filled:
      return 10;
    default:
      return 0;
  }
}

TEST(OrderLifecycle, EveryPairOfStatuses) {
  for (OrderStatus from : all_statuses) {
    for (OrderStatus to : all_statuses) {
      SCOPED_TRACE(name(from) + " -> " + name(to));
      EXPECT_EQ(can_follow(from, to), expected_arrow(from, to));
      // A cancel or an expiry keeps what had filled.
      const bool keeps = to == OrderStatus::canceled || to == OrderStatus::expired;
      const auto c = classify({from, filled_in(from)}, {to, keeps ? filled_in(from) : filled_in(to)}, 10);
      if (to == OrderStatus::unknown || to == OrderStatus::new_order) {
        EXPECT_EQ(c.step, Step::invalid);  // no update carries these
      } else if (from == to) {
        EXPECT_EQ(c.step, Step::same);
      } else if (expected_arrow(from, to)) {
        EXPECT_EQ(c.step, Step::apply) << c.why;
      } else {
        // Not a transition: an earlier view arriving late, or impossible.
        EXPECT_TRUE(c.step == Step::stale || c.step == Step::invalid) << tp::proto::to_string(c.step);
        EXPECT_FALSE(c.why.empty());
      }
    }
  }
}

TEST(OrderLifecycle, OlderViewsAreStaleContradictionsInvalid) {
  // A report of the partial fill that arrives after the answer saying FILLED.
  EXPECT_EQ(classify({OrderStatus::filled, 10}, {OrderStatus::partially_filled, 4}, 10).step, Step::stale);
  EXPECT_EQ(classify({OrderStatus::partially_filled, 4}, {OrderStatus::accepted, 0}, 10).step, Step::stale);
  EXPECT_EQ(classify({OrderStatus::canceled, 0}, {OrderStatus::accepted, 0}, 10).step, Step::stale);
  // A final status can neither change nor lose fills.
  EXPECT_EQ(classify({OrderStatus::filled, 10}, {OrderStatus::canceled, 10}, 10).step, Step::invalid);
  EXPECT_EQ(classify({OrderStatus::canceled, 4}, {OrderStatus::canceled, 2}, 10).step, Step::invalid);
  EXPECT_EQ(classify({OrderStatus::expired, 0}, {OrderStatus::filled, 10}, 10).step, Step::invalid);
}

TEST(OrderLifecycle, FillsAreCumulative) {
  EXPECT_EQ(classify({OrderStatus::partially_filled, 4}, {OrderStatus::partially_filled, 7}, 10).step,
            Step::apply);
  EXPECT_EQ(classify({OrderStatus::partially_filled, 7}, {OrderStatus::partially_filled, 7}, 10).step,
            Step::same);
  EXPECT_EQ(classify({OrderStatus::partially_filled, 7}, {OrderStatus::partially_filled, 4}, 10).step,
            Step::stale);
  // An IOC order's rest canceled after a partial fill.
  EXPECT_EQ(classify({OrderStatus::new_order, 0}, {OrderStatus::canceled, 3}, 10).step, Step::apply);
  // Rounding of a sum of partial fills is not a difference.
  EXPECT_EQ(classify({OrderStatus::filled, 0.3}, {OrderStatus::filled, 0.1 + 0.2}, 0.3).step, Step::same);
}

TEST(OrderLifecycle, ImpossibleUpdatesAreRefused) {
  EXPECT_EQ(classify({OrderStatus::accepted, 0}, {OrderStatus::filled, 11}, 10).step, Step::invalid);
  EXPECT_EQ(classify({OrderStatus::new_order, 0}, {OrderStatus::accepted, 2}, 10).step, Step::invalid);
  EXPECT_EQ(classify({OrderStatus::new_order, 0}, {OrderStatus::partially_filled, 0}, 10).step,
            Step::invalid);
  EXPECT_EQ(classify({OrderStatus::accepted, 0}, {OrderStatus::rejected, 0}, 10).step, Step::invalid);
  EXPECT_EQ(classify({OrderStatus::accepted, 0}, {OrderStatus::unknown, 0}, 10).step, Step::invalid);
}

}  // namespace
