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
// Single-threaded, like the program loop that owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/security.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"

namespace tp {

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

  // Connects two PUSH sockets to `endpoint`; `source` names this program,
  // e.g. "strategy:1".
  DeadLetterSender(zmq::context_t& ctx, const std::string& endpoint, std::string source, const Clock& clock,
                   const Security& security = Security::none());

  // Queues one dead letter (or counts it dropped when its queue is full) and
  // logs a warning through the limiter. A letter that may be sent again (a
  // stored one, after a restart) carries a `key` unique to this source, so
  // that the sink writes it once; such a resend passes the letter's own time
  // as `ts_ns` (0: now).
  void send(std::string_view reason, std::string_view detail, std::string_view original,
            std::string_view key = {}, std::int64_t ts_ns = 0);
  void send(const proto::DecodeError& err, std::string_view original) {
    send(proto::to_string(err.code), err.detail, original);
  }

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
};

}  // namespace tp
