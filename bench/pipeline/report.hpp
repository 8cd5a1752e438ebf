// The report every scenario adds to: one row per figure (raw baseline,
// pipeline figure, their ratio against a target), printed as a table on
// stdout and written as JSON (--out). The table's layout and the JSON keys
// are read by tests/bench and scripts/bench: change them together.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "options.hpp"

namespace tp::bench {

struct Row {
  std::string name;
  std::string unit;
  std::optional<double> baseline, pipeline;
  std::string target;  // e.g. ">= 0.70"
  std::optional<double> ratio_target;
  bool higher_is_better = true;
  std::string note;
  // False when the pipeline figure broke the row's own condition (a
  // throughput search that found no gap-free rate): then it is not "met",
  // whatever the ratio.
  bool valid = true;
  std::optional<double> ratio() const;
  std::optional<bool> met() const;  // nullopt: no ratio or no target
};

struct Report {
  std::vector<Row> rows;
  std::vector<std::string> search_log;  // throughput and fan-out searches, in run order
};

// A figure as the table shows it: "n/a", integral from 1000 up, else one decimal.
std::string cell(const std::optional<double>& v);

// Prints the table and notes, then writes the JSON to o.out. Returns false
// (after saying so on stderr) when the file cannot be written.
bool print_and_write(const Options& o, const Report& report);

}  // namespace tp::bench
