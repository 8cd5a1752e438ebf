// A deployment of the real programs in a temporary directory (under
// TP_BENCH_DIR, default /tmp): a config with free tcp ports, a run dir and a
// log per program. The programs it starts are stopped (and killed if need be)
// with it, and their peak RSS is recorded in the PeakRss it was given.
// Not thread-safe: one thread drives a deployment.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "child.hpp"
#include "options.hpp"

namespace tp::bench {

// Peak RSS (VmHWM, kB) per program over the whole benchmark.
class PeakRss {
 public:
  void note(const Child& c);
  const std::map<std::string, long>& by_program() const { return peak_kb_; }

 private:
  std::map<std::string, long> peak_kb_;
};

class Deployment {
 public:
  // `extra_toml` is appended to the generated config; the programs write
  // stats every `stats_interval_ms`. Throws when the directory cannot be made.
  Deployment(const Options& o, PeakRss& peaks, const std::string& label, const std::string& extra_toml,
             const std::vector<std::string>& symbols, int stats_interval_ms = 20);
  Deployment(const Deployment&) = delete;
  Deployment& operator=(const Deployment&) = delete;
  ~Deployment();

  // Starts `name` ("program" or "program:instance") with --config and `args`,
  // pinned to `cpu` when --pin is on.
  Child& start(const std::string& name, const std::vector<std::string>& args, int cpu = -1);

  void note_peaks();  // every child's peak RSS so far
  // Records every child's peak RSS, then stops them in reverse start order.
  void stop_all();

  // A program's stats file ("" until it is written); `name` as in its log.
  std::string stats(const std::string& name) const;
  double stat(const std::string& name, std::string_view key) const;  // 0 when absent
  const std::string& endpoint(const std::string& name) const { return endpoints_.at(name); }
  std::vector<std::unique_ptr<Child>>& children() { return children_; }
  // Throws when a program has exited, pointing at the logs.
  void check_alive();

 private:
  const Options& opts_;
  PeakRss& peaks_;
  std::filesystem::path dir_, run_dir_, config_;
  std::map<std::string, std::string> endpoints_;
  std::vector<std::unique_ptr<Child>> children_;
};

}  // namespace tp::bench
