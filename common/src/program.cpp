#include "common/program.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "common/disk_watch.hpp"
#include "common/log.hpp"
#include "common/stop.hpp"

namespace tp {

void add_common_options(CLI::App& app, CommonOptions& opts) {
  app.add_option("-c,--config", opts.config_path, "Deployment TOML file (default: embedded defaults)");
  app.add_option("--set", opts.overrides, "Override one config value: section.key=value (repeatable)");
  app.add_option("--log-level", opts.log_level, "trace, debug, info, warn, error");
  app.add_option("--run-dir", opts.run_dir, "Directory for state, stats and default file paths");
}

Config load_program_config(const CommonOptions& opts, const std::string& program) {
  auto overrides = opts.overrides;
  if (opts.log_level) overrides.push_back("run.log_level=\"" + *opts.log_level + "\"");
  if (opts.run_dir) overrides.push_back("run.dir=\"" + *opts.run_dir + "\"");
  Config cfg = load_config(opts.config_path, overrides);
  std::error_code ec;
  std::filesystem::create_directories(cfg.run.dir, ec);
  if (ec) throw ConfigError("run.dir: cannot create " + cfg.run.dir + ": " + ec.message());
  init_logging(program, cfg.run.log_level);
  // A descriptor per connection: the soft limit (often 1024) is raised to the
  // hard one, so that only the system's own limit bounds the connections.
  spdlog::debug("open files limit {}", raise_open_files_limit());
  return cfg;
}

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  // First, so that a SIGTERM during start-up is also a clean stop.
  install_stop_handlers();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return body();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s: config error: %s\n", app.get_name().c_str(), e.what());
  } catch (const std::exception& e) {
    if (spdlog::default_logger()->name() == app.get_name())
      spdlog::critical("fatal: {}", e.what());
    else
      std::fprintf(stderr, "%s: fatal: %s\n", app.get_name().c_str(), e.what());
  }
  spdlog::shutdown();
  return 1;
}

}  // namespace tp
