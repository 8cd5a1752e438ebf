// Logging set up the same way in every program (spdlog, to stderr, which the
// supervisor keeps in a file per program), and a limiter so that a flood of
// bad input logs once per kind and a count, never a line per message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tp {

// Installs the default logger named `program` at `level` ("info", "debug"...).
void init_logging(const std::string& program, const std::string& level);

// Decides whether a problem of some kind may be logged now: the first of a
// kind always, then at most once per interval, reporting how many were
// suppressed in between. Not thread-safe; one per loop.
class LogLimiter {
 public:
  explicit LogLimiter(std::int64_t interval_ns = 10'000'000'000) : interval_ns_(interval_ns) {}

  // True when the caller should log; `suppressed` then holds how many of this
  // kind were swallowed since the last line.
  bool allow(std::string_view kind, std::int64_t now_ns, std::uint64_t& suppressed);

 private:
  struct Entry {
    std::int64_t last_ns = 0;
    std::uint64_t suppressed = 0;
  };
  std::int64_t interval_ns_;
  std::unordered_map<std::string, Entry> kinds_;
};

}  // namespace tp
