// Free space on the filesystems a program writes to. A full disk is an
// operator's bad day, not a crash: each program polls the free space of its
// data directories (statvfs, cheap) every few seconds, warns at a bounded
// rate while it is below `run.min_free_bytes`, and shows it in its stats.
// Also the one place that names a failed file operation: WriteFailures logs
// "file: what: errno text" once per file per interval and counts them.
// Not thread-safe: one per loop.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"

namespace tp {

class JsonObject;

class DiskWatch {
 public:
  static constexpr std::int64_t default_interval_ns = 5'000'000'000;

  // `dirs`: the directories whose filesystems are watched (duplicates fine).
  DiskWatch(std::vector<std::string> dirs, std::uint64_t floor_bytes,
            std::int64_t interval_ns = default_interval_ns);

  // Checks now when due (monotonic ns), warning once per interval per low
  // filesystem; the first call always checks.
  void poll(std::int64_t now_ns);
  // The smallest free space seen at the last check (bytes available to an
  // unprivileged writer); UINT64_MAX before the first or when unknown.
  std::uint64_t free_bytes() const noexcept { return free_bytes_; }
  bool low() const noexcept { return free_bytes_ < floor_bytes_; }
  // "disk_free_bytes", "disk_low", "disk_floor_bytes".
  void add_stats(JsonObject& o) const;

 private:
  std::vector<std::string> dirs_;
  std::uint64_t floor_bytes_;
  std::int64_t interval_ns_;
  std::int64_t next_ns_ = 0;
  bool checked_ = false;
  std::uint64_t free_bytes_ = UINT64_MAX;
  LogLimiter limiter_;
};

// Failed writes, per file: counted, and logged with the file and the errno
// at most once per interval per file (the first always).
class WriteFailures {
 public:
  explicit WriteFailures(std::int64_t interval_ns = 10'000'000'000) : limiter_(interval_ns) {}

  // Records a failure of `what` ("write", "commit", ...) on `path` with
  // `err` (an errno value, 0 when unknown) and, when allowed, logs it with
  // `consequence` (what the program does about it).
  void record(std::string_view path, std::string_view what, int err, std::string_view consequence);
  // Records success on `path`: the next failure logs at once, and a recovery
  // after failures is logged once.
  void recovered(std::string_view path);

  std::uint64_t total() const noexcept { return total_; }
  // The files failing now (a failure not yet followed by a success).
  const std::map<std::string, std::string, std::less<>>& failing() const noexcept { return failing_; }
  // "write_failures" and "files_failing": {path: "what: error"}.
  void add_stats(JsonObject& o) const;

 private:
  LogLimiter limiter_;
  std::uint64_t total_ = 0;
  std::map<std::string, std::string, std::less<>> failing_;
};

// Raises the soft limit on open files to the hard limit (a program serves a
// connection per descriptor) and returns the new soft limit.
std::uint64_t raise_open_files_limit();
// Descriptors open now (entries of /proc/self/fd), or 0 when unknown.
std::uint64_t open_files();

}  // namespace tp
