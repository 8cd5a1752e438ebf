// Counts what ZeroMQ does to a socket's connections behind the program's
// back. A frame above ZMQ_MAXMSGSIZE, a ZMTP protocol error or a failed
// handshake never reaches recv(): ZeroMQ drops the connection itself, so no
// dead letter can be written for it. These counters are the trace instead.
//
// Such a drop is also final for a socket that connected: libzmq terminates
// the session after a protocol error instead of reconnecting (it reconnects
// only after an I/O error), so one oversized frame from a peer would cut a
// subscriber off for good. Given the endpoint, the monitor dials it again
// after every disconnect (subscriptions are replayed by ZeroMQ).
//
// One SocketMonitor watches one socket through zmq_socket_monitor and an
// inproc PAIR; drain() reads the queued events without blocking and is meant
// to be called once per loop turn. It must be destroyed before the socket it
// watches (declare it after that socket). Not thread-safe: the loop's thread.
#pragma once

#include <cstdint>
#include <string>
#include <zmq.hpp>

namespace tp {

struct ConnectionCounters {
  std::uint64_t accepted = 0;           // connections made (accepted or connected)
  std::uint64_t dropped = 0;            // connections closed: peer gone, oversized frame, protocol error
  std::uint64_t handshakes_failed = 0;  // ZMTP/security handshake failures (protocol, auth, other)
  std::uint64_t redials = 0;            // connects made again by the monitor after a drop
  std::uint64_t accept_failed = 0;      // incoming connections refused by accept(2) (e.g. EMFILE)

  ConnectionCounters& operator+=(const ConnectionCounters& o) noexcept {
    accepted += o.accepted;
    dropped += o.dropped;
    handshakes_failed += o.handshakes_failed;
    redials += o.redials;
    accept_failed += o.accept_failed;
    return *this;
  }
};

class SocketMonitor {
 public:
  // Starts monitoring `socket` (which must outlive this object); when
  // `redial_endpoint` is set (the socket connects to it), a dropped
  // connection is dialled again. Throws zmq::error_t when libzmq refuses.
  SocketMonitor(zmq::context_t& ctx, zmq::socket_t& socket, std::string redial_endpoint = {});
  ~SocketMonitor();
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  // Reads every event queued so far (never blocks), updates the counters and
  // redials when a connection was dropped.
  void drain();
  const ConnectionCounters& counters() const noexcept { return counters_; }

 private:
  void redial();

  zmq::socket_t& watched_;
  std::string redial_endpoint_;
  zmq::socket_t events_;
  ConnectionCounters counters_;
};

}  // namespace tp
