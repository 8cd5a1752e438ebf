// The dead-letter sink: binds the dead-letter socket and appends every dead
// letter to a JSON-lines file that a person can read and a tool can replay.
// A payload that is not a valid DeadLetter is still kept: it becomes a dead
// letter of its own, from source "dead_letter", so nothing vanishes.
// Single-threaded; owns its socket and file.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/log.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "proto/codec.hpp"

namespace tp::dead_letter {

std::string base64_encode(std::string_view bytes);

// One JSON line (without the newline) for a dead letter:
// {"ts_ns":..,"time":"2026-11-21T10:00:00.123456789Z","source":..,"reason":..,
//  "detail":..,"original_size":..,"original_b64":..}
std::string to_json_line(const proto::DeadLetter& letter);

// "2026-11-21T10:00:00.123456789Z" from epoch nanoseconds.
std::string format_utc(std::int64_t ts_ns);

class SinkNode {
 public:
  SinkNode(zmq::context_t& ctx, const Config& cfg, const Clock& clock,
           const Security& security = Security::none());
  // Runs until the stop flag is set; returns the exit code.
  int run();

 private:
  void handle(const std::vector<zmq::message_t>& frames, std::size_t count);
  void record(const proto::DeadLetter& letter);
  void write_stats();

  const Config& cfg_;
  const Clock& clock_;
  std::string path_;
  zmq::socket_t pull_;
  SocketMonitor pull_monitor_;  // after pull_: destroyed first
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  proto::Decoder decoder_;
  LogLimiter limiter_;
  std::uint64_t total_ = 0;
  // Reasons come from the senders: distinct ones are capped so that a hostile
  // sender cannot grow this map (and the stats file) without bound.
  std::map<std::string, std::uint64_t> by_reason_;
  std::uint64_t other_reasons_ = 0;
};

}  // namespace tp::dead_letter
