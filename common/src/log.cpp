#include "common/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace tp {

void init_logging(const std::string& program, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt(program);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %n %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

bool LogLimiter::allow(std::string_view kind, std::int64_t now_ns, std::uint64_t& suppressed) {
  auto it = kinds_.find(std::string(kind));
  if (it == kinds_.end()) {
    // Bound the table too: a flood of distinct kinds must not grow it forever.
    if (kinds_.size() >= 1024) kinds_.clear();
    kinds_.emplace(std::string(kind), Entry{now_ns, 0});
    suppressed = 0;
    return true;
  }
  auto& e = it->second;
  if (now_ns - e.last_ns >= interval_ns_) {
    suppressed = e.suppressed;
    e = Entry{now_ns, 0};
    return true;
  }
  ++e.suppressed;
  return false;
}

}  // namespace tp
