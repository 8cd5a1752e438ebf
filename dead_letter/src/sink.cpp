#include "dead_letter/sink.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "common/stats.hpp"
#include "common/zmq_util.hpp"

namespace tp::dead_letter {
namespace {
constexpr std::size_t max_distinct_reasons = 256;
constexpr int max_wait_ms = 100;  // the longest poll: the stop flag is looked at least this often

std::string dir_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}
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

std::string to_json_line(const proto::DeadLetter& d, bool store_original) {
  JsonObject o;
  o.add("ts_ns", d.ts_ns)
      .add("time", format_utc(d.ts_ns))
      .add("source", d.source)
      .add("reason", d.reason)
      .add("detail", d.detail);
  if (!d.key.empty()) o.add("key", d.key);
  o.add("original_size", static_cast<std::uint64_t>(d.original.size()))
      .add("original_b64", store_original ? base64_encode(d.original) : std::string());
  // Only added when false, so that a whole letter's line is as it always was.
  if (!store_original) o.add("original_stored", false);
  return o.str();
}

SinkNode::SinkNode(zmq::context_t& ctx, const Config& cfg, const Clock& clock, const Security& security)
    : cfg_(cfg),
      clock_(clock),
      path_(cfg.run_path(cfg.dead_letter.path, "dead_letters.jsonl")),
      pull_(make_socket(ctx, zmq::socket_type::pull,
                        SocketOptions{.linger_ms = 0,
                                      .sndhwm = 1,
                                      .rcvhwm = rcvhwm,
                                      .max_msg_size = static_cast<std::int64_t>(proto::max_dead_letter_bytes),
                                      .network = cfg.network})),
      pull_monitor_(ctx, pull_),
      file_(path_, LetterFileOptions{.max_file_bytes = cfg.dead_letter.max_file_bytes,
                                     .max_files = cfg.dead_letter.max_files}),
      sampler_(SamplerOptions{.bytes_per_s = cfg.dead_letter.original_bytes_per_s,
                              .keep_one_in = cfg.dead_letter.sample_one_in}),
      disk_({dir_of(path_), cfg.run.dir}, cfg.run.min_free_bytes),
      loop_(clock, RunLoop::default_stop_source(), max_wait_ms) {
  if (const auto& torn = file_.torn(); torn.bytes > 0) {
    spdlog::warn(
        "{} ended in a torn record of {} bytes (a kill mid-write?): moved it to {} and cut it off; "
        "the file is whole lines again",
        path_, torn.bytes, torn.side_path);
  }
  const auto t0 = clock_.monotonic_ns();
  // The saved keys are older than the files' (saved as the oldest file
  // went): remembered first, so that the oldest are forgotten first.
  // dead_letters.keys: beside the letter files, not among them (readers take
  // every dead_letters.jsonl* as JSON lines).
  std::string keys_path = std::filesystem::path(path_).replace_extension(".keys").string();
  if (keys_path == path_) keys_path += ".keys";  // a letter file named *.keys
  const auto saved = load_key_file(keys_, keys_path);
  const auto rebuilt = rebuild_key_memory(keys_, path_);
  spdlog::info(
      "remembered {} letter keys: {} saved in {}, {} from {} files of {} ({} bytes read, {} lines "
      "unreadable) "
      "in {} ms",
      keys_.size(), saved, keys_path, rebuilt.keys, rebuilt.files_read, path_, rebuilt.bytes_read,
      rebuilt.lines_skipped, (clock_.monotonic_ns() - t0) / ns_per_ms);
  file_.on_rotation([this, keys_path] {
    if (!save_key_file(keys_, keys_path))
      spdlog::warn(
          "letter keys not saved to {} before a rotation: {}; a restart may write a resent letter "
          "again",
          keys_path, std::strerror(errno));
  });
  security.bind(pull_, cfg.endpoints.dead_letters);
  metrics_ = metrics::start_metrics_server(cfg.metrics, "dead_letter", "dead_letter");
  spdlog::info("dead-letter sink on {} appending to {} (rotated at {} bytes, {} files kept)",
               cfg.endpoints.dead_letters, path_, cfg.dead_letter.max_file_bytes, cfg.dead_letter.max_files);

  loop_.add_reader(pull_, [this] { drain(work_slice_ms * ns_per_ms, true); });
  loop_.add_work([this] {
    pull_monitor_.drain();
    watch_connections(clock_.monotonic_ns());
    return 0;
  });
  // The first stats at once: the supervisor sees the sink is up.
  const std::int64_t stats_ns = cfg_.run.stats_interval_ms * ns_per_ms;
  loop_.add_timer(clock_.monotonic_ns(), stats_ns, RunLoop::Cadence::fixed_delay, [this](std::int64_t now) {
    disk_.poll(now);
    write_stats();
  });
}

void SinkNode::record(const proto::DeadLetter& letter) {
  // The pair as the line spells it: what a restart reads back from the file
  // is then the same bytes, even for a key that is not valid UTF-8. A key
  // remembered for a line the disk then refused (lines_lost) still drops a
  // resend until the next start, which remembers only the lines on disk.
  if (!letter.key.empty() && keys_.seen_or_remember(json_escape(letter.source), json_escape(letter.key))) {
    ++duplicates_dropped_;
    return;
  }
  ++total_;
  if (auto it = by_reason_.find(letter.reason); it != by_reason_.end())
    ++it->second;
  else if (by_reason_.size() < max_distinct_reasons)
    by_reason_.emplace(letter.reason, 1);
  else
    ++other_reasons_;

  const auto now = clock_.now_ns();
  const bool store = sampler_.keep(letter.reason, letter.original.size(), now);
  auto rotations = file_.rotations();
  file_.append(to_json_line(letter, store));
  check_file();
  std::uint64_t suppressed = 0;
  if (!store && limiter_.allow("sampled:" + letter.reason, now, suppressed))
    spdlog::warn(
        "dead letters '{}' flood: originals past {} bytes/s stored for one letter in {} only "
        "({} bytes not stored so far)",
        letter.reason, cfg_.dead_letter.original_bytes_per_s, cfg_.dead_letter.sample_one_in,
        sampler_.original_bytes_not_stored());
  if (file_.rotations() != rotations && limiter_.allow("rotated", now, suppressed))
    spdlog::info("rotated {} at {} bytes ({} rotations, {} old files removed)", path_,
                 cfg_.dead_letter.max_file_bytes, file_.rotations(), file_.files_removed());
}

void SinkNode::check_file() {
  if (file_.write_errors() != write_errors_seen_) {
    write_errors_seen_ = file_.write_errors();
    const auto& why = file_.last_error();
    write_failures_.record(path_, why.substr(0, why.find(':')), file_.last_errno(),
                           fmt::format("its dead letters are counted, not stored ({} lines lost so far); "
                                       "writing resumes with whole lines when it can",
                                       file_.lines_lost()));
  } else if (file_.bytes_written() != bytes_written_seen_) {
    write_failures_.recovered(path_);
  }
  bytes_written_seen_ = file_.bytes_written();
}

void SinkNode::watch_connections(std::int64_t now) {
  const auto failed = pull_monitor_.counters().accept_failed;
  if (failed == accept_failed_logged_) return;
  std::uint64_t suppressed = 0;
  if (limiter_.allow("accept_failed", now, suppressed)) {
    spdlog::error(
        "{} incoming connections refused so far (accept failed: out of descriptors?); "
        "those senders are not heard, the rest are",
        failed);
    accept_failed_logged_ = failed;
  }
}

void SinkNode::handle(const std::vector<zmq::message_t>& frames, std::size_t count) {
  if (count == 1) {
    auto decoded = decoder_.decode_dead_letter(bytes_of(frames[0]));
    if (decoded) {
      letter_lag_.observe(clock_.now_ns(), decoded.value().ts_ns);
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
  clock_lags_.roll();
  JsonObject reasons;
  for (const auto& [reason, n] : by_reason_) reasons.add(reason, n);
  if (other_reasons_) reasons.add("(other)", other_reasons_);
  pull_monitor_.drain();
  auto o = stats_header("dead_letter", clock_.now_ns());
  o.add("dead_letters", total_)
      .add("by_reason", reasons)
      .add("duplicates_dropped", duplicates_dropped_)
      .add("keys_remembered", static_cast<std::uint64_t>(keys_.size()))
      .add("originals_not_stored", sampler_.originals_not_stored())
      .add("original_bytes_not_stored", sampler_.original_bytes_not_stored())
      .add("file_bytes", file_.size())
      .add("file_rotations", file_.rotations())
      .add("files_removed", file_.files_removed())
      .add("lines_lost", file_.lines_lost())
      .add("write_errors", file_.write_errors())
      .add("torn_bytes_set_aside", file_.torn().bytes)
      .add("connections_dropped", pull_monitor_.counters().dropped)
      .add("handshakes_failed", pull_monitor_.counters().handshakes_failed)
      .add("accept_failed", pull_monitor_.counters().accept_failed)
      .add("open_files", open_files())
      .add("path", path_);
  clock_lags_.add_stats(o);
  disk_.add_stats(o);
  write_failures_.add_stats(o);
  if (const auto& failing = write_failures_.failing(); !failing.empty()) {
    const auto& [file, why] = *failing.begin();
    auto cut = why.rfind(": ");
    o.add("alert", "cannot write " + std::filesystem::path(file).filename().string() + ": " +
                       (cut == std::string::npos ? why : why.substr(cut + 2)));
  }
  write_stats_file(cfg_.run_path("", "dead_letter.stats.json"), o.str(), write_failures_,
                   "the supervisor sees no heartbeat until it succeeds");
  publish_metrics();
}

void SinkNode::publish_metrics() {
  if (!metrics_) return;
  metrics::MetricsText m({{"program", "dead_letter"}, {"process", "dead_letter"}});
  // by_reason_ holds at most max_distinct_reasons reasons; the rest are
  // "(other)", so the label set stays bounded whatever the senders send.
  for (const auto& [reason, n] : by_reason_)
    m.counter("tp_dead_letter_letters_total", "Dead letters stored, by reason (duplicates not counted).", n,
              {{"reason", reason}});
  if (other_reasons_)
    m.counter("tp_dead_letter_letters_total", "Dead letters stored, by reason (duplicates not counted).",
              other_reasons_, {{"reason", "(other)"}});
  m.counter("tp_dead_letter_duplicates_dropped_total",
            "Keyed letters already stored (a sender's resend), not written again.", duplicates_dropped_)
      .gauge("tp_dead_letter_keys_remembered", "Letter keys remembered to drop resends.",
             static_cast<std::uint64_t>(keys_.size()))
      .counter("tp_dead_letter_originals_not_stored_total",
               "Letters stored without their original (a flooding reason, sampled).",
               sampler_.originals_not_stored())
      .counter("tp_dead_letter_original_bytes_not_stored_total", "Bytes of originals not stored (sampled).",
               sampler_.original_bytes_not_stored())
      .gauge("tp_dead_letter_file_bytes", "Size of the live dead-letter file in bytes.", file_.size())
      .counter("tp_dead_letter_file_rotations_total", "Rotations of the dead-letter file.", file_.rotations())
      .counter("tp_dead_letter_files_removed_total", "Rotated files removed to keep the disk bound.",
               file_.files_removed())
      .counter("tp_dead_letter_lines_lost_total", "Letters that could not be written (full disk, I/O error).",
               file_.lines_lost())
      .counter("tp_dead_letter_write_errors_total", "Failed writes to the dead-letter file.",
               file_.write_errors())
      .gauge("tp_dead_letter_torn_set_aside_bytes",
             "Bytes of a torn last record moved aside at start (a kill mid-write).", file_.torn().bytes);
  clock_lags_.add_metrics(m);
  metrics::add_connection_metrics(m, pull_monitor_.counters());
  metrics::add_disk_metrics(m, disk_, cfg_.run.min_free_bytes, write_failures_);
  metrics_->publish(m.str(), clock_.now_ns());
}

void SinkNode::drain(std::int64_t budget_ns, bool watch_stop) {
  const auto deadline = clock_.monotonic_ns() + budget_ns;
  std::size_t count = 0;
  // Under a flood there is always another letter: the clock and the stop
  // flag, not an empty queue, end the stretch.
  while (!(watch_stop && loop_.stopping()) && clock_.monotonic_ns() < deadline &&
         recv_message(pull_, frames_, 8, count))
    handle(frames_, count);
  // Whole lines only reach the file, and they do before the next poll: a
  // kill -9 loses at most what this stretch buffered, never half a line.
  file_.flush();
  check_file();
}

int SinkNode::run() {
  loop_.run();
  // What is queued now is still written, for a bounded time: under a flood
  // the rest is left to the closing socket (linger 0), and the stop stays
  // well inside the supervisor's grace period.
  drain(final_drain_ms * ns_per_ms, false);
  write_stats();
  spdlog::info("stopped after {} dead letters ({} duplicates dropped)", total_, duplicates_dropped_);
  return 0;
}

}  // namespace tp::dead_letter
