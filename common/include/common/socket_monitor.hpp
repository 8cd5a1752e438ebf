// Counts what ZeroMQ does to a socket's connections behind the program's
// back. A frame above ZMQ_MAXMSGSIZE, a ZMTP protocol error or a failed
// handshake never reaches recv(): ZeroMQ drops the connection itself, so no
// dead letter can be written for it. These counters are the trace instead.
//
// One SocketMonitor watches one socket through zmq_socket_monitor and an
// inproc PAIR; drain() reads the queued events without blocking and is meant
// to be called once per loop turn. It must be destroyed before the socket it
// watches (declare it after that socket). Not thread-safe: the loop's thread.
#pragma once

#include <cstdint>

#include <zmq.hpp>

namespace tp {

struct ConnectionCounters {
  std::uint64_t accepted = 0;           // connections made (accepted or connected)
  std::uint64_t dropped = 0;            // connections closed: peer gone, oversized frame, protocol error
  std::uint64_t handshakes_failed = 0;  // ZMTP/security handshake failures (protocol, auth, other)

  ConnectionCounters& operator+=(const ConnectionCounters& o) noexcept {
    accepted += o.accepted;
    dropped += o.dropped;
    handshakes_failed += o.handshakes_failed;
    return *this;
  }
};

class SocketMonitor {
 public:
  // Starts monitoring `socket` (which must outlive this object). Throws
  // zmq::error_t when libzmq refuses.
  SocketMonitor(zmq::context_t& ctx, zmq::socket_t& socket);
  ~SocketMonitor();
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  // Reads every event queued so far (never blocks) and updates the counters.
  void drain();
  const ConnectionCounters& counters() const noexcept { return counters_; }

 private:
  zmq::socket_t& watched_;
  zmq::socket_t events_;
  ConnectionCounters counters_;
};

}  // namespace tp
