// DeadLetterSender's queue is bounded in bytes: with no sink, exactly the
// documented number of small and of large letters is queued, the rest is
// counted as dropped, and what was queued reaches a sink that binds later.
// Watching the sink, it tells once when a sink that went away is back.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/dead_letter.hpp"
#include "proto/codec.hpp"
#include "test_support/temp_dir.hpp"

using tp::DeadLetterSender;

namespace {

TEST(DeadLetterSender, LargestLetterFitsTheDocumentedBound) {
  tp::proto::DeadLetter d{.source = std::string(tp::proto::max_id_length, 's'),
                          .reason = std::string(tp::proto::max_id_length, 'r'),
                          .detail = std::string(tp::proto::max_text_length, 'd'),
                          .ts_ns = -1,
                          .original = std::string(tp::proto::max_payload_bytes, 'o'),
                          .key = std::string(tp::proto::max_id_length, 'k')};
  EXPECT_LE(tp::proto::encode_to_string(d).size(), DeadLetterSender::max_letter_bytes);
  EXPECT_LE(DeadLetterSender::max_queued_bytes, 8u << 20);
}

TEST(DeadLetterSender, QueueToAnAbsentSinkIsBoundedInBytes) {
  tp::test::TempDir dir("dl_sender_");
  const std::string endpoint = dir.ipc("dead_letters");
  std::uint64_t expected = 0;
  {
    zmq::context_t ctx(1);
    tp::SystemClock clock;
    DeadLetterSender sender(ctx, endpoint, "test", clock);
    const std::string small(100, 's');
    const std::string large(60'000, 'L');
    for (int i = 0; i < 3 * DeadLetterSender::small_queue_letters; ++i)
      sender.send("malformed", "small", small);
    for (int i = 0; i < 1000; ++i) sender.send("too_large", "large", large);
    expected = DeadLetterSender::small_queue_letters + DeadLetterSender::large_queue_letters;
    EXPECT_EQ(sender.sent(), expected);
    EXPECT_EQ(sender.dropped(),
              2u * DeadLetterSender::small_queue_letters + 1000u - DeadLetterSender::large_queue_letters);
    EXPECT_GE(sender.dropped_bytes(), (1000u - DeadLetterSender::large_queue_letters) * 60'000u);
    EXPECT_EQ(sender.by_reason().at("too_large"), 1000u);

    // A sink that comes late gets every queued letter.
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.set(zmq::sockopt::linger, 0);
    pull.set(zmq::sockopt::rcvtimeo, 5000);
    pull.bind(endpoint);
    std::uint64_t small_got = 0, large_got = 0;
    tp::proto::Decoder decoder;
    for (std::uint64_t i = 0; i < expected; ++i) {
      zmq::message_t m;
      ASSERT_TRUE(pull.recv(m)) << "after " << i << " letters";
      auto d = decoder.decode_dead_letter(tp::proto::as_bytes(m.to_string_view()));
      ASSERT_TRUE(d.ok());
      if (d.value().reason == "malformed")
        ++small_got;
      else
        ++large_got;
    }
    EXPECT_EQ(small_got, static_cast<std::uint64_t>(DeadLetterSender::small_queue_letters));
    EXPECT_EQ(large_got, static_cast<std::uint64_t>(DeadLetterSender::large_queue_letters));
  }
}

// A letter the sender owes is offered with send_if_room: refused without a
// count or a drop while its queue is full, queued (with its own time) once
// the queue has room.
TEST(DeadLetterSender, SendIfRoomRefusesWithoutCountingWhileTheQueueIsFull) {
  tp::test::TempDir dir("dl_sender_");
  const std::string endpoint = dir.ipc("dead_letters");
  zmq::context_t ctx(1);
  tp::SystemClock clock;
  DeadLetterSender sender(ctx, endpoint, "test", clock);
  for (int i = 0; i < DeadLetterSender::small_queue_letters; ++i)
    ASSERT_TRUE(sender.send("expired", "x", "o"));
  EXPECT_FALSE(sender.send_if_room("expired", "owed", "o", "key-1", 42));
  EXPECT_EQ(sender.sent(), static_cast<std::uint64_t>(DeadLetterSender::small_queue_letters));
  EXPECT_EQ(sender.dropped(), 0u) << "an owed letter refused is not a drop: it is still owed";
  EXPECT_EQ(sender.by_reason().at("expired"),
            static_cast<std::uint64_t>(DeadLetterSender::small_queue_letters));

  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.set(zmq::sockopt::rcvtimeo, 5000);
  pull.bind(endpoint);
  tp::proto::Decoder decoder;
  for (int i = 0; i < DeadLetterSender::small_queue_letters; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(pull.recv(m)) << i;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool queued = false;
  while (!queued && std::chrono::steady_clock::now() < deadline) {
    queued = sender.send_if_room("expired", "owed", "o", "key-1", 42);
    if (!queued) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(queued) << "the queue never had room again";
  EXPECT_EQ(sender.sent(), DeadLetterSender::small_queue_letters + 1u);
  zmq::message_t m;
  ASSERT_TRUE(pull.recv(m));
  auto d = decoder.decode_dead_letter(tp::proto::as_bytes(m.to_string_view()));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().key, "key-1");
  EXPECT_EQ(d.value().ts_ns, 42);
  EXPECT_EQ(d.value().detail, "owed");
}

// A PULL bound at `endpoint`, as the sink's.
zmq::socket_t bind_sink(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.set(zmq::sockopt::rcvtimeo, 5000);
  pull.bind(endpoint);
  return pull;
}

// Asks every 10 ms until `limit`.
bool back_within(DeadLetterSender& sender, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  do {
    if (sender.sink_back_after_loss()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

TEST(DeadLetterSender, TellsOnceWhenTheSinkIsBackAfterALostConnection) {
  tp::test::TempDir dir("dl_sender_");
  const std::string endpoint = dir.ipc("dead_letters");
  zmq::context_t ctx(1);
  tp::SystemClock clock;
  DeadLetterSender sender(ctx, endpoint, "test", clock, tp::Security::none(),
                          DeadLetterSender::SinkWatch::on);
  DeadLetterSender unwatched(ctx, endpoint, "other", clock);
  zmq::message_t m;
  {
    auto sink = bind_sink(ctx, endpoint);
    sender.send("malformed", "before", "x");
    ASSERT_TRUE(sink.recv(m));
    EXPECT_FALSE(back_within(sender, std::chrono::milliseconds(200)));  // the first connection lost nothing
  }
  EXPECT_FALSE(back_within(sender, std::chrono::milliseconds(200)));  // the sink gone, not back

  auto sink = bind_sink(ctx, endpoint);
  EXPECT_TRUE(back_within(sender, std::chrono::seconds(5)));
  EXPECT_FALSE(sender.sink_back_after_loss());  // once
  EXPECT_FALSE(unwatched.sink_back_after_loss());
  sender.send("malformed", "after", "x");
  ASSERT_TRUE(sink.recv(m));
}

}  // namespace
