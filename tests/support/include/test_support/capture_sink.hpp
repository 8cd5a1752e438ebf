// A spdlog sink that keeps every record in memory, so a test of code running
// in its own process reads what was logged instead of grepping a file (the
// idea of spdlog's tests/test_sink.h). CaptureSink is thread-safe: loggers
// on any thread write, the test reads. ScopedLogCapture routes spdlog's default logger, which the code
// under test logs to, into one for the life of the object.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tp::test {

struct LogRecord {
  spdlog::level::level_enum level;
  std::string logger;
  std::string text;  // the message as logged, without pattern decoration
};

class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<LogRecord> records() const {
    std::lock_guard<std::mutex> lock(records_mutex_);
    return records_;
  }
  // Records whose text contains `needle` (at `level` or above).
  std::size_t count(const std::string& needle, spdlog::level::level_enum level = spdlog::level::trace) const {
    std::lock_guard<std::mutex> lock(records_mutex_);
    std::size_t n = 0;
    for (const auto& r : records_)
      if (r.level >= level && r.text.find(needle) != std::string::npos) ++n;
    return n;
  }
  bool contains(const std::string& needle, spdlog::level::level_enum level = spdlog::level::trace) const {
    return count(needle, level) > 0;
  }
  // Every record's text, one a line (for a failure message).
  std::string text() const {
    std::lock_guard<std::mutex> lock(records_mutex_);
    std::string out;
    for (const auto& r : records_) out += r.text + '\n';
    return out;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(records_mutex_);
    records_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::lock_guard<std::mutex> lock(records_mutex_);
    records_.push_back({msg.level, std::string(msg.logger_name.begin(), msg.logger_name.end()),
                        std::string(msg.payload.begin(), msg.payload.end())});
  }
  void flush_() override {}

 private:
  // Its own lock, not base_sink's: the readers are const, base_sink's mutex
  // is not mutable.
  mutable std::mutex records_mutex_;
  std::vector<LogRecord> records_;
};

// While alive, spdlog's default logger writes to `sink()` at every level;
// the previous default logger comes back at scope exit.
class ScopedLogCapture {
 public:
  ScopedLogCapture() : sink_(std::make_shared<CaptureSink>()), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
  }
  ~ScopedLogCapture() { spdlog::set_default_logger(previous_); }
  ScopedLogCapture(const ScopedLogCapture&) = delete;
  ScopedLogCapture& operator=(const ScopedLogCapture&) = delete;

  const CaptureSink& sink() const { return *sink_; }
  CaptureSink& sink() { return *sink_; }

 private:
  std::shared_ptr<CaptureSink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace tp::test
