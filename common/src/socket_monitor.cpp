#include "common/socket_monitor.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace tp {
namespace {

constexpr int watched_events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED | ZMQ_EVENT_CONNECTED |
                               ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

// The monitored socket's address names the inproc endpoint: unique among the
// sockets alive in this context, without a global counter.
std::string monitor_endpoint(const zmq::socket_t& s) {
  return "inproc://tp-monitor-" + std::to_string(reinterpret_cast<std::uintptr_t>(s.handle()));
}

}  // namespace

SocketMonitor::SocketMonitor(zmq::context_t& ctx, zmq::socket_t& socket, std::string redial_endpoint)
    : watched_(socket), redial_endpoint_(std::move(redial_endpoint)), events_(ctx, zmq::socket_type::pair) {
  const auto endpoint = monitor_endpoint(socket);
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), watched_events) != 0) throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

SocketMonitor::~SocketMonitor() {
  // Stop libzmq's side first so that it does not queue into a closed pipe.
  zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

void SocketMonitor::drain() {
  // Each event is two frames: [u16 event, u32 value] and the endpoint.
  for (;;) {
    zmq::message_t head;
    if (!events_.recv(head, zmq::recv_flags::dontwait)) return;
    zmq::message_t address;
    if (head.more()) (void)events_.recv(address, zmq::recv_flags::none);
    if (head.size() < sizeof(std::uint16_t)) continue;
    std::uint16_t event = 0;
    std::memcpy(&event, head.data(), sizeof event);
    switch (event) {
      case ZMQ_EVENT_ACCEPTED:
      case ZMQ_EVENT_CONNECTED:
        ++counters_.accepted;
        break;
      // accept(2) failed (EMFILE, ENFILE, ENOBUFS...): libzmq drops that
      // connection attempt and goes on listening; the count is the trace.
      case ZMQ_EVENT_ACCEPT_FAILED:
        ++counters_.accept_failed;
        break;
      case ZMQ_EVENT_DISCONNECTED:
        ++counters_.dropped;
        redial();
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        ++counters_.handshakes_failed;
        break;
      default:
        break;
    }
  }
}

void SocketMonitor::redial() {
  if (redial_endpoint_.empty()) return;
  // After an I/O error ZeroMQ is already reconnecting and after a protocol
  // error the session is gone; either way a fresh connect is right, and the
  // disconnect first keeps it from becoming a second connection.
  try {
    watched_.disconnect(redial_endpoint_);
  } catch (const zmq::error_t&) {
    // ENOENT: nothing left to disconnect.
  }
  try {
    watched_.connect(redial_endpoint_);
    ++counters_.redials;
  } catch (const zmq::error_t&) {
    // The endpoint was good at start-up; a failure here leaves the counters
    // (dropped without redials) for the operator to see.
  }
}

}  // namespace tp
