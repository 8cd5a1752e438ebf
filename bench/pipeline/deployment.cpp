#include "deployment.hpp"

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "support.hpp"

namespace fs = std::filesystem;

namespace tp::bench {

void PeakRss::note(const Child& c) {
  const long kb = c.vm_hwm_kb();
  if (kb <= 0) return;
  const std::string prog = c.name().substr(0, c.name().find(':'));
  peak_kb_[prog] = std::max(peak_kb_[prog], kb);
}

Deployment::Deployment(const Options& o, PeakRss& peaks, const std::string& label,
                       const std::string& extra_toml, const std::vector<std::string>& symbols,
                       int stats_interval_ms)
    : opts_(o), peaks_(peaks) {
  // TP_BENCH_DIR (e.g. /dev/shm) moves the deployments off the disk: tells
  // disk stalls (fsync, writeback) from the programs' own cost.
  const char* base = std::getenv("TP_BENCH_DIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tp_bench_XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + tmpl);
  dir_ = tmpl;
  run_dir_ = dir_ / "run";
  fs::create_directories(run_dir_ / "logs");
  // reports and control too: derived, they would be the orders port + 2 and
  // + 3, which nobody checked was free.
  constexpr std::array names{"ticks",        "signals", "order_events", "orders",
                             "dead_letters", "reports", "control"};
  const int first_port = free_tcp_port_base(static_cast<int>(names.size()));
  for (std::size_t i = 0; i < names.size(); ++i)
    endpoints_[names[i]] = "tcp://127.0.0.1:" + std::to_string(first_port + static_cast<int>(i));
  std::ostringstream t;
  t << "# pipeline_bench: " << label << "\n[run]\ndir = \"" << run_dir_.string() << "\"\n"
    << "stats_interval_ms = " << stats_interval_ms << "\n\n[endpoints]\n";
  for (const auto& [k, v] : endpoints_) t << k << " = \"" << v << "\"\n";
  t << "\n";
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    t << "[[instruments]]\nsymbol = \"" << symbols[i]
      << "\"\nprice = " << (1.0 + 0.01 * static_cast<double>(i))
      << "\nspread = 0.0001\nvolatility = 0.00005\n\n";
  }
  t << extra_toml;
  config_ = dir_ / "bench.toml";
  std::ofstream(config_) << t.str();
}

Deployment::~Deployment() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) (*it)->stop(2.0);
  children_.clear();
  if (!opts_.keep) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

Child& Deployment::start(const std::string& name, const std::vector<std::string>& args, int cpu) {
  const std::string program = name.substr(0, name.find(':'));
  std::vector<std::string> argv = {(opts_.bin_dir / program).string(), "--config", config_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string log_name = name;
  std::replace(log_name.begin(), log_name.end(), ':', '-');
  children_.push_back(
      std::make_unique<Child>(name, argv, run_dir_ / "logs" / (log_name + ".log"), opts_.pin ? cpu : -1));
  return *children_.back();
}

void Deployment::note_peaks() {
  for (auto& c : children_) peaks_.note(*c);
}

void Deployment::stop_all() {
  note_peaks();
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) (*it)->stop(5.0);
}

std::string Deployment::stats(const std::string& name) const {
  return read_file(run_dir_ / (name + ".stats.json"));
}

double Deployment::stat(const std::string& name, std::string_view key) const {
  return json_number(stats(name), key).value_or(0);
}

void Deployment::check_alive() {
  for (auto& c : children_) {
    if (!c->alive())
      throw std::runtime_error(c->name() + " exited early; see " + (run_dir_ / "logs").string() +
                               " (rerun with --keep)");
  }
}

}  // namespace tp::bench
