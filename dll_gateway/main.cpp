// dll_gateway: REP server in front of a broker plugin loaded with dlopen
// (broker_abi.h). Answers OrderRequests at most once per client order id,
// durably (SQLite), and feeds the plugin market data from the tick feed.
#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "common/clock.hpp"
#include "common/program.hpp"
#include "common/security.hpp"
#include "dll_gateway/broker_plugin.hpp"
#include "dll_gateway/dll_gateway_node.hpp"
#include "dll_gateway/order_store.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Broker gateway: serves orders over REP through a dlopen'ed broker plugin", "dll_gateway"};
  tp::CommonOptions opts;
  tp::add_common_options(app, opts);
  std::optional<std::string> plugin_path;
  std::optional<std::string> db_path;
  app.add_option("--plugin", plugin_path,
                 "Broker plugin .so (default: dll_gateway.plugin, else libsim_broker.so beside this binary)");
  app.add_option("--db", db_path, "Order store SQLite file (default: <run-dir>/dll_gateway.db)");
  return tp::run_program(app, argc, argv, [&] {
    auto cfg = tp::load_program_config(opts, "dll_gateway");
    if (plugin_path) cfg.dll_gateway.plugin = *plugin_path;
    if (db_path) cfg.dll_gateway.db_path = *db_path;
    std::string plugin =
        cfg.dll_gateway.plugin.empty() ? tp::dll_gateway::default_plugin_path() : cfg.dll_gateway.plugin;

    zmq::context_t ctx(1);
    tp::SecureContext secure(ctx, cfg.security);
    tp::SystemClock clock;
    tp::dll_gateway::BrokerPlugin broker(
        plugin, tp::dll_gateway::expand_settings(cfg.dll_gateway.settings, cfg.run.dir));
    tp::dll_gateway::OrderStore store(cfg.run_path(cfg.dll_gateway.db_path, "dll_gateway.db"));
    tp::dll_gateway::DllGatewayNode node(ctx, cfg, broker, store, clock, secure.security());
    node.run();
    spdlog::shutdown();
    return 0;
  });
}
