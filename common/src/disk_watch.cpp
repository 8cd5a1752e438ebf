#include "common/disk_watch.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <cstring>
#include <filesystem>

#include "common/clock.hpp"
#include "common/stats.hpp"

namespace tp {

DiskWatch::DiskWatch(std::vector<std::string> dirs, std::uint64_t floor_bytes, std::int64_t interval_ns)
    : dirs_(std::move(dirs)),
      floor_bytes_(floor_bytes),
      interval_ns_(interval_ns),
      limiter_(interval_ns * 2) {}

void DiskWatch::poll(std::int64_t now_ns) {
  if (checked_ && now_ns < next_ns_) return;
  checked_ = true;
  next_ns_ = now_ns + interval_ns_;
  std::uint64_t lowest = UINT64_MAX;
  for (const auto& dir : dirs_) {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) continue;  // gone or unreadable: nothing to say about space
    const std::uint64_t avail = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
    if (avail < lowest) lowest = avail;
    std::uint64_t suppressed = 0;
    if (avail < floor_bytes_ && limiter_.allow(dir, now_ns, suppressed)) {
      spdlog::warn("low disk space: {} has {} bytes free, below run.min_free_bytes {}; writes may fail", dir,
                   avail, floor_bytes_);
    }
  }
  free_bytes_ = lowest;
}

void DiskWatch::add_stats(JsonObject& o) const {
  o.add("disk_free_bytes", free_bytes_).add("disk_floor_bytes", floor_bytes_).add("disk_low", low());
}

void WriteFailures::record(std::string_view path, std::string_view what, int err,
                           std::string_view consequence) {
  ++total_;
  std::string why = std::string(what) + ": " + (err != 0 ? std::strerror(err) : std::string("failed"));
  auto it = failing_.find(path);
  if (it == failing_.end()) {
    failing_.emplace(std::string(path), why);
  } else {
    it->second = why;
  }
  std::uint64_t suppressed = 0;
  if (limiter_.allow(path, monotonic_ns(), suppressed)) {
    spdlog::error("{}: {}; {} ({} more failures since the last line)", path, why, consequence, suppressed);
  }
}

void WriteFailures::recovered(std::string_view path) {
  auto it = failing_.find(path);
  if (it == failing_.end()) return;
  spdlog::info("{}: writes succeed again", path);
  failing_.erase(it);
}

void WriteFailures::add_stats(JsonObject& o) const {
  JsonObject files;
  for (const auto& [path, why] : failing_) files.add(path, why);
  o.add("write_failures", total_).add("files_failing", files);
}

std::uint64_t raise_open_files_limit() {
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    const auto before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      spdlog::warn("cannot raise the open-files limit from {} to {}: {}", before, lim.rlim_max,
                   std::strerror(errno));
      return before;
    }
  }
  return lim.rlim_cur;
}

std::uint64_t open_files() {
  std::error_code ec;
  std::uint64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace tp
