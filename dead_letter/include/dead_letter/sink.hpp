// The dead-letter sink: binds the dead-letter socket and appends every dead
// letter to a JSON-lines file that a person can read and a tool can replay.
// A payload that is not a valid DeadLetter is still kept: it becomes a dead
// letter of its own, from source "dead_letter", so nothing vanishes.
// Bounds: memory, a receive queue of rcvhwm letters (each <= 128 KiB) per
// connected sender; disk, the LetterFile's rotation; stored bytes, the
// OriginalSampler (every letter keeps its line, a flooding reason loses its
// originals but one in sample_one_in). The loop looks at the stop flag at
// least every work_slice_ms of work, so SIGTERM stops it under any load.
// A full disk or a lost descriptor never stops it: what could not be stored
// is counted exactly (lines_lost), the file and errno are logged at a
// bounded rate (WriteFailures), the stats show `files_failing` and an
// `alert` until a write succeeds again, and writing resumes with whole lines
// when space returns. Connections refused for lack of descriptors are
// counted (`accept_failed`).
// A letter with a key (one its sender may send again, after a restart) is
// written once per (source, key) among the last KeyMemory::default_capacity
// pairs, remembered across restarts by reading the files back at start; a
// duplicate is counted in `duplicates_dropped`, not written and not counted
// as a dead letter. Unkeyed letters are never deduplicated.
// One RunLoop: the socket, then the monitor; the stats as a timer, which also
// hands the same figures to the metrics server (when metrics.port is set).
// Single-threaded; owns its socket and file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/clock_skew.hpp"
#include "common/config.hpp"
#include "common/disk_watch.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/run_loop.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "dead_letter/key_memory.hpp"
#include "dead_letter/letter_file.hpp"
#include "dead_letter/sampler.hpp"
#include "proto/codec.hpp"

namespace tp::dead_letter {

std::string base64_encode(std::string_view bytes);

// One JSON line (without the newline) for a dead letter:
// {"ts_ns":..,"time":"2026-11-21T10:00:00.123456789Z","source":..,"reason":..,
//  "detail":..,"original_size":..,"original_b64":..}
// with "key":.. after "detail" when the letter has a key.
// With `store_original` false, original_b64 is "" and "original_stored":false
// is added; original_size is still the size received.
std::string to_json_line(const proto::DeadLetter& letter, bool store_original = true);

// "2026-11-21T10:00:00.123456789Z" from epoch nanoseconds.
std::string format_utc(std::int64_t ts_ns);

class SinkNode {
 public:
  // Letters queued per connected sender (ZMQ_RCVHWM): <= 32 * 128 KiB = 4 MiB.
  static constexpr int rcvhwm = 32;
  // Longest stretch of reading and writing between two looks at the stop
  // flag and the stats timer.
  static constexpr std::int64_t work_slice_ms = 50;
  // On stop, what is already queued is still written for at most this long.
  static constexpr std::int64_t final_drain_ms = 200;

  SinkNode(zmq::context_t& ctx, const Config& cfg, const Clock& clock,
           const Security& security = Security::none());
  // Runs until the stop flag is set; returns the exit code.
  int run();

 private:
  void handle(const std::vector<zmq::message_t>& frames, std::size_t count);
  void record(const proto::DeadLetter& letter);
  void write_stats();
  // Renders the stats' figures as Prometheus metrics and swaps them in.
  void publish_metrics();
  // After each flush: records a failed write, or a recovery, of the file.
  void check_file();
  void watch_connections(std::int64_t now);
  // Reads and records letters until none is ready, the stop flag is set or
  // `budget_ns` has passed; then flushes the file.
  void drain(std::int64_t budget_ns, bool watch_stop);

  const Config& cfg_;
  const Clock& clock_;
  std::string path_;
  zmq::socket_t pull_;
  SocketMonitor pull_monitor_;  // after pull_: destroyed first
  LetterFile file_;
  OriginalSampler sampler_;
  KeyMemory keys_;
  std::uint64_t duplicates_dropped_ = 0;
  ClockLags clock_lags_;
  LagWindow& letter_lag_ = clock_lags_.add("senders");  // every sender's clock, from the letters' ts_ns
  std::vector<zmq::message_t> frames_;
  proto::Decoder decoder_;
  LogLimiter limiter_;
  std::uint64_t total_ = 0;
  // Reasons come from the senders: distinct ones are capped so that a hostile
  // sender cannot grow this map (and the stats file) without bound.
  std::map<std::string, std::uint64_t> by_reason_;
  std::uint64_t other_reasons_ = 0;
  WriteFailures write_failures_;
  DiskWatch disk_;
  std::uint64_t write_errors_seen_ = 0;
  std::uint64_t bytes_written_seen_ = 0;
  std::uint64_t accept_failed_logged_ = 0;
  std::unique_ptr<metrics::MetricsServer> metrics_;  // null when metrics.port = 0
  RunLoop loop_;                                     // last: it holds pull_ and callbacks on this
};

}  // namespace tp::dead_letter
