// The sending side of the dead-letter channel: what a program cannot process
// goes here with a reason and the original bytes. Sending never blocks the
// hot path: when the sink is away and the queue is full, the letter is
// counted as dropped. Problems are also logged, at most once per reason per
// interval (LogLimiter).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/security.hpp"
#include "proto/codec.hpp"

namespace tp {

class DeadLetterSender {
 public:
  // Connects a PUSH socket to `endpoint`; `source` names this program, e.g.
  // "strategy:1".
  DeadLetterSender(zmq::context_t& ctx, const std::string& endpoint, std::string source,
                   const Clock& clock, const Security& security = Security::none());

  // Sends one dead letter and logs a warning through the limiter.
  void send(std::string_view reason, std::string_view detail, std::string_view original);
  void send(const proto::DecodeError& err, std::string_view original) {
    send(proto::to_string(err.code), err.detail, original);
  }

  std::uint64_t sent() const noexcept { return sent_; }
  std::uint64_t dropped() const noexcept { return dropped_; }
  const std::map<std::string, std::uint64_t, std::less<>>& by_reason() const noexcept { return by_reason_; }

 private:
  zmq::socket_t socket_;
  std::string source_;
  const Clock& clock_;
  proto::Encoder encoder_;
  LogLimiter limiter_;
  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> by_reason_;
};

}  // namespace tp
