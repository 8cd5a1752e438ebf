// What every program's main shares: the common CLI11 options (--config,
// --set, --log-level, --run-dir) and one place that turns start-up errors
// into a single clear log line and a non-zero exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace tp {

struct CommonOptions {
  std::optional<std::string> config_path;
  std::vector<std::string> overrides;  // --set section.key=value, repeatable
  std::optional<std::string> log_level;
  std::optional<std::string> run_dir;
};

void add_common_options(CLI::App& app, CommonOptions& opts);

// Loads the config with the overrides and the --log-level/--run-dir flags
// applied, creates run.dir, and starts logging as `program`.
Config load_program_config(const CommonOptions& opts, const std::string& program);

// Parses argv, then runs `body`; CLI errors print usage, and any exception
// thrown by `body` is logged as one line and ends the program with code 1.
int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

}  // namespace tp
