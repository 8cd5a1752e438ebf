#include "common/stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/disk_watch.hpp"

namespace tp {

namespace {

// `s` as a quoted JSON string, by nlohmann-json: UTF-8 text is written as it
// is (one "é" stays one "é" in every reader), control characters are
// escaped, and a byte that is not valid UTF-8 (a dead letter's detail may
// hold raw bytes from a hostile peer) becomes U+FFFD instead of throwing.
std::string quoted(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string json_escape(std::string_view s) {
  auto q = quoted(s);
  return q.substr(1, q.size() - 2);
}

void JsonObject::key(std::string_view k) {
  if (!body_.empty()) body_ += ',';
  body_ += quoted(k);
  body_ += ':';
}

// Numbers keep the format the stats files always had: nlohmann prints the
// shortest round-trip form of a double (3.0 as "3.0", 0.1 + 0.2 as
// 0.30000000000000004), so doubles stay "%.10g", and a NaN or an infinity
// (which JSON cannot hold) stays null. Integers print the same either way.
JsonObject& JsonObject::add(std::string_view k, double v) {
  key(k);
  if (!std::isfinite(v)) {
    body_ += "null";
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    body_ += buf;
  }
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::int64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::uint64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, std::string_view v) {
  key(k);
  body_ += quoted(v);
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, bool v) {
  key(k);
  body_ += v ? "true" : "false";
  return *this;
}
JsonObject& JsonObject::add(std::string_view k, const JsonObject& v) {
  key(k);
  body_ += v.str();
  return *this;
}

JsonObject stats_header(std::string_view program, std::int64_t now_wall_ns) {
  JsonObject o;
  o.add("program", program).add("pid", static_cast<std::int64_t>(::getpid())).add("ts_ns", now_wall_ns);
  return o;
}

bool write_stats_file(const std::string& path, std::string_view content, WriteFailures& failures,
                      std::string_view consequence) {
  if (write_file_atomically(path, content)) {
    failures.recovered(path);
    return true;
  }
  failures.record(path, "write", errno, consequence);
  return false;
}

namespace {

// What the next write of a file may take without new blocks: the heartbeat
// of a program (its stats file) still gets through a full disk.
constexpr off_t reserve_bytes = 64 * 1024;

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

bool write_file_atomically(const std::string& path, std::string_view content) {
  // The content goes into `path.next`, whose blocks were reserved by the
  // previous write (fallocate), is cut to size and renamed over `path`; then
  // the next file is reserved with the blocks the cut and the old file freed.
  // write(2), ftruncate(2) and close(2) are checked before the rename: on a
  // full disk a short file must never replace the good one (errno is kept
  // for the caller).
  const std::string next = path + ".next";
  int fd = ::open(next.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::string text(content);
  text += '\n';
  bool ok = write_all(fd, text) && ::ftruncate(fd, static_cast<off_t>(text.size())) == 0;
  int saved = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && std::rename(next.c_str(), path.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    errno = saved;
    return false;
  }
  fd = ::open(next.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)::posix_fallocate(fd, 0,
                            reserve_bytes);  // best effort: without it the next write needs free blocks
    ::close(fd);
  }
  return true;
}

}  // namespace tp
