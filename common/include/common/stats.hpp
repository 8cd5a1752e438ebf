// What each program shows an operator: a flat JSON object of counters (and a
// few nested objects) written atomically to <run.dir>/<program>.stats.json
// about once a second and at exit. The supervisor's status line and summary
// read these files; a person can `cat` them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tp {

class WriteFailures;

// Escapes `s` for use inside a JSON string literal (no quotes added), by
// nlohmann-json: UTF-8 is kept as it is, control characters are escaped, and
// bytes that are not valid UTF-8 are replaced by U+FFFD (never throws on them).
std::string json_escape(std::string_view s);

// Builds one JSON object. Keys are written in insertion order; keys and
// string values are escaped as json_escape does; doubles print as "%.10g"
// and a NaN or an infinity as null. Not thread-safe; a value type.
class JsonObject {
 public:
  JsonObject& add(std::string_view key, double value);
  JsonObject& add(std::string_view key, std::int64_t value);
  JsonObject& add(std::string_view key, std::uint64_t value);
  JsonObject& add(std::string_view key, int value) { return add(key, static_cast<std::int64_t>(value)); }
  JsonObject& add(std::string_view key, std::string_view value);
  JsonObject& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  JsonObject& add(std::string_view key, bool value);
  JsonObject& add(std::string_view key, const JsonObject& value);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(std::string_view k);
  std::string body_;
};

// A program's stats object with the fields every <run.dir>/<program>.stats.json
// opens with, in this order: "program" (`program`, e.g. "strategy-0"),
// "pid" and "ts_ns" (`now_wall_ns`, wall clock). The caller adds its own.
JsonObject stats_header(std::string_view program, std::int64_t now_wall_ns);

// Writes `path` as write_file_atomically does, and tells `failures`: a
// success is a recovery, a failure is recorded with errno and `consequence`
// (what the operator sees meanwhile). Returns whether the file was written.
bool write_stats_file(const std::string& path, std::string_view content, WriteFailures& failures,
                      std::string_view consequence);

// Writes `content` to `path` through `path.next` and rename, so that a
// reader never sees half a file, and keeps `path.next` reserved (64 KiB)
// for the next write, so that a small file such as a heartbeat can still be
// rewritten on a full disk. Returns false with errno set on failure (the
// old file stays); never throws.
bool write_file_atomically(const std::string& path, std::string_view content);

}  // namespace tp
