// SinkComeback without sockets: when a sender's letters already sent may not
// have reached the sink (a connection lost and made again), from the
// connection counters of its two sockets.
#include <gtest/gtest.h>

#include <array>

#include "common/dead_letter.hpp"

using tp::ConnectionCounters;
using tp::SinkComeback;

namespace {

// Counters of one socket: `made` connections, `lost` of them dropped.
ConnectionCounters socket_of(std::uint64_t made, std::uint64_t lost) {
  return ConnectionCounters{.accepted = made, .dropped = lost};
}

bool due(SinkComeback& c, ConnectionCounters small, ConnectionCounters large) {
  const std::array sockets{small, large};
  return c.due(sockets);
}

TEST(SinkComeback, AFirstConnectionLostNothing) {
  SinkComeback c;
  EXPECT_FALSE(due(c, socket_of(0, 0), socket_of(0, 0)));  // the sink not up yet
  EXPECT_FALSE(due(c, socket_of(1, 0), socket_of(0, 0)));
  EXPECT_FALSE(due(c, socket_of(1, 0), socket_of(1, 0)));
}

TEST(SinkComeback, DueOnceWhenEverySocketIsBackAfterALoss) {
  SinkComeback c;
  EXPECT_FALSE(due(c, socket_of(1, 0), socket_of(1, 0)));
  EXPECT_FALSE(due(c, socket_of(1, 1), socket_of(1, 1)));  // the sink gone: nothing reaches it yet
  EXPECT_FALSE(due(c, socket_of(2, 1), socket_of(1, 1)));  // one socket back, the other still away
  EXPECT_TRUE(due(c, socket_of(2, 1), socket_of(2, 1)));
  EXPECT_FALSE(due(c, socket_of(2, 1), socket_of(2, 1)));  // answered
}

TEST(SinkComeback, ALossAndTheReturnSeenTogetherAreDue) {
  // Both events read in one turn: the counters moved by one each.
  SinkComeback c;
  EXPECT_FALSE(due(c, socket_of(1, 0), socket_of(1, 0)));
  EXPECT_TRUE(due(c, socket_of(2, 1), socket_of(2, 1)));
}

TEST(SinkComeback, OneSocketLostAloneIsDueWhenBack) {
  SinkComeback c;
  EXPECT_FALSE(due(c, socket_of(1, 0), socket_of(1, 1)));
  EXPECT_TRUE(due(c, socket_of(1, 0), socket_of(2, 1)));
}

TEST(SinkComeback, SeveralLossesBeforeTheReturnAreOneAnswer) {
  SinkComeback c;
  EXPECT_FALSE(due(c, socket_of(2, 2), socket_of(2, 2)));  // lost, back, lost again before a look
  EXPECT_TRUE(due(c, socket_of(3, 2), socket_of(3, 2)));
  EXPECT_FALSE(due(c, socket_of(3, 2), socket_of(3, 2)));
}

TEST(SinkComeback, EachLaterLossIsDueAgain) {
  SinkComeback c;
  EXPECT_TRUE(due(c, socket_of(2, 1), socket_of(2, 1)));
  EXPECT_FALSE(due(c, socket_of(2, 2), socket_of(2, 2)));
  EXPECT_TRUE(due(c, socket_of(3, 2), socket_of(3, 2)));
}

TEST(SinkComeback, ASinkThatNeverComesBackIsNeverDue) {
  SinkComeback c;
  EXPECT_FALSE(due(c, socket_of(1, 1), socket_of(1, 1)));
  EXPECT_FALSE(due(c, socket_of(1, 1), socket_of(1, 1)));
}

}  // namespace
