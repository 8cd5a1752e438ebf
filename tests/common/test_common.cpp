#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "common/clock_skew.hpp"
#include "common/config.hpp"
#include "common/endpoints.hpp"
#include "common/histogram.hpp"
#include "common/log.hpp"
#include "common/sharding.hpp"
#include "common/stats.hpp"
#include "common/zmq_util.hpp"

namespace {

std::string error_of(const std::string& toml, const std::vector<std::string>& overrides = {}) {
  try {
    tp::parse_config(toml, overrides, "test.toml");
  } catch (const tp::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsAreComplete) {
  auto c = tp::parse_config("");
  EXPECT_EQ(c.endpoints.ticks, "tcp://127.0.0.1:7101");
  EXPECT_EQ(c.instruments.size(), 4u);
  EXPECT_EQ(c.strategy.instances, 2);
  EXPECT_EQ(c.gateway.source, "synthetic");
  EXPECT_NE(c.find_instrument("EURUSD"), nullptr);
  EXPECT_EQ(c.find_instrument("EURUSDX"), nullptr);
}

TEST(Config, ReadsEverySection) {
  auto c = tp::parse_config(R"(
    [run]
    dir = "/tmp/x"
    [endpoints]
    ticks = "ipc:///tmp/x/ticks"
    [[instruments]]
    symbol = "BTCUSD"
    price = 60000
    spread = 1.5
    [gateway]
    rate = 0
    seed = 7
    [strategy]
    name = "breakout"
    instances = 3
    [strategy.breakout]
    window = 20
    [risk]
    max_notional = 1e7
    [dll_gateway.settings]
    latency_ms = 5
    reject_rate = 0.25
  )");
  EXPECT_EQ(c.run.dir, "/tmp/x");
  EXPECT_EQ(c.endpoints.ticks, "ipc:///tmp/x/ticks");
  EXPECT_EQ(c.endpoints.signals, "tcp://127.0.0.1:7102");
  ASSERT_EQ(c.instruments.size(), 1u);
  EXPECT_DOUBLE_EQ(c.instruments[0].price, 60000);
  EXPECT_DOUBLE_EQ(c.gateway.rate, 0);
  EXPECT_EQ(c.gateway.seed, 7u);
  EXPECT_EQ(c.strategy.name, "breakout");
  EXPECT_EQ(c.strategy.breakout.window, 20);
  EXPECT_DOUBLE_EQ(c.risk.max_notional, 1e7);
  EXPECT_EQ(c.dll_gateway.settings.at("latency_ms"), "5");
  EXPECT_EQ(c.dll_gateway.settings.at("reject_rate"), "0.25");
}

TEST(Config, OverridesWinOverTheFile) {
  auto c = tp::parse_config("[gateway]\nrate = 10\n",
                            {"gateway.rate=2500", "run.dir=/tmp/run dir", "strategy.sma_crossover.fast=3",
                             "endpoints.ticks=\"ipc:///tmp/t\""});
  EXPECT_DOUBLE_EQ(c.gateway.rate, 2500);
  EXPECT_EQ(c.run.dir, "/tmp/run dir");
  EXPECT_EQ(c.strategy.sma_crossover.fast, 3);
  EXPECT_EQ(c.endpoints.ticks, "ipc:///tmp/t");
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_NE(error_of("[gateway]\nrat = 5\n").find("unknown key gateway.rat"), std::string::npos);
  EXPECT_NE(error_of("[gateway]\nrate = \"fast\"\n").find("gateway.rate must be a number"),
            std::string::npos);
  EXPECT_NE(error_of("[risk]\nmax_position = -1\n").find("risk.max_position"), std::string::npos);
  EXPECT_NE(error_of("[strategy]\nname = \"magic\"\n").find("strategy.name"), std::string::npos);
  EXPECT_NE(error_of("[endpoints]\nticks = \"http://x\"\n").find("endpoints.ticks"), std::string::npos);
  EXPECT_NE(error_of("[[instruments]]\nsymbol = \"A.B\"\n").find("instruments[0].symbol"), std::string::npos);
  EXPECT_NE(error_of("", {"strategy.instances=0"}).find("strategy.instances"), std::string::npos);
  EXPECT_NE(error_of("", {"nonsense"}).find("section.key=value"), std::string::npos);
  EXPECT_NE(error_of("[gateway\n").find("test.toml:1"), std::string::npos);
  EXPECT_NE(error_of("[strategy.sma_crossover]\nfast = 30\nslow = 10\n").find("strategy.sma_crossover.slow"),
            std::string::npos);
}

TEST(Config, CircuitBreakerKeys) {
  auto c = tp::parse_config("[executor]\nbreaker_failures = 5\nbreaker_cooling_ms = 0\n");
  EXPECT_EQ(c.executor.breaker_failures, 5);
  EXPECT_EQ(c.executor.breaker_cooling_ms, 0);
  EXPECT_NE(error_of("[executor]\nbreaker_failures = 0\n").find("executor.breaker_failures must be >= 1"),
            std::string::npos);
  EXPECT_NE(error_of("", {"executor.breaker_cooling_ms=-1"}).find("executor.breaker_cooling_ms must be >= 0"),
            std::string::npos);
}

TEST(Config, ControlEndpointIsDerivedFromOrdersUnlessSet) {
  const auto d = tp::parse_config("");
  EXPECT_EQ(d.endpoints.orders, "tcp://127.0.0.1:7104");
  EXPECT_EQ(d.endpoints.reports, "tcp://127.0.0.1:7106");
  EXPECT_EQ(d.endpoints.control, "tcp://127.0.0.1:7107");

  const auto ipc = tp::parse_config("[endpoints]\norders = \"ipc:///tmp/tp/orders\"\n");
  EXPECT_EQ(ipc.endpoints.reports, "ipc:///tmp/tp/orders.reports");
  EXPECT_EQ(ipc.endpoints.control, "ipc:///tmp/tp/orders.control");
  // An override of orders moves the derived control socket with it.
  const auto moved = tp::parse_config("", {"endpoints.orders=\"tcp://10.0.0.5:9000\""});
  EXPECT_EQ(moved.endpoints.control, "tcp://10.0.0.5:9003");
  const auto set = tp::parse_config("[endpoints]\ncontrol = \"ipc:///tmp/tp/kill\"\n");
  EXPECT_EQ(set.endpoints.control, "ipc:///tmp/tp/kill");
  EXPECT_EQ(set.endpoints.reports, "tcp://127.0.0.1:7106");

  EXPECT_EQ(tp::derived_control_endpoint("inproc://orders"), "inproc://orders.control");
  EXPECT_EQ(tp::control_endpoint("", "tcp://h:7104"), "tcp://h:7107");
  EXPECT_EQ(tp::control_endpoint("tcp://h:1", "tcp://h:7104"), "tcp://h:1");
  EXPECT_EQ(tp::reports_endpoint("", "tcp://h:7104"), "tcp://h:7106");

  EXPECT_NE(error_of("[endpoints]\ncontrol = \"http://x\"\n").find("endpoints.control must be"),
            std::string::npos);
  // The reports port fits, the control port (one more) does not: set it.
  const auto too_high = error_of("[endpoints]\norders = \"tcp://127.0.0.1:65533\"\n");
  EXPECT_NE(too_high.find("endpoints.control: cannot derive it"), std::string::npos) << too_high;
  EXPECT_EQ(error_of("[endpoints]\norders = \"tcp://127.0.0.1:65533\"\ncontrol = "
                     "\"tcp://127.0.0.1:7000\"\n"),
            "");
  EXPECT_NE(error_of("[endpoints]\norders = \"tcp://127.0.0.1:*\"\nreports = \"tcp://127.0.0.1:7000\"\n")
                .find("endpoints.control"),
            std::string::npos);
}

TEST(Config, InstrumentCurrenciesComeFromASixLetterSymbolUnlessSet) {
  const auto d = tp::parse_config("");
  const auto* eurusd = d.find_instrument("EURUSD");
  ASSERT_NE(eurusd, nullptr);
  EXPECT_EQ(tp::base_currency_of(*eurusd), "EUR");
  EXPECT_EQ(tp::quote_currency_of(*eurusd), "USD");
  const auto* usdjpy = d.find_instrument("USDJPY");
  ASSERT_NE(usdjpy, nullptr);
  EXPECT_EQ(tp::base_currency_of(*usdjpy), "USD");
  EXPECT_EQ(tp::quote_currency_of(*usdjpy), "JPY");

  const auto c = tp::parse_config(R"(
    [[instruments]]
    symbol = "AAPL"
    price = 190
    [[instruments]]
    symbol = "MSFT"
    price = 400
    quote_currency = "USD"
    [[instruments]]
    symbol = "XAUUSD"
    price = 2000
    base_currency = "XAU"
    [[instruments]]
    symbol = "BTCUSDT"
    price = 60000
    base_currency = "BTC"
    quote_currency = "USD"
  )");
  ASSERT_EQ(c.instruments.size(), 4u);
  EXPECT_EQ(tp::base_currency_of(c.instruments[0]), "");
  EXPECT_EQ(tp::quote_currency_of(c.instruments[0]), "");
  EXPECT_EQ(tp::base_currency_of(c.instruments[1]), "");
  EXPECT_EQ(tp::quote_currency_of(c.instruments[1]), "USD");
  EXPECT_EQ(c.instruments[2].quote_currency, "");  // the file left it: derived
  EXPECT_EQ(tp::quote_currency_of(c.instruments[2]), "USD");
  EXPECT_EQ(tp::base_currency_of(c.instruments[3]), "BTC");
  EXPECT_EQ(tp::quote_currency_of(c.instruments[3]), "USD");
  // Not a pair of codes: six characters are not enough.
  EXPECT_EQ(tp::quote_currency_of(tp::Instrument{.symbol = "EUR_US"}), "");
  EXPECT_EQ(tp::base_currency_of(tp::Instrument{.symbol = "eurusd"}), "");

  EXPECT_TRUE(tp::is_currency("USD"));
  for (const char* bad : {"usd", "US", "USDT", "", "U1D", "US "}) EXPECT_FALSE(tp::is_currency(bad)) << bad;
  const auto currency = [](const char* key, const char* value) {
    return error_of(std::string("[[instruments]]\nsymbol = \"AAPL\"\n") + key + " = " + value + "\n");
  };
  EXPECT_NE(currency("quote_currency", "\"usd\"").find("instruments[0].quote_currency must be 3 upper-case"),
            std::string::npos);
  EXPECT_NE(currency("quote_currency", "\"USDT\"").find("instruments[0].quote_currency"), std::string::npos);
  EXPECT_NE(currency("base_currency", "\"A1\"").find("instruments[0].base_currency must be 3 upper-case"),
            std::string::npos);
  EXPECT_NE(currency("base_currency", "7").find("instruments[0].base_currency must be a string"),
            std::string::npos);
}

TEST(Config, RiskLimitsOnOpenOrdersRateAndDailyLoss) {
  const auto d = tp::parse_config("");
  EXPECT_EQ(d.risk.max_open_orders, 1000);
  EXPECT_DOUBLE_EQ(d.risk.max_orders_per_second, 0);
  EXPECT_DOUBLE_EQ(d.risk.max_daily_loss, 0);
  const auto c =
      tp::parse_config("[risk]\nmax_open_orders = 1\nmax_orders_per_second = 12.5\nmax_daily_loss = 2500\n");
  EXPECT_EQ(c.risk.max_open_orders, 1);
  EXPECT_DOUBLE_EQ(c.risk.max_orders_per_second, 12.5);
  EXPECT_DOUBLE_EQ(c.risk.max_daily_loss, 2500);

  EXPECT_NE(error_of("[risk]\nmax_open_orders = 0\n").find("risk.max_open_orders must be >= 1"),
            std::string::npos);
  EXPECT_NE(error_of("[risk]\nmax_open_orders = 2.5\n").find("risk.max_open_orders must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of("", {"risk.max_orders_per_second=-1"}).find("risk.max_orders_per_second must be >= 0"),
            std::string::npos);
  EXPECT_NE(
      error_of("[risk]\nmax_orders_per_second = inf\n").find("risk.max_orders_per_second must be a finite"),
      std::string::npos);
  EXPECT_NE(error_of("[risk]\nmax_daily_loss = -0.01\n").find("risk.max_daily_loss must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of("[risk]\nmax_daily_loss = nan\n").find("risk.max_daily_loss"), std::string::npos);
}

TEST(Config, PortfolioKeys) {
  const auto d = tp::parse_config("");
  EXPECT_EQ(d.portfolio.account_currency, "USD");
  EXPECT_DOUBLE_EQ(d.portfolio.capital, 1000000);
  EXPECT_EQ(d.portfolio.interval_ms, 1000);
  const auto c = tp::parse_config("[portfolio]\naccount_currency = \"JPY\"\ncapital = 0\ninterval_ms = 10\n");
  EXPECT_EQ(c.portfolio.account_currency, "JPY");
  EXPECT_DOUBLE_EQ(c.portfolio.capital, 0);
  EXPECT_EQ(c.portfolio.interval_ms, 10);

  for (const char* bad : {"\"usd\"", "\"EURO\"", "\"\""})
    EXPECT_NE(error_of(std::string("[portfolio]\naccount_currency = ") + bad + "\n")
                  .find("portfolio.account_currency must be 3 upper-case letters"),
              std::string::npos)
        << bad;
  EXPECT_NE(error_of("[portfolio]\ncapital = -1\n").find("portfolio.capital must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of("", {"portfolio.interval_ms=9"}).find("portfolio.interval_ms must be >= 10"),
            std::string::npos);
  EXPECT_NE(error_of("[portfolio]\ncurrency = \"USD\"\n").find("unknown key portfolio.currency"),
            std::string::npos);
}

TEST(Config, NetworkKeysAndTheirRanges) {
  const auto d = tp::parse_config("");
  EXPECT_EQ(d.network.heartbeat_ms, 0);  // libzmq 4.3.4's abort: see config.hpp
  EXPECT_EQ(d.network.heartbeat_timeout_ms, 3000);
  EXPECT_EQ(d.network.reconnect_ms, 100);
  EXPECT_EQ(d.network.reconnect_max_ms, 500);
  EXPECT_EQ(d.network.connect_timeout_ms, 1000);
  EXPECT_TRUE(d.network.tcp_keepalive);
  EXPECT_EQ(d.network.tcp_keepalive_idle_s, 1);
  EXPECT_EQ(d.network.tcp_keepalive_count, 2);
  const auto off = tp::parse_config("[network]\nheartbeat_ms = 0\ntcp_keepalive = false\n");
  EXPECT_EQ(off.network.heartbeat_ms, 0);
  EXPECT_FALSE(off.network.tcp_keepalive);

  const std::pair<const char*, const char*> bad[] = {
      {"network.heartbeat_ms=50", "network.heartbeat_ms must be 0 (off) or in 100..60000"},
      {"network.heartbeat_timeout_ms=50", "network.heartbeat_timeout_ms must be >= heartbeat_ms"},
      {"network.reconnect_ms=5", "network.reconnect_ms must be in 10..60000"},
      {"network.reconnect_max_ms=50", "network.reconnect_max_ms must be >= reconnect_ms"},
      {"network.connect_timeout_ms=10", "network.connect_timeout_ms must be 0 (the kernel's"},
      {"network.tcp_keepalive_count=0", "network.tcp_keepalive_count must be in 1..100"},
      {"network.heartbeat=1", "unknown key network.heartbeat"},
  };
  for (const auto& [set, message] : bad)
    EXPECT_NE(error_of("", {set}).find(message), std::string::npos) << set;
}

// make_socket puts the configured link options on every socket.
TEST(Config, MakeSocketSetsTheNetworkOptions) {
  zmq::context_t ctx;
  auto n = tp::parse_config(
               "[network]\nheartbeat_ms = 700\nheartbeat_timeout_ms = 2100\nreconnect_ms = 50\n"
               "reconnect_max_ms = 400\nconnect_timeout_ms = 900\ntcp_keepalive_idle_s = 7\n")
               .network;
  auto s = tp::make_socket(ctx, zmq::socket_type::pub, tp::SocketOptions{.linger_ms = 0, .network = n});
  EXPECT_EQ(s.get(zmq::sockopt::heartbeat_ivl), 700);
  EXPECT_EQ(s.get(zmq::sockopt::heartbeat_timeout), 2100);
  EXPECT_EQ(s.get(zmq::sockopt::heartbeat_ttl), 2100);
  EXPECT_EQ(s.get(zmq::sockopt::reconnect_ivl), 50);
  EXPECT_EQ(s.get(zmq::sockopt::reconnect_ivl_max), 400);
  EXPECT_EQ(s.get(zmq::sockopt::connect_timeout), 900);
  EXPECT_EQ(s.get(zmq::sockopt::tcp_keepalive), 1);
  EXPECT_EQ(s.get(zmq::sockopt::tcp_keepalive_idle), 7);
  // A reader runs no heartbeat timer (libzmq 4.3.4 aborts on one at a full
  // queue), and a PUSH sends no TTL (its PULL back-pressures, never drops).
  for (auto type : {zmq::socket_type::sub, zmq::socket_type::pull}) {
    auto reader = tp::make_socket(ctx, type, tp::SocketOptions{.linger_ms = 0, .network = n});
    EXPECT_EQ(reader.get(zmq::sockopt::heartbeat_ivl), 0);
    EXPECT_EQ(reader.get(zmq::sockopt::reconnect_ivl), 50);
  }
  auto push = tp::make_socket(ctx, zmq::socket_type::push, tp::SocketOptions{.linger_ms = 0, .network = n});
  EXPECT_EQ(push.get(zmq::sockopt::heartbeat_ivl), 700);
  EXPECT_EQ(push.get(zmq::sockopt::heartbeat_ttl), 0);
  n.heartbeat_ms = 0;
  n.tcp_keepalive = false;
  auto quiet = tp::make_socket(ctx, zmq::socket_type::pub, tp::SocketOptions{.linger_ms = 0, .network = n});
  EXPECT_EQ(quiet.get(zmq::sockopt::heartbeat_ivl), 0);
  EXPECT_EQ(quiet.get(zmq::sockopt::tcp_keepalive), 0);
}

TEST(Config, MissingFileIsAClearError) {
  try {
    tp::load_config(std::string("/nonexistent/x.toml"));
    FAIL() << "no error";
  } catch (const tp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.toml"), std::string::npos);
  }
}

// config/default.toml documents the embedded defaults; it must stay equal.
TEST(Config, CommentedDefaultFileMatchesEmbeddedDefaults) {
  auto file = tp::load_config(std::string(TP_SOURCE_DIR "/config/default.toml"));
  auto embedded = tp::parse_config("");
  EXPECT_EQ(file.endpoints.ticks, embedded.endpoints.ticks);
  EXPECT_EQ(file.endpoints.dead_letters, embedded.endpoints.dead_letters);
  ASSERT_EQ(file.instruments.size(), embedded.instruments.size());
  for (std::size_t i = 0; i < file.instruments.size(); ++i) {
    EXPECT_EQ(file.instruments[i].symbol, embedded.instruments[i].symbol);
    EXPECT_DOUBLE_EQ(file.instruments[i].price, embedded.instruments[i].price);
  }
  EXPECT_DOUBLE_EQ(file.gateway.rate, embedded.gateway.rate);
  EXPECT_EQ(file.strategy.groups, embedded.strategy.groups);
  EXPECT_DOUBLE_EQ(file.risk.max_notional, embedded.risk.max_notional);
  EXPECT_EQ(file.executor.order_timeout_ms, embedded.executor.order_timeout_ms);
  EXPECT_EQ(file.executor.breaker_failures, embedded.executor.breaker_failures);
  EXPECT_EQ(file.executor.orders_in_flight, embedded.executor.orders_in_flight);
  EXPECT_EQ(file.executor.breaker_cooling_ms, embedded.executor.breaker_cooling_ms);
  EXPECT_EQ(file.dll_gateway.settings, embedded.dll_gateway.settings);
  EXPECT_EQ(file.supervisor.backoff_max_ms, embedded.supervisor.backoff_max_ms);
  EXPECT_EQ(file.endpoints.control, embedded.endpoints.control);
  EXPECT_EQ(file.risk.max_open_orders, embedded.risk.max_open_orders);
  EXPECT_DOUBLE_EQ(file.risk.max_orders_per_second, embedded.risk.max_orders_per_second);
  EXPECT_DOUBLE_EQ(file.risk.max_daily_loss, embedded.risk.max_daily_loss);
  EXPECT_EQ(file.portfolio.account_currency, embedded.portfolio.account_currency);
  EXPECT_DOUBLE_EQ(file.portfolio.capital, embedded.portfolio.capital);
  EXPECT_EQ(file.portfolio.interval_ms, embedded.portfolio.interval_ms);
  EXPECT_EQ(file.network.heartbeat_ms, embedded.network.heartbeat_ms);
  EXPECT_EQ(file.network.heartbeat_timeout_ms, embedded.network.heartbeat_timeout_ms);
  EXPECT_EQ(file.network.reconnect_ms, embedded.network.reconnect_ms);
  EXPECT_EQ(file.network.reconnect_max_ms, embedded.network.reconnect_max_ms);
  EXPECT_EQ(file.network.connect_timeout_ms, embedded.network.connect_timeout_ms);
  EXPECT_EQ(file.network.tcp_keepalive, embedded.network.tcp_keepalive);
  EXPECT_EQ(file.network.tcp_keepalive_idle_s, embedded.network.tcp_keepalive_idle_s);
  EXPECT_EQ(file.network.tcp_keepalive_interval_s, embedded.network.tcp_keepalive_interval_s);
  EXPECT_EQ(file.network.tcp_keepalive_count, embedded.network.tcp_keepalive_count);
}

TEST(ConfigGroups, DefaultDeploymentRunsTwoStrategies) {
  const auto c = tp::parse_config("");
  ASSERT_EQ(c.strategy.groups.size(), 2u);
  EXPECT_EQ(c.strategy.groups[0].name, "trend");
  EXPECT_EQ(c.strategy.groups[0].kind, "sma_crossover");
  EXPECT_EQ(c.strategy.groups[0].instances, 2);
  EXPECT_EQ(c.strategy.groups[0].params.at("slow"), "30");
  EXPECT_EQ(c.strategy.groups[1].name, "revert");
  EXPECT_EQ(c.strategy.groups[1].kind, "rsi_reversion");
  EXPECT_EQ(c.strategy.groups[1].instruments.size(), c.instruments.size());
  // trend trades [strategy]'s market orders; revert's rest (the demo shows
  // them resting, filled later and cancelled).
  EXPECT_EQ(c.strategy.groups[0].orders, tp::OrderSettings{});
  EXPECT_EQ(c.strategy.groups[1].orders.order_type, "limit");
  EXPECT_EQ(c.strategy.groups[1].orders.time_in_force, "gtc");
  EXPECT_DOUBLE_EQ(c.strategy.groups[1].orders.limit_offset_bps, 1);
  EXPECT_EQ(c.strategy.groups[1].orders.cancel_after_ms, 1000);
  // A group's own terms win over [strategy]'s, as a file's entry would.
  const auto set =
      tp::parse_config("[strategy]\ncancel_after_ms = 5\ntime_in_force = \"gtc\"\norder_type = \"limit\"\n");
  EXPECT_EQ(set.strategy.groups[0].orders.cancel_after_ms, 5);
  EXPECT_EQ(set.strategy.groups[1].orders.cancel_after_ms, 1000);
}

TEST(ConfigGroups, NameOrInstancesIsTheOneGroupShorthand) {
  const auto c = tp::parse_config("[strategy]\nname = \"every_nth\"\n", {"strategy.every_nth.n=7"});
  ASSERT_EQ(c.strategy.groups.size(), 1u);
  EXPECT_EQ(c.strategy.groups[0].name, "strategy");
  EXPECT_EQ(c.strategy.groups[0].kind, "every_nth");
  EXPECT_EQ(c.strategy.groups[0].instances, 2);
  EXPECT_EQ(c.strategy.groups[0].params.at("n"), "7");
  const auto by_set = tp::parse_config("", {"strategy.instances=3"});
  ASSERT_EQ(by_set.strategy.groups.size(), 1u);
  EXPECT_EQ(by_set.strategy.groups[0].instances, 3);
  EXPECT_EQ(by_set.strategy.groups[0].kind, "sma_crossover");
}

TEST(ConfigGroups, GroupsReadWithTheirOwnParamsAndInstruments) {
  const auto c = tp::parse_config(R"(
    [strategy]
    quantity = 500
    [[strategy.groups]]
    name = "mine"
    kind = "plugin"
    plugin = "/opt/x/libmine.so"
    instruments = ["USDJPY", "EURUSD"]
    max_position = 3000
    max_orders_per_second = 2.5
    [strategy.groups.params]
    lookback = 20
    threshold = 0.5
    [[strategy.groups]]
    name = "py"
    kind = "python"
    entry = "my_module:MyStrat"
    python_path = "strategies"
    instances = 3
    quantity = 10
  )");
  ASSERT_EQ(c.strategy.groups.size(), 2u);
  const auto* mine = c.strategy.find_group("mine");
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->plugin, "/opt/x/libmine.so");
  EXPECT_EQ(mine->instruments, (std::vector<std::string>{"USDJPY", "EURUSD"}));
  EXPECT_DOUBLE_EQ(mine->quantity, 500);
  EXPECT_DOUBLE_EQ(mine->max_position, 3000);
  EXPECT_DOUBLE_EQ(mine->max_orders_per_second, 2.5);
  EXPECT_EQ(mine->params.at("lookback"), "20");
  EXPECT_EQ(mine->params.at("threshold"), "0.5");
  const auto* py = c.strategy.find_group("py");
  ASSERT_NE(py, nullptr);
  EXPECT_EQ(py->entry, "my_module:MyStrat");
  EXPECT_EQ(py->instances, 3);
  EXPECT_DOUBLE_EQ(py->quantity, 10);
  EXPECT_EQ(py->instruments.size(), 4u);
  EXPECT_DOUBLE_EQ(py->max_orders_per_second, 0);  // none of its own
  EXPECT_EQ(c.strategy.find_group("nope"), nullptr);
}

// Orders in flight: 1 (one at a time) to 64 (a whole batch of signals);
// each costs an order client, a socket here and a connection at dll_gateway.
TEST(Config, OrdersInFlightIsBetweenOneAndSixtyFour) {
  EXPECT_EQ(tp::parse_config("").executor.orders_in_flight, 32);
  EXPECT_EQ(tp::parse_config("[executor]\norders_in_flight = 1\n").executor.orders_in_flight, 1);
  EXPECT_EQ(tp::parse_config("[executor]\norders_in_flight = 64\n").executor.orders_in_flight, 64);
  for (const auto* bad : {"0", "65", "-1"}) {
    EXPECT_NE(error_of(std::string("[executor]\norders_in_flight = ") + bad + "\n")
                  .find("executor.orders_in_flight"),
              std::string::npos)
        << bad;
  }
}

TEST(ConfigGroups, BadGroupsAreRefusedNamingTheKey) {
  const auto group = [](const std::string& body) { return error_of("[[strategy.groups]]\n" + body); };
  EXPECT_NE(group("name = \"Bad-Name\"\nkind = \"every_nth\"\n").find("strategy.groups[0].name"),
            std::string::npos);
  EXPECT_NE(group("name = \"executor\"\nkind = \"every_nth\"\n").find("strategy.groups[0].name"),
            std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"magic\"\n").find("strategy.groups[0].kind"), std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"plugin\"\n").find("strategy.groups[0].plugin"), std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"python\"\nentry = \"nocolon\"\n").find("strategy.groups[0].entry"),
            std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"every_nth\"\ninstruments = [\"XAUUSD\"]\n").find("XAUUSD"),
            std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"every_nth\"\ninstances = 0\n").find("strategy.groups[0].instances"),
            std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"every_nth\"\ntypo = 1\n").find("strategy.groups[0].typo"),
            std::string::npos);
  EXPECT_NE(group("name = \"a\"\nkind = \"every_nth\"\nmax_orders_per_second = -1\n")
                .find("strategy.groups[0].max_orders_per_second must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of("[[strategy.groups]]\nname = \"a\"\nkind = \"every_nth\"\n[[strategy.groups]]\nname = "
                     "\"a\"\nkind = \"breakout\"\n")
                .find("strategy.groups[1].name"),
            std::string::npos);
}

TEST(ConfigGroups, OrderTermsDefaultToMarketIocAndInheritStrategys) {
  const auto plain = tp::parse_config("[[strategy.groups]]\nname = \"a\"\nkind = \"every_nth\"\n");
  for (const auto& g : plain.strategy.groups) EXPECT_EQ(g.orders, tp::OrderSettings{});
  EXPECT_EQ(plain.strategy.groups[0].orders.order_type, "market");
  EXPECT_EQ(plain.strategy.groups[0].orders.time_in_force, "ioc");

  const auto c = tp::parse_config(R"(
    [strategy]
    order_type = "limit"
    time_in_force = "gtd"
    good_till_ms = 9000
    cancel_after_ms = 1500
    [[strategy.groups]]
    name = "inherits"
    kind = "every_nth"
    [[strategy.groups]]
    name = "own"
    kind = "breakout"
    time_in_force = "gtc"
    limit_offset_bps = 2.5
    cancel_after_ms = 0
  )");
  const auto* inherits = c.strategy.find_group("inherits");
  ASSERT_NE(inherits, nullptr);
  EXPECT_EQ(inherits->orders.order_type, "limit");
  EXPECT_EQ(inherits->orders.time_in_force, "gtd");
  EXPECT_EQ(inherits->orders.good_till_ms, 9000);
  EXPECT_EQ(inherits->orders.cancel_after_ms, 1500);
  const auto* own = c.strategy.find_group("own");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->orders.time_in_force, "gtc");
  EXPECT_DOUBLE_EQ(own->orders.limit_offset_bps, 2.5);
  EXPECT_EQ(own->orders.cancel_after_ms, 0);

  const auto shorthand = tp::parse_config("", {"strategy.name=every_nth", "strategy.order_type=limit"});
  ASSERT_EQ(shorthand.strategy.groups.size(), 1u);
  EXPECT_EQ(shorthand.strategy.groups[0].orders.order_type, "limit");
}

TEST(ConfigGroups, BadOrderTermsAreRefusedNamingTheKey) {
  const auto group = [](const std::string& body) {
    return error_of("[[strategy.groups]]\nname = \"trend\"\nkind = \"every_nth\"\n" + body);
  };
  EXPECT_EQ(group("order_type = \"foo\"\n"),
            "test.toml: strategy.groups[0].order_type must be \"market\" or \"limit\"");
  EXPECT_EQ(group("order_type = \"limit\"\ntime_in_force = \"day\"\n"),
            "test.toml: strategy.groups[0].time_in_force must be \"ioc\", \"gtc\" or \"gtd\"");
  EXPECT_NE(group("time_in_force = \"gtc\"\n").find("strategy.groups[0].time_in_force must be \"ioc\" when"),
            std::string::npos);
  EXPECT_NE(group("time_in_force = \"gtd\"\n").find("market order never rests"), std::string::npos);
  EXPECT_NE(
      group("order_type = \"limit\"\nlimit_offset_bps = -1\n").find("strategy.groups[0].limit_offset_bps"),
      std::string::npos);
  EXPECT_NE(group("good_till_ms = -5\n").find("strategy.groups[0].good_till_ms must be >= 0"),
            std::string::npos);
  EXPECT_NE(group("cancel_after_ms = -5\n").find("strategy.groups[0].cancel_after_ms must be >= 0"),
            std::string::npos);
  EXPECT_NE(group("order_type = \"limit\"\ncancel_after_ms = 100\n").find("IOC order never rests"),
            std::string::npos);
  EXPECT_NE(error_of("", {"strategy.order_type=market", "strategy.time_in_force=gtc"})
                .find("strategy.time_in_force must be \"ioc\" when"),
            std::string::npos);
  // A group naming market under resting defaults is refused, not quietly made IOC.
  EXPECT_NE(
      error_of("[strategy]\norder_type = \"limit\"\ntime_in_force = \"gtc\"\n[[strategy.groups]]\nname = "
               "\"a\"\nkind = \"every_nth\"\norder_type = \"market\"\n")
          .find("strategy.groups[0].time_in_force"),
      std::string::npos);
}

TEST(LogLimiter, FirstOfAKindThenOncePerInterval) {
  tp::LogLimiter limiter(1000);
  std::uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.allow("malformed", 0, suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limiter.allow("malformed", 10, suppressed));
  EXPECT_FALSE(limiter.allow("malformed", 999, suppressed));
  EXPECT_TRUE(limiter.allow("expired", 999, suppressed));  // other kinds are independent
  EXPECT_TRUE(limiter.allow("malformed", 1000, suppressed));
  EXPECT_EQ(suppressed, 2u);
}

TEST(LatencyHistogram, PercentilesWithinResolution) {
  tp::LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0);
  for (int i = 1; i <= 100000; ++i) h.record(i * 10);  // 10 ns .. 1 ms uniform
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.5)), 500000.0, 500000.0 * 0.04);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 990000.0, 990000.0 * 0.04);
  EXPECT_EQ(h.percentile(1.0), 1000000);
  tp::LatencyHistogram small;
  for (int v : {1, 2, 3, 60}) small.record(v);
  EXPECT_EQ(small.percentile(0.5), 2);  // exact below 64
  EXPECT_EQ(small.percentile(1.0), 60);
}

TEST(Sharding, EveryInstrumentHasExactlyOneShard) {
  std::vector<std::string> all{"EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD", "EURUSDX"};
  for (std::uint32_t n = 1; n <= 5; ++n) {
    std::size_t total = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
      for (const auto& s : tp::instruments_for_shard(all, k, n)) {
        EXPECT_EQ(tp::shard_of(s, n), k);
        ++total;
      }
    }
    EXPECT_EQ(total, all.size());
  }
  // Fixed vectors shared with scripts/supervisor.py's tests (FNV-1a 64).
  EXPECT_EQ(tp::fnv1a64(""), 14695981039346656037ull);
  EXPECT_EQ(tp::fnv1a64("a"), 0xaf63dc4c8601ec8cull);
}

TEST(Json, EscapesControlCharacters) {
  EXPECT_EQ(tp::json_escape("a\"b\\c\n\r\t\x01\x1f/"), "a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f/");
  tp::JsonObject inner;
  inner.add("n", std::uint64_t{3});
  tp::JsonObject o;
  o.add("s", "x").add("d", 1.5).add("b", true).add("o", inner);
  EXPECT_EQ(o.str(), R"({"s":"x","d":1.5,"b":true,"o":{"n":3}})");
}

// UTF-8 text is written as it is, so that every JSON reader gets "é" back
// (it used to be escaped byte by byte, "\u00c3\u00a9", which reads as "Ã©").
TEST(Json, NonAsciiTextRoundTrips) {
  const std::string e_acute = "\xc3\xa9";                // é, 2 bytes
  const std::string nihon = "\xe6\x97\xa5\xe6\x9c\xac";  // 日本, 3 bytes each
  const std::string emoji = "\xf0\x9f\x98\x80";          // 😀, 4 bytes
  EXPECT_EQ(tp::json_escape(e_acute), e_acute);
  EXPECT_EQ(tp::json_escape(nihon + emoji), nihon + emoji);
  tp::JsonObject o;
  o.add("detail", e_acute).add(nihon, emoji).add("mixed", "caf" + e_acute + "\n" + nihon + emoji);
  EXPECT_EQ(o.str(), "{\"detail\":\"" + e_acute + "\",\"" + nihon + "\":\"" + emoji + "\",\"mixed\":\"caf" +
                         e_acute + "\\n" + nihon + emoji + "\"}");
}

// A dead letter's detail may hold raw bytes from a hostile peer: each
// invalid UTF-8 sequence becomes U+FFFD, and nothing throws.
TEST(Json, InvalidUtf8IsReplacedNotThrown) {
  const std::string fffd = "\xef\xbf\xbd";
  // A lone continuation byte, a cut 3-byte sequence, 0xff, an overlong '/'
  // (c0 af: two invalid bytes), and a 4-byte sequence cut at the end.
  const std::string hostile = std::string("a\x80") + "b\xe6\x97" + "c\xff" + "d\xc0\xaf" + "e\xf0\x9f\x98";
  const std::string replaced = "a" + fffd + "b" + fffd + "c" + fffd + "d" + fffd + fffd + "e" + fffd;
  std::string escaped;
  ASSERT_NO_THROW(escaped = tp::json_escape(hostile));
  EXPECT_EQ(escaped, replaced);
  tp::JsonObject o;
  ASSERT_NO_THROW(o.add("detail", hostile).add(std::string("k\xfe"), 1));
  EXPECT_EQ(o.str(), "{\"detail\":\"" + replaced + "\",\"k" + fffd + "\":1}");
}

// The format every stats file and dead-letter line always had: keys in
// insertion order, doubles as "%.10g", NaN and infinities as null.
TEST(Json, KeepsNumberFormatAndKeyOrder) {
  tp::JsonObject o;
  o.add("zeta", 1)
      .add("alpha", std::uint64_t{18446744073709551615ull})
      .add("min", std::numeric_limits<std::int64_t>::min())
      .add("whole", 3.0)
      .add("sum", 0.1 + 0.2)
      .add("big", 12345678901.5)
      .add("small", 0.0000123)
      .add("nan", std::nan(""))
      .add("inf", -std::numeric_limits<double>::infinity())
      .add("no", false)
      .add("empty", "")
      .add("none", tp::JsonObject());
  EXPECT_EQ(
      o.str(),
      R"({"zeta":1,"alpha":18446744073709551615,"min":-9223372036854775808,"whole":3,"sum":0.3,)"
      R"("big":1.23456789e+10,"small":1.23e-05,"nan":null,"inf":null,"no":false,"empty":"","none":{}})");
}

TEST(Stats, WritesAtomically) {
  auto dir = std::filesystem::temp_directory_path() / ("tp_stats_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "x.json").string();
  ASSERT_TRUE(tp::write_file_atomically(path, "{}"));
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "{}");
  EXPECT_FALSE(tp::write_file_atomically((dir / "missing" / "x.json").string(), "{}"));
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

TEST(LagWindow, TheSmallestLagOfAWindowBoundsTheSendersClock) {
  tp::LagWindow w;
  EXPECT_FALSE(w.last_min());
  w.observe(1'000'000, 990'000);    // 10 us
  w.observe(2'000'000, 1'996'000);  // 4 us: the fastest transit
  w.observe(3'000'000, 2'900'000);  // 100 us: queued
  EXPECT_FALSE(w.last_min()) << "nothing before the window closes";
  w.roll();
  ASSERT_TRUE(w.last_min());
  EXPECT_EQ(*w.last_min(), 4'000);
  EXPECT_EQ(*w.last_max(), 100'000);
  // A sender 300 ms ahead: every stamp is later than its receipt.
  w.observe(4'000'000'000, 4'300'000'000);
  w.observe(5'000'000'000, 5'299'990'000);
  w.roll();
  EXPECT_EQ(*w.last_min(), -300'000'000);
}

TEST(LagWindow, AQuietWindowKeepsTheLastFigureAndUnstampedMessagesTeachNothing) {
  tp::LagWindow w;
  w.observe(1'000, 0);  // no stamp
  w.roll();
  EXPECT_FALSE(w.last_min());
  w.observe(10'000, 4'000);
  w.roll();
  w.roll();  // nothing arrived
  ASSERT_TRUE(w.last_min());
  EXPECT_EQ(*w.last_min(), 6'000);
}

}  // namespace
