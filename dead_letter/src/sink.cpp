#include "dead_letter/sink.hpp"

#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "common/stats.hpp"
#include "common/stop.hpp"
#include "common/zmq_util.hpp"

namespace tp::dead_letter {
namespace {
constexpr std::size_t max_distinct_reasons = 256;
}  // namespace

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
             static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (auto rest = bytes.size() - i; rest > 0) {
    auto n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string format_utc(std::int64_t ts_ns) {
  auto secs = static_cast<std::time_t>(ts_ns / 1'000'000'000);
  auto frac = ts_ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(frac));
  return buf;
}

std::string to_json_line(const proto::DeadLetter& d) {
  JsonObject o;
  o.add("ts_ns", d.ts_ns)
      .add("time", format_utc(d.ts_ns))
      .add("source", d.source)
      .add("reason", d.reason)
      .add("detail", d.detail)
      .add("original_size", static_cast<std::uint64_t>(d.original.size()))
      .add("original_b64", base64_encode(d.original));
  return o.str();
}

SinkNode::SinkNode(zmq::context_t& ctx, const Config& cfg, const Clock& clock, const Security& security)
    : cfg_(cfg),
      clock_(clock),
      path_(cfg.run_path(cfg.dead_letter.path, "dead_letters.jsonl")),
      pull_(make_socket(ctx, zmq::socket_type::pull,
                        SocketOptions{.linger_ms = 0, .sndhwm = 1000, .rcvhwm = 100000,
                                      .max_msg_size = static_cast<std::int64_t>(proto::max_dead_letter_bytes)})),
      pull_monitor_(ctx, pull_),
      file_(std::fopen(path_.c_str(), "a"), &std::fclose) {
  if (!file_) throw std::runtime_error("dead_letter.path: cannot open " + path_ + " for appending");
  security.bind(pull_, cfg.endpoints.dead_letters);
  spdlog::info("dead-letter sink on {} appending to {}", cfg.endpoints.dead_letters, path_);
}

void SinkNode::record(const proto::DeadLetter& letter) {
  auto line = to_json_line(letter);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), file_.get());
  ++total_;
  if (auto it = by_reason_.find(letter.reason); it != by_reason_.end())
    ++it->second;
  else if (by_reason_.size() < max_distinct_reasons)
    by_reason_.emplace(letter.reason, 1);
  else
    ++other_reasons_;
}

void SinkNode::handle(const std::vector<zmq::message_t>& frames, std::size_t count) {
  if (count == 1) {
    auto decoded = decoder_.decode_dead_letter(bytes_of(frames[0]));
    if (decoded) {
      record(decoded.value());
      return;
    }
    proto::DeadLetter own{.source = "dead_letter",
                          .reason = std::string(proto::to_string(decoded.error().code)),
                          .detail = "undecodable dead letter: " + decoded.error().detail,
                          .ts_ns = clock_.now_ns(),
                          .original = std::string(view_of(frames[0]))};
    record(own);
  } else {
    record(proto::DeadLetter{.source = "dead_letter",
                             .reason = "bad_frames",
                             .detail = "dead letter with " + std::to_string(count) + " frames, expected 1",
                             .ts_ns = clock_.now_ns(),
                             .original = join_frames(frames, count)});
  }
  std::uint64_t suppressed = 0;
  if (limiter_.allow("bad_dead_letter", clock_.now_ns(), suppressed))
    spdlog::warn("kept an undecodable dead letter ({} more suppressed)", suppressed);
}

void SinkNode::write_stats() {
  JsonObject reasons;
  for (const auto& [reason, n] : by_reason_) reasons.add(reason, n);
  if (other_reasons_) reasons.add("(other)", other_reasons_);
  pull_monitor_.drain();
  JsonObject o;
  o.add("program", "dead_letter")
      .add("pid", static_cast<std::int64_t>(::getpid()))
      .add("ts_ns", clock_.now_ns())
      .add("dead_letters", total_)
      .add("by_reason", reasons)
      .add("connections_dropped", pull_monitor_.counters().dropped)
      .add("handshakes_failed", pull_monitor_.counters().handshakes_failed)
      .add("path", path_);
  write_file_atomically(cfg_.run_path("", "dead_letter.stats.json"), o.str());
}

int SinkNode::run() {
  std::vector<zmq::message_t> frames;
  std::int64_t next_stats = 0;
  const std::int64_t stats_every = cfg_.run.stats_interval_ms * ns_per_ms;
  while (!stop_requested()) {
    zmq::pollitem_t items[] = {{pull_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      // SIGTERM interrupts the poll: the loop condition sees the flag, and
      // the final drain and flush below still run.
      if (e.num() != EINTR) throw;
      continue;
    }
    std::size_t count = 0;
    bool wrote = false;
    // Drain what is there, then flush once: fflush hands the lines to the
    // kernel, so they survive a kill -9 of this process.
    while (recv_message(pull_, frames, 8, count)) {
      handle(frames, count);
      wrote = true;
    }
    if (wrote) std::fflush(file_.get());
    if (auto now = monotonic_ns(); now >= next_stats) {
      write_stats();
      next_stats = now + stats_every;
    }
  }
  std::size_t count = 0;
  while (recv_message(pull_, frames, 8, count)) handle(frames, count);
  std::fflush(file_.get());
  write_stats();
  spdlog::info("stopped after {} dead letters", total_);
  return 0;
}

}  // namespace tp::dead_letter
