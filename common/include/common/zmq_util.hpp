// Socket helpers: every socket is made with an explicit linger, high-water
// marks, a maximum message size and the [network] link options (keepalive,
// redial, heartbeat), and multipart messages are read whole so that a wrong
// frame count can never desynchronise a reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/config.hpp"
#include "proto/codec.hpp"

namespace tp {

struct SocketOptions {
  int linger_ms = 500;  // bounded: a stop never hangs on an absent peer
  int sndhwm = 10000;
  int rcvhwm = 10000;
  std::int64_t max_msg_size = static_cast<std::int64_t>(proto::max_payload_bytes);
  // Pass the config's [network] where the socket is made; the defaults are
  // the config's defaults, for sockets made where no config is at hand.
  NetworkConfig network{};
};

// Sets the [network] options on `s`, by its type: the redial interval,
// connect timeout and TCP keepalive on every socket, which is what finds a
// dead link by default. ZMTP heartbeats are off by default: libzmq 4.3.4
// aborts (`!_io_error`, stream_engine_base.cpp:331) a reader that stopped
// reading at its high-water mark with a PING buffered, when it answers that
// PING after its peer hung up (the chaos test hit it on the executor's
// signal PULL and the sink's letter PULL). Turned on, they run only on the
// sockets that write (PUB, PUSH, REQ, REP, ROUTER, DEALER): a PING every
// heartbeat_ms, the connection dropped after heartbeat_timeout_ms without
// traffic, and that timeout sent as the PING's TTL so that the reading peer
// drops it too, except from a PUSH, whose PULL back-pressures when full
// rather than drop what is in the kernel's buffers.
void set_link_options(zmq::socket_t& s, zmq::socket_type type, const NetworkConfig& network);

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, const SocketOptions& opts = {});

// bind/connect that throw std::runtime_error naming the endpoint.
void bind(zmq::socket_t& s, const std::string& endpoint);
void connect(zmq::socket_t& s, const std::string& endpoint);

// Receives one whole multipart message into `frames` (reused; resized to the
// frame count). Returns false when nothing was ready (EAGAIN) with
// `flags`=dontwait. Frames beyond `max_frames` are read and dropped, and the
// returned `total_frames` tells the caller the real count.
bool recv_message(zmq::socket_t& s, std::vector<zmq::message_t>& frames, std::size_t max_frames,
                  std::size_t& total_frames, zmq::recv_flags flags = zmq::recv_flags::dontwait);

inline proto::Bytes bytes_of(const zmq::message_t& m) noexcept {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}
inline std::string_view view_of(const zmq::message_t& m) noexcept {
  return {static_cast<const char*>(m.data()), m.size()};
}

// What non-blocking sends on one socket did: `sent` taken by ZeroMQ,
// `dropped` refused because they would have blocked (a PUSH or DEALER at its
// high-water mark, or with no peer to take them). A PUB never refuses: at
// its high-water mark ZeroMQ drops for the slow subscriber and says nothing.
struct SendCounters {
  std::uint64_t sent = 0;
  std::uint64_t dropped = 0;
};

// Sends `payload` (after `topic` as a first frame, when given) as one
// message without blocking. Returns true when ZeroMQ took it, false when it
// would have blocked; either way `counters` counts it. Throws zmq::error_t
// on a real failure (a REP out of turn, a closed context).
bool publish(zmq::socket_t& s, std::string_view payload, SendCounters& counters);
bool publish(zmq::socket_t& s, std::string_view topic, std::string_view payload, SendCounters& counters);

// A message with more frames than its reader expects keeps this many for its
// `bad_frames` dead letter: receive with max_frames = max_kept_frames there.
inline constexpr std::size_t max_kept_frames = 16;

// Concatenates the first `count` frames (at most max_kept_frames) for a dead
// letter, joined by '|' ("topic|payload" loses nothing that matters for
// replay: the frame count goes in the detail).
std::string join_frames(const std::vector<zmq::message_t>& frames, std::size_t count);

}  // namespace tp
