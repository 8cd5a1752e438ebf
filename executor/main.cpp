// executor: signals in, orders out. CLI -> config -> ExecutorNode -> loop.
#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/program.hpp"
#include "common/security.hpp"
#include "executor/executor_node.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Executor: dedupes signals durably, checks risk, sends orders to dll_gateway", "executor"};
  tp::CommonOptions common;
  tp::add_common_options(app, common);
  std::optional<std::string> db_path;
  app.add_option("--db", db_path,
                 "SQLite database file (default: executor.db_path or <run.dir>/executor.db)");

  return tp::run_program(app, argc, argv, [&] {
    const auto crash_point = tp::executor::crash_point_from_env();  // read once, at start
    tp::Config config = tp::load_program_config(common, "executor");
    if (db_path) config.executor.db_path = *db_path;
    tp::SystemClock clock;
    zmq::context_t ctx(1);
    tp::SecureContext secure(ctx, config.security);
    int rc = 0;
    {
      tp::executor::ExecutorNode node(ctx, config, clock, crash_point, secure.security());
      spdlog::info("executor: signals on {}, events on {}, orders to {}", config.endpoints.signals,
                   config.endpoints.order_events, config.endpoints.orders);
      rc = node.run();
    }  // sockets and the store close here, before the context
    spdlog::info("executor: stopped");
    return rc;
  });
}
