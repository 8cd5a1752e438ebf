// Memory: every program's VmHWM over the runs of this benchmark, against the
// 30 MB budget (the "raw" column holds the budget).
#include "scenarios.hpp"

namespace tp::bench {

void add_memory_rows(const PeakRss& peaks, Report& report) {
  for (const auto& [prog, kb] : peaks.by_program()) {
    report.rows.push_back({"peak RSS " + prog, "MB", 30.0, static_cast<double>(kb) / 1024.0, "<= 1.0 (30 MB)",
                           1.0, false,
                           "VmHWM over this benchmark's runs; baseline column = the 30 MB budget"});
  }
}

}  // namespace tp::bench
