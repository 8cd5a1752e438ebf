// Fuzz target for multipart message handling: the input is cut into frames
// (1-byte length prefixes), sent over a real inproc PUSH/PULL pair and read
// back with tp::recv_message, the reader every program uses. Whatever the
// frame count, the reader must return the whole message with its true frame
// count, keep the frames it has room for intact, and leave the socket in
// step for the next message; a two-frame message then goes through the
// tick path's checks (decode, topic against instrument).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/zmq_util.hpp"
#include "proto/codec.hpp"

namespace {

struct Pipe {
  zmq::context_t ctx{1};
  zmq::socket_t push{ctx, zmq::socket_type::push};
  zmq::socket_t pull{ctx, zmq::socket_type::pull};
  Pipe() {
    pull.bind("inproc://fuzz-frames");
    push.connect("inproc://fuzz-frames");
  }
};

std::vector<std::string> cut(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> frames;
  std::size_t i = 0;
  while (i < size && frames.size() < 64) {
    std::size_t len = data[i++];
    len = std::min(len, size - i);
    frames.emplace_back(reinterpret_cast<const char*>(data + i), len);
    i += len;
  }
  return frames;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Pipe pipe;
  static std::vector<zmq::message_t> frames;
  static tp::proto::Decoder decoder;
  auto sent = cut(data, size);
  if (sent.empty()) return 0;
  // A sentinel after each message proves the reader stays in step.
  for (std::size_t i = 0; i < sent.size(); ++i)
    pipe.push.send(zmq::buffer(sent[i]),
                   i + 1 < sent.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  pipe.push.send(zmq::str_buffer("sentinel"));

  std::size_t total = 0;
  if (!tp::recv_message(pipe.pull, frames, 2, total, zmq::recv_flags::none)) std::abort();
  if (total != sent.size()) std::abort();
  for (std::size_t i = 0; i < std::min<std::size_t>(total, 2); ++i)
    if (tp::view_of(frames[i]) != sent[i]) std::abort();
  if (total == 2) {
    auto tick = decoder.decode_tick(tp::bytes_of(frames[1]));
    if (tick.ok())
      (void)tp::proto::topic_matches(tp::view_of(frames[0]), tp::proto::tick_topic(tick->instrument));
  }
  if (!tp::recv_message(pipe.pull, frames, 2, total, zmq::recv_flags::none)) std::abort();
  if (total != 1 || tp::view_of(frames[0]) != "sentinel") std::abort();
  return 0;
}
