// RunLoop, the publish helper and the stats header: timers driven by a
// FakeClock (no real waiting: every turn is run with a zero wait), the stop
// source, readers on real inproc sockets, drops counted at a high-water mark.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/disk_watch.hpp"
#include "common/run_loop.hpp"
#include "common/stats.hpp"
#include "common/stop.hpp"
#include "common/zmq_util.hpp"
#include "test_support/temp_dir.hpp"

namespace {

using tp::RunLoop;

constexpr std::int64_t ms = tp::ns_per_ms;

TEST(RunLoop, TimerFiresWhenDueOnTheFakeClock) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  std::vector<std::int64_t> fired;
  const auto start = clock.monotonic_ns();
  loop.add_timer(start + 10 * ms, 10 * ms, RunLoop::Cadence::fixed_rate,
                 [&](std::int64_t now) { fired.push_back(now); });

  loop.run_once(0);
  EXPECT_TRUE(fired.empty());
  clock.advance_ms(9);
  loop.run_once(0);
  EXPECT_TRUE(fired.empty());
  clock.advance_ms(1);
  loop.run_once(0);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], start + 10 * ms);
  loop.run_once(0);  // not due again until a period later
  EXPECT_EQ(fired.size(), 1u);
  clock.advance_ms(10);
  loop.run_once(0);
  EXPECT_EQ(fired.size(), 2u);
}

TEST(RunLoop, AOnceTimerFiresOnceAndACancelledTimerNever) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  int once = 0, periodic = 0;
  const auto start = clock.monotonic_ns();
  loop.add_timer(start + 5 * ms, 0, RunLoop::Cadence::once, [&](std::int64_t) { ++once; });
  const auto id =
      loop.add_timer(start + 5 * ms, 5 * ms, RunLoop::Cadence::fixed_rate, [&](std::int64_t) { ++periodic; });
  clock.advance_ms(5);
  loop.run_once(0);
  EXPECT_EQ(once, 1);
  EXPECT_EQ(periodic, 1);
  loop.cancel_timer(id);
  loop.cancel_timer(12345);  // unknown: ignored
  for (int i = 0; i < 3; ++i) {
    clock.advance_ms(5);
    loop.run_once(0);
  }
  EXPECT_EQ(once, 1);
  EXPECT_EQ(periodic, 1);
}

TEST(RunLoop, TimersAddedOrCancelledByATimerTakeEffectSafely) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  std::vector<std::string> fired;
  const auto start = clock.monotonic_ns();
  RunLoop::TimerId self = 0;
  RunLoop::TimerId victim = 0;
  self = loop.add_timer(start, ms, RunLoop::Cadence::fixed_delay, [&](std::int64_t now) {
    fired.push_back("self");
    loop.cancel_timer(self);    // its own: never again
    loop.cancel_timer(victim);  // later in the same turn: not fired
    // Many adds: a push into the list being walked would move this callback.
    for (int i = 0; i < 64; ++i)
      loop.add_timer(now, 0, RunLoop::Cadence::once, [&](std::int64_t) { fired.push_back("added"); });
  });
  victim = loop.add_timer(start, ms, RunLoop::Cadence::fixed_delay,
                          [&](std::int64_t) { fired.push_back("victim"); });
  loop.run_once(0);
  ASSERT_EQ(fired, std::vector<std::string>{"self"});  // the added ones wait for the next turn
  loop.run_once(0);
  EXPECT_EQ(fired.size(), 65u);
  EXPECT_EQ(std::count(fired.begin(), fired.end(), "victim"), 0);
  clock.advance_ms(5);
  loop.run_once(0);
  EXPECT_EQ(fired.size(), 65u);
}

TEST(RunLoop, FixedRateKeepsItsPhaseAndDoesNotBurstAfterAStall) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  int fired = 0;
  const auto start = clock.monotonic_ns();
  loop.add_timer(start, 10 * ms, RunLoop::Cadence::fixed_rate, [&](std::int64_t) { ++fired; });
  loop.run_once(0);
  EXPECT_EQ(fired, 1);
  clock.advance_ms(13);  // late by 3 ms: the next is still due at start + 20 ms
  loop.run_once(0);
  EXPECT_EQ(fired, 2);
  clock.advance_ms(7);
  loop.run_once(0);
  EXPECT_EQ(fired, 3);
  clock.advance_ms(1000);  // a stall of 100 periods: two firings, not a hundred
  for (int i = 0; i < 5; ++i) loop.run_once(0);
  EXPECT_EQ(fired, 5);
  clock.advance_ms(9);
  loop.run_once(0);
  EXPECT_EQ(fired, 5);
  clock.advance_ms(1);
  loop.run_once(0);
  EXPECT_EQ(fired, 6);
}

TEST(RunLoop, FixedDelayCountsThePeriodFromTheFiring) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  int fired = 0;
  loop.add_timer(clock.monotonic_ns(), 10 * ms, RunLoop::Cadence::fixed_delay,
                 [&](std::int64_t) { ++fired; });
  loop.run_once(0);
  clock.advance_ms(13);
  loop.run_once(0);
  EXPECT_EQ(fired, 2);
  clock.advance_ms(9);  // due at 23 ms, now 22 ms
  loop.run_once(0);
  EXPECT_EQ(fired, 2);
  clock.advance_ms(1);
  loop.run_once(0);
  EXPECT_EQ(fired, 3);
}

TEST(RunLoop, TimersRunOnMonotonicTimeNotTheWallClock) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  int fired = 0;
  loop.add_timer(clock.monotonic_ns() + 10 * ms, 10 * ms, RunLoop::Cadence::fixed_rate,
                 [&](std::int64_t) { ++fired; });
  clock.set_ns(clock.now_ns() + 3600'000 * ms);  // an operator steps the wall clock an hour ahead
  loop.run_once(0);
  EXPECT_EQ(fired, 0);
}

TEST(RunLoop, ReadersWorkThenTimersInTheirOrder) {
  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull), push(ctx, zmq::socket_type::push);
  pull.bind("inproc://order");
  push.connect("inproc://order");
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  std::vector<std::string> calls;
  loop.add_timer(clock.monotonic_ns(), ms, RunLoop::Cadence::fixed_rate,
                 [&](std::int64_t) { calls.push_back("timer"); });
  loop.add_work([&] {
    calls.push_back("work");
    return 0;
  });
  loop.add_reader(pull, [&] {
    zmq::message_t m;
    while (pull.recv(m, zmq::recv_flags::dontwait)) calls.push_back("read " + m.to_string());
  });
  push.send(zmq::str_buffer("a"), zmq::send_flags::none);
  // Bounded: the message is there as soon as inproc delivers it.
  for (int i = 0; i < 1000 && calls.empty(); ++i) loop.run_once(10);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls, (std::vector<std::string>{"read a", "work", "timer"}));
}

TEST(RunLoop, AReaderIsNotCalledWithoutInput) {
  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.bind("inproc://quiet");
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  int reads = 0;
  loop.add_reader(pull, [&] { ++reads; });
  loop.run_once(0);
  EXPECT_EQ(reads, 0);
}

TEST(RunLoop, APausedReaderIsNotPolledAndItsInputWaits) {
  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.bind("inproc://paused");
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.connect("inproc://paused");
  ASSERT_TRUE(push.send(zmq::str_buffer("x"), zmq::send_flags::none));
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  bool enabled = false;
  int reads = 0;
  loop.add_reader(
      pull,
      [&] {
        zmq::message_t m;
        if (pull.recv(m, zmq::recv_flags::dontwait)) ++reads;
      },
      [&] { return enabled; });
  loop.run_once(0);
  EXPECT_EQ(reads, 0) << "paused: not polled, though a message waits";
  enabled = true;
  loop.run_once(1000);  // bounded; the message is already there
  EXPECT_EQ(reads, 1);
}

TEST(RunLoop, StopsOnItsStopSource) {
  tp::FakeClock clock;
  int turns = 0;
  RunLoop loop(clock, [&] { return turns >= 3; });
  loop.add_work([&] {
    ++turns;
    return 1;  // busy: no waiting between turns
  });
  loop.run();
  EXPECT_EQ(turns, 3);
  EXPECT_TRUE(loop.stopping());
}

TEST(RunLoop, StoppedBeforeTheFirstTurnRunsNone) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return true; });
  int turns = 0;
  loop.add_work([&] { return ++turns; });
  loop.run();
  EXPECT_EQ(turns, 0);
}

TEST(RunLoop, FinishSkipsTheRestOfTheTurn) {
  tp::FakeClock clock;
  RunLoop loop(clock, [] { return false; });
  int later = 0;
  loop.add_work([&] {
    loop.finish();
    return 0;
  });
  loop.add_work([&] { return ++later; });
  loop.add_timer(clock.monotonic_ns(), ms, RunLoop::Cadence::fixed_rate, [&](std::int64_t) { ++later; });
  loop.run();  // returns after one turn
  EXPECT_EQ(later, 0);
  EXPECT_TRUE(loop.stopping());
}

TEST(RunLoop, WaitsNoLongerThanTheNextTimerOrWakeBy) {
  // A real clock here: the wait is what is measured. Bounds are generous;
  // only "not the 10 s max wait" matters.
  tp::SystemClock clock;
  RunLoop loop(
      clock, [] { return false; }, 10'000);
  int fired = 0;
  loop.add_timer(clock.monotonic_ns() + 5 * ms, 60'000 * ms, RunLoop::Cadence::fixed_rate,
                 [&](std::int64_t) { ++fired; });
  auto t0 = clock.monotonic_ns();
  while (fired == 0) loop.run_once(10'000);
  EXPECT_LT(clock.monotonic_ns() - t0, 5'000 * ms);

  bool hinted = false;
  loop.add_work([&] {
    if (!hinted) loop.wake_by(clock.monotonic_ns() + 2 * ms);
    hinted = true;
    return 0;
  });
  loop.run_once(0);  // the work asks to be woken in 2 ms
  t0 = clock.monotonic_ns();
  loop.run_once(10'000);
  EXPECT_LT(clock.monotonic_ns() - t0, 5'000 * ms);
}

TEST(RunLoop, DefaultStopSourceIsTheProcessStopFlag) {
  // In a child: the process flag, once set, stays set.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    tp::SystemClock clock;
    RunLoop loop(clock);
    int turns = 0;
    loop.add_work([&] {
      if (++turns == 2) tp::request_stop();
      return 1;
    });
    loop.run();
    ::_exit(turns == 2 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RunLoop, SigtermUnderTheStopHandlersEndsTheLoopWithoutInterruptingThePoll) {
  // The process model of every program: the handlers first, then a loop
  // polling a socket. SIGSTOP/SIGCONT and SIGTERM arrive while it polls; the
  // poll must never fail with EINTR (RunLoop would throw), and the loop ends
  // at its next turn.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    tp::install_stop_handlers();
    int code = 0;
    try {
      zmq::context_t ctx(1);
      zmq::socket_t pull(ctx, zmq::socket_type::pull);
      pull.set(zmq::sockopt::linger, 0);
      pull.bind("inproc://signals");
      tp::SystemClock clock;
      RunLoop loop(clock, RunLoop::default_stop_source(), 50);
      loop.add_reader(pull, [] {});
      loop.run_once(0);
      (void)!::write(ready[1], "r", 1);
      loop.run();
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::kill(pid, SIGSTOP);
  ::kill(pid, SIGCONT);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Publish, CountsWhatWentAndWhatADontwaitSendDroppedAtTheHighWaterMark) {
  zmq::context_t ctx(1);
  auto push = tp::make_socket(ctx, zmq::socket_type::push,
                              tp::SocketOptions{.linger_ms = 0, .sndhwm = 1, .rcvhwm = 1});
  auto pull = tp::make_socket(ctx, zmq::socket_type::pull,
                              tp::SocketOptions{.linger_ms = 0, .sndhwm = 1, .rcvhwm = 1});
  pull.bind("inproc://hwm");
  push.connect("inproc://hwm");
  tp::SendCounters counters;
  std::uint64_t went = 0, refused = 0;
  // Nobody reads: the pipe fills within a few messages and sends are refused.
  for (int i = 0; i < 100; ++i) (tp::publish(push, "payload", counters) ? went : refused)++;
  EXPECT_GT(went, 0u);
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(counters.sent, went);
  EXPECT_EQ(counters.dropped, refused);

  // Whatever went arrives whole.
  zmq::message_t m;
  std::uint64_t received = 0;
  while (pull.recv(m, zmq::recv_flags::dontwait)) {
    EXPECT_EQ(m.to_string(), "payload");
    ++received;
  }
  EXPECT_EQ(received, went);
}

TEST(Publish, TopicAndPayloadGoAsOneMessageOrNotAtAll) {
  zmq::context_t ctx(1);
  auto push = tp::make_socket(ctx, zmq::socket_type::push,
                              tp::SocketOptions{.linger_ms = 0, .sndhwm = 1, .rcvhwm = 1});
  auto pull = tp::make_socket(ctx, zmq::socket_type::pull,
                              tp::SocketOptions{.linger_ms = 0, .sndhwm = 1, .rcvhwm = 1});
  pull.bind("inproc://hwm2");
  push.connect("inproc://hwm2");
  tp::SendCounters counters;
  for (int i = 0; i < 100; ++i) tp::publish(push, "TOPIC", "body", counters);
  EXPECT_GT(counters.dropped, 0u);
  std::vector<zmq::message_t> frames;
  std::size_t count = 0;
  std::uint64_t received = 0;
  while (tp::recv_message(pull, frames, 4, count)) {
    ASSERT_EQ(count, 2u);
    EXPECT_EQ(frames[0].to_string(), "TOPIC");
    EXPECT_EQ(frames[1].to_string(), "body");
    ++received;
  }
  EXPECT_EQ(received, counters.sent);
}

TEST(Publish, APushWithoutPeerDropsAtOnce) {
  zmq::context_t ctx(1);
  auto push = tp::make_socket(ctx, zmq::socket_type::push, tp::SocketOptions{.linger_ms = 0});
  tp::SendCounters counters;
  EXPECT_FALSE(tp::publish(push, "x", counters));
  EXPECT_EQ(counters.sent, 0u);
  EXPECT_EQ(counters.dropped, 1u);
}

TEST(StatsHeader, ProgramPidAndWallTimeFirst) {
  auto o = tp::stats_header("strategy-1", 1234);
  o.add("ticks", std::uint64_t{5});
  EXPECT_EQ(o.str(), "{\"program\":\"strategy-1\",\"pid\":" + std::to_string(::getpid()) +
                         ",\"ts_ns\":1234,\"ticks\":5}");
}

TEST(StatsHeader, WriteStatsFileTellsWriteFailures) {
  const tp::test::TempDir temp("run_loop_");
  const std::string dir = temp.path().string();
  tp::WriteFailures failures;
  const auto missing = dir + "/missing/x.stats.json";
  EXPECT_FALSE(tp::write_stats_file(missing, "{}", failures, "tried again later"));
  EXPECT_EQ(failures.total(), 1u);
  EXPECT_EQ(failures.failing().count(missing), 1u);

  const auto path = dir + "/x.stats.json";
  EXPECT_TRUE(tp::write_stats_file(path, "{\"n\":1}", failures, "tried again later"));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"n\":1}\n");
  EXPECT_EQ(failures.failing().count(path), 0u);
}

}  // namespace
