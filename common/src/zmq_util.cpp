#include "common/zmq_util.hpp"

#include <stdexcept>

namespace tp {

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, const SocketOptions& opts) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, opts.linger_ms);
  s.set(zmq::sockopt::sndhwm, opts.sndhwm);
  s.set(zmq::sockopt::rcvhwm, opts.rcvhwm);
  s.set(zmq::sockopt::maxmsgsize, opts.max_msg_size);
  set_link_options(s, type, opts.network);
  return s;
}

void set_link_options(zmq::socket_t& s, zmq::socket_type type, const NetworkConfig& n) {
  const bool reader =
      type == zmq::socket_type::sub || type == zmq::socket_type::xsub || type == zmq::socket_type::pull;
  const int heartbeat_ms = reader ? 0 : n.heartbeat_ms;
  s.set(zmq::sockopt::heartbeat_ivl, heartbeat_ms);
  if (heartbeat_ms > 0) {
    s.set(zmq::sockopt::heartbeat_timeout, n.heartbeat_timeout_ms);
    s.set(zmq::sockopt::heartbeat_ttl, type == zmq::socket_type::push ? 0 : n.heartbeat_timeout_ms);
  }
  s.set(zmq::sockopt::reconnect_ivl, n.reconnect_ms);
  s.set(zmq::sockopt::reconnect_ivl_max, n.reconnect_max_ms);
  s.set(zmq::sockopt::connect_timeout, n.connect_timeout_ms);
  s.set(zmq::sockopt::tcp_keepalive, n.tcp_keepalive ? 1 : 0);
  if (n.tcp_keepalive) {
    s.set(zmq::sockopt::tcp_keepalive_idle, n.tcp_keepalive_idle_s);
    s.set(zmq::sockopt::tcp_keepalive_intvl, n.tcp_keepalive_interval_s);
    s.set(zmq::sockopt::tcp_keepalive_cnt, n.tcp_keepalive_count);
  }
}

void bind(zmq::socket_t& s, const std::string& endpoint) {
  try {
    s.bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot bind " + endpoint + ": " + e.what());
  }
}

void connect(zmq::socket_t& s, const std::string& endpoint) {
  try {
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot connect to " + endpoint + ": " + e.what());
  }
}

bool recv_message(zmq::socket_t& s, std::vector<zmq::message_t>& frames, std::size_t max_frames,
                  std::size_t& total_frames, zmq::recv_flags flags) {
  if (frames.size() < max_frames + 1) frames.resize(max_frames + 1);
  total_frames = 0;
  zmq::message_t overflow;
  for (;;) {
    auto& slot = total_frames < max_frames ? frames[total_frames] : overflow;
    auto got = s.recv(slot, total_frames == 0 ? flags : zmq::recv_flags::none);
    if (!got) return false;  // only possible on the first frame with dontwait
    ++total_frames;
    if (!slot.more()) return true;
  }
}

bool publish(zmq::socket_t& s, std::string_view payload, SendCounters& counters) {
  if (s.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait)) {
    ++counters.sent;
    return true;
  }
  ++counters.dropped;
  return false;
}

bool publish(zmq::socket_t& s, std::string_view topic, std::string_view payload, SendCounters& counters) {
  // Only the first frame can be refused: once it is in, ZeroMQ takes the
  // rest of the message whole.
  const auto first = zmq::send_flags::dontwait | zmq::send_flags::sndmore;
  if (!s.send(zmq::const_buffer(topic.data(), topic.size()), first)) {
    ++counters.dropped;
    return false;
  }
  s.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
  ++counters.sent;
  return true;
}

std::string join_frames(const std::vector<zmq::message_t>& frames, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count && i < max_kept_frames && i < frames.size(); ++i) {
    if (i) out += '|';
    out.append(view_of(frames[i]));
  }
  return out;
}

}  // namespace tp
