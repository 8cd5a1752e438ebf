// The sending side of the dead-letter channel: what a program cannot process
// goes here with a reason and the original bytes. Sending never blocks the
// hot path: when the sink is away or slow and the queue is full, the letter
// is counted as dropped (and its bytes too). Problems are also logged, at
// most once per reason per interval (LogLimiter), and so is the overflow.
//
// Memory bound: the outbound queue is bounded in bytes, not only in letters.
// Letters go on two PUSH sockets to the same sink, chosen by encoded size: a
// letter of at most `small_letter_bytes` on one queue of `small_queue_letters`,
// a bigger one (up to `max_letter_bytes`: the original is cut at 64 KiB) on a
// queue of `large_queue_letters`. So at most `max_queued_bytes` (~6.8 MB) of
// letters wait for a stalled sink, plus ZeroMQ's per-message overhead, while
// the common small letters still have a deep queue. The sink sees letters of
// one program in order within a size class only; ts_ns orders them.
//
// A sent letter is not a delivered one: PUSH is at most once across a crash
// of the sink. A kill -9 of the sink takes with it what it had read but not
// yet written and what the kernel took for it while it died (libzmq 4.3.4
// loses the first letter sent in that moment, send() having succeeded).
// The sender's only trace is its connection, lost and made again: a sender
// that can send its letters again (the executor's, stored) watches it
// (SinkWatch::on) and is told when the sink is back (sink_back_after_loss).
// Single-threaded, like the program loop that owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"

namespace tp {

// When letters already sent may not have reached the sink. Fed the
// connection counters of each of a sender's sockets (SocketMonitor), due()
// is true once each time every socket is connected again after one of them
// lost its connection: what was sent before the loss may be gone, and what
// is sent from now on reaches the sink that is back. A socket not connected
// yet at start lost nothing. Pure: no socket; not thread-safe.
class SinkComeback {
 public:
  bool due(std::span<const ConnectionCounters> sockets) noexcept;

 private:
  std::uint64_t drops_answered_ = 0;  // drops summed over the sockets when due() was last true
};

class DeadLetterSender {
 public:
  // Encoded letters up to this size take the small-letter queue.
  static constexpr std::size_t small_letter_bytes = 2048;
  static constexpr int small_queue_letters = 2000;
  static constexpr int large_queue_letters = 40;
  // Source, reason and key are cut at max_id_length, detail at
  // max_text_length, the original at max_payload_bytes; 64 bytes cover the
  // msgpack framing.
  static constexpr std::size_t max_letter_bytes =
      proto::max_payload_bytes + proto::max_text_length + 3 * proto::max_id_length + 64;
  static constexpr std::size_t max_queued_bytes =
      small_queue_letters * small_letter_bytes + large_queue_letters * max_letter_bytes;

  // Whether the connections to the sink are watched (sink_back_after_loss):
  // for a sender whose letters can be sent again.
  enum class SinkWatch { off, on };

  // Connects two PUSH sockets to `endpoint`; `source` names this program,
  // e.g. "strategy:1". With SinkWatch::on, a SocketMonitor per socket
  // (never redialling: that would drop the queued letters) watches from
  // before the connect. Throws zmq::error_t when libzmq refuses.
  DeadLetterSender(zmq::context_t& ctx, const std::string& endpoint, std::string source, const Clock& clock,
                   const Security& security = Security::none(), SinkWatch watch = SinkWatch::off);

  // Queues one dead letter (or counts it dropped when its queue is full) and
  // logs a warning through the limiter. A letter that may be sent again (a
  // stored one, after a restart) carries a `key` unique to this source, so
  // that the sink writes it once; such a resend passes the letter's own time
  // as `ts_ns` (0: now). True when it was queued.
  bool send(std::string_view reason, std::string_view detail, std::string_view original,
            std::string_view key = {}, std::int64_t ts_ns = 0);
  // send() for a letter this sender keeps until it is queued (one it owes):
  // false, and nothing counted or logged, when its queue has no room now.
  bool send_if_room(std::string_view reason, std::string_view detail, std::string_view original,
                    std::string_view key, std::int64_t ts_ns);
  void send(const proto::DecodeError& err, std::string_view original) {
    (void)send(proto::to_string(err.code), err.detail, original);
  }

  // True once each time the sink is connected again after a connection to
  // it was lost (SinkComeback): then the letters that may have been lost
  // are to be sent again (the sink writes a keyed letter once). Reads the
  // monitors' events: call it once a loop turn. Always false with
  // SinkWatch::off.
  bool sink_back_after_loss();

  std::uint64_t sent() const noexcept { return sent_; }
  // Letters not queued because their queue was full, and an upper bound of
  // their encoded bytes.
  std::uint64_t dropped() const noexcept { return dropped_; }
  std::uint64_t dropped_bytes() const noexcept { return dropped_bytes_; }
  const std::map<std::string, std::uint64_t, std::less<>>& by_reason() const noexcept { return by_reason_; }

 private:
  zmq::socket_t small_;
  zmq::socket_t large_;
  std::string source_;
  const Clock& clock_;
  proto::Encoder encoder_;
  proto::DeadLetter letter_;  // reused: its strings keep their capacity
  LogLimiter limiter_;
  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t dropped_bytes_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> by_reason_;
  zmq::socket_t& lane(std::string_view reason, std::string_view detail, std::string_view original,
                      std::string_view key, std::size_t& bound);
  // Queues the letter (fields already cut to their limits) when its lane
  // has room; `bound`: an upper bound of its encoded bytes.
  bool queue(std::string_view reason, std::string_view detail, std::string_view original,
             std::string_view key, std::int64_t ts_ns, std::size_t& bound);
  void count_reason(std::string_view reason);
  // After the sockets: a monitor goes before the socket it watches.
  std::unique_ptr<SocketMonitor> small_monitor_;
  std::unique_ptr<SocketMonitor> large_monitor_;
  SinkComeback comeback_;
};

}  // namespace tp
