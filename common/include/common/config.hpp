// The deployment: one TOML file that every program and the supervisor read.
// Defaults are embedded here, so every program runs without a file; the file
// and then `--set section.key=value` flags override single values. Unknown
// keys and wrong types are refused with an error that names the key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tp {

// Thrown for any bad or missing configuration value; the message names the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Endpoints {
  std::string ticks = "tcp://127.0.0.1:7101";         // gateway PUB binds
  std::string signals = "tcp://127.0.0.1:7102";       // executor PULL binds
  std::string order_events = "tcp://127.0.0.1:7103";  // executor PUB binds (events, acks)
  std::string orders = "tcp://127.0.0.1:7104";        // dll_gateway ROUTER binds
  std::string dead_letters = "tcp://127.0.0.1:7105";  // dead-letter sink PULL binds
  // dll_gateway PUB binds (execution reports); empty in the file: derived
  // from `orders` (common/endpoints.hpp), which gives 7106 for the default.
  std::string reports;
  // The executor's control REP binds (tpctl); empty: derived from `orders`
  // (7107 for the default).
  std::string control;
};

// How every socket watches its connections (ZeroMQ options set by
// make_socket; docs/ARCHITECTURE.md, "Links between hosts"). Without them a
// connection whose peer vanished (a cut link, a host gone) stays "up" until
// TCP gives up retransmitting, minutes later, and a link that comes back is
// used again only at TCP's next retransmission, backed off to tens of
// seconds: after a 30 s cut trading resumed 23-25 s after the link
// returned. The defaults let the kernel's keepalive drop a silent
// connection after 3 s (one probe a second on an idle link) and dial again
// within about a second of a link's return. ZMTP heartbeats are off by
// default: libzmq 4.3.4 aborts a reader that had stopped reading at its
// high-water mark when a PING it had buffered is answered after its peer
// hung up (`!_io_error`, stream_engine_base.cpp:331; the chaos test hit it).
struct NetworkConfig {
  int heartbeat_ms = 0;              // ZMTP PING this often on writing sockets; 0 = none (see above)
  int heartbeat_timeout_ms = 3000;   // nothing from the peer this long after a PING: drop the connection
  int reconnect_ms = 100;            // a dropped or refused connection is dialled again after this...
  int reconnect_max_ms = 500;        // ...doubling up to this (plus up to reconnect_ms of jitter)
  int connect_timeout_ms = 1000;     // a tcp connect unanswered this long is abandoned and dialled again
  bool tcp_keepalive = true;         // the kernel's probes on a silent connection
  int tcp_keepalive_idle_s = 1;      // silent this long before the first probe...
  int tcp_keepalive_interval_s = 1;  // ...then one probe this often...
  int tcp_keepalive_count = 2;       // ...and this many unanswered close the connection
};

struct Instrument {
  std::string symbol;
  double price = 1.0;          // synthetic feed: starting mid price
  double spread = 0.0001;      // synthetic feed: ask - bid
  double volatility = 0.0001;  // synthetic feed: std dev of a step, as a price
  // Currencies, for the portfolio's conversion into the account currency.
  // Empty in the file: derived from a 6-letter symbol (EURUSD: EUR, USD).
  std::string base_currency;
  std::string quote_currency;
};

// Three upper-case letters (an ISO 4217 code's shape).
bool is_currency(std::string_view code) noexcept;
// The instrument's currencies: as configured, else from a 6-letter symbol
// (EURUSD: EUR, USD), else empty.
std::string base_currency_of(const Instrument& i);
std::string quote_currency_of(const Instrument& i);

struct RunConfig {
  std::string dir = "run";  // state, stats and default file locations
  std::string log_level = "info";
  int stats_interval_ms = 1000;
  // Below this much free space on a filesystem a program writes to, it warns
  // (at a bounded rate) and shows disk_low in its stats.
  std::uint64_t min_free_bytes = 64ull << 20;
};

struct GatewayConfig {
  std::string source = "synthetic";  // "synthetic" or "csv"
  double rate = 1000;                // ticks/s over all instruments; 0 = flat out
  std::uint64_t seed = 42;
  std::string csv_path;
  std::string csv_instrument;   // for files without an instrument column
                                // (Dukascopy); default: file name up to '_'
  double speed = 1.0;           // csv replay: x recorded speed; 0 = flat out
  std::uint64_t max_ticks = 0;  // stop publishing after this many; 0 = never
  int heartbeat_ms = 500;
  int sndhwm = 20000;  // per subscriber: ~5 MB of queued ticks at most
};

struct SmaCrossoverConfig {
  int fast = 10;
  int slow = 30;
};
struct RsiReversionConfig {
  int period = 14;
  double oversold = 30;
  double overbought = 70;
};
struct BreakoutConfig {
  int window = 50;
};

// Emits a signal on every n-th tick of an instrument, alternating BUY and
// SELL: a fixed, known signal rate for benchmarks and fault tests.
struct EveryNthConfig {
  int n = 100;
};

// How a group's signals trade when the strategy does not say (SignalRequest's
// zero fields): the group's [[strategy.groups]] keys, defaulting to
// [strategy]'s, defaulting to these. Kept as the file spells them.
struct OrderSettings {
  std::string order_type = "market";  // "market" | "limit"
  std::string time_in_force = "ioc";  // "ioc" | "gtc" | "gtd"; a market order is always ioc
  // A limit's distance from the trigger price: a BUY at trigger x (1 - bps/1e4),
  // a SELL at trigger x (1 + bps/1e4); 0 = at the trigger, > 0 = passive.
  double limit_offset_bps = 0;
  int good_till_ms = 0;     // gtd: good till created + this; 0 = the signal's TTL
  int cancel_after_ms = 0;  // built-ins cancel an order still open this long after it was emitted; 0 = never
  bool operator==(const OrderSettings&) const = default;
};

// One strategy group: a strategy (built-in, C++ plugin or Python class) run as
// `instances` shards over its instruments. Its name names everything of it:
// the processes and files "<name>-<k>", the signals' strategy field, the ack
// topics "ACK.<name>.<k>", the executor's per-group positions.
struct StrategyGroup {
  std::string name;
  std::string kind;         // a built-in name, "plugin" or "python"
  std::string plugin;       // kind "plugin": the shared library
  std::string entry;        // kind "python": "module:Class"
  std::string python_path;  // kind "python": a directory put first on sys.path
  int instances = 1;
  double quantity = 1000;                // a signal's default size
  std::vector<std::string> instruments;  // resolved: all instruments unless the file names some
  double max_position = 0;               // this group's absolute position per instrument; 0 = no own limit
  double max_orders_per_second = 0;      // this group's own throttle; 0 = none
  std::map<std::string, std::string> params;  // the strategy's parameters, as strings
  OrderSettings orders;                       // its signals' default order terms
  // With [[hosts]]: the hosts its shards run on, instance k on hosts[k %
  // size]; left out in the file: the strategy hosts (strategy_hosts). Empty
  // without [[hosts]].
  std::vector<std::string> hosts;
  bool operator==(const StrategyGroup&) const = default;
};

// The built-in strategies' kind names.
inline constexpr const char* builtin_strategy_kinds[] = {"sma_crossover", "rsi_reversion", "breakout",
                                                         "every_nth"};

struct StrategyConfig {
  // The one-group shorthand: with no [[strategy.groups]], setting name or
  // instances makes the deployment one group named "strategy" of this kind.
  std::string name = "sma_crossover";  // sma_crossover | rsi_reversion | breakout | every_nth
  int instances = 2;
  double quantity = 1000;  // default of every group's quantity
  OrderSettings orders;    // default of every group's order terms
  int signal_ttl_ms = 5000;
  int resend_ms = 1000;              // resend an unacked signal after this long
  int feed_timeout_ms = 2000;        // no tick nor heartbeat for this long: feed dead
  int max_tick_age_ms = 5000;        // a tick sent longer ago than this is stale: refused
  int max_signal_tick_age_ms = 250;  // no signal from a tick sent longer ago (it moves the indicators)
  int max_clock_skew_ms = 1000;      // a tick stamped further ahead than this: refused
  int give_up_after_ms = 60000;      // an unacked signal this long past its expiry: dead letter `unacked`
  SmaCrossoverConfig sma_crossover;
  RsiReversionConfig rsi_reversion;
  BreakoutConfig breakout;
  EveryNthConfig every_nth;
  // Never empty once loaded: the file's groups, the shorthand's one group, or
  // the embedded default (trend: sma_crossover x2, revert: rsi_reversion x1).
  std::vector<StrategyGroup> groups;

  // The group called `name`; nullptr when there is none.
  const StrategyGroup* find_group(std::string_view group) const;
};

struct RiskConfig {
  double max_order_quantity = 100000;
  double max_position = 1000000;  // absolute, per instrument
  double max_notional = 5000000;  // per order: quantity x price
  // Orders not final (recorded, held, in flight, working) at once.
  int max_open_orders = 1000;
  // Accepted signals per second over every group (a token bucket as deep as
  // the rate); 0 = no limit.
  double max_orders_per_second = 0;
  // In the account currency: below -this day's PnL the executor enters
  // REDUCING by itself; 0 = no limit.
  double max_daily_loss = 0;
};

struct PortfolioConfig {
  std::string account_currency = "USD";
  double capital = 1000000;  // equity = capital + realised + unrealised PnL
  int interval_ms = 1000;    // valuation, PORTFOLIO event and equity point
};

struct ExecutorConfig {
  int order_timeout_ms = 1000;  // one REQ attempt
  int order_retries = 3;        // attempts after the first
  // Orders of a batch at dll_gateway at once, each on its own REQ socket
  // (Lazy Pirate per request); 1 sends them one at a time.
  int orders_in_flight = 32;
  int max_clock_skew_ms = 1000;   // a signal created further ahead than this: refused
  int breaker_failures = 3;       // broker failures in a row that open the circuit breaker
  int breaker_cooling_ms = 2000;  // how long it stays open before one probe
  // At start the executor compares its positions with the broker's; on a
  // mismatch it refuses new signals (position_mismatch) unless this adopts
  // the broker's figures.
  bool adopt_broker_positions = false;
  // On SIGTERM, cancel every order still resting at the broker (bounded by
  // the order timeout each) before exiting; false leaves them working.
  bool cancel_on_shutdown = false;
  std::string db_path;  // default: <run.dir>/executor.db
};

struct DllGatewayConfig {
  std::string plugin;   // default: libsim_broker.so beside the dll_gateway binary
  std::string db_path;  // default: <run.dir>/dll_gateway.db
  // Passed to the plugin's create function as strings, "${run.dir}" expanded.
  // The simulated broker's journal is its day book: it answers queries for
  // orders a crash left PENDING, also after dll_gateway restarts.
  std::map<std::string, std::string> settings{{"latency_ms", "0"},
                                              {"reject_rate", "0"},
                                              {"partial_fill_rate", "0"},
                                              {"seed", "7"},
                                              {"journal_path", "${run.dir}/sim_broker.journal"},
                                              {"recent_orders", "4096"}};
};

struct DeadLetterConfig {
  std::string path;  // default: <run.dir>/dead_letters.jsonl
  // Disk bound: the file rotates at max_file_bytes and max_files files are
  // kept (the live one included), so at most their product is on disk.
  std::uint64_t max_file_bytes = 64ull << 20;
  int max_files = 4;
  // A reason's originals are stored in full up to this many bytes a second;
  // past it one letter in sample_one_in keeps its original (the line stays).
  std::uint64_t original_bytes_per_s = 1ull << 20;
  std::uint64_t sample_one_in = 100;
};

// Read by scripts/supervisor.py; parsed here too so that every program checks
// the same file the same way.
struct SupervisorConfig {
  std::string bin_dir;          // default: build/release/bin beside the scripts
  std::string control;          // default: <run.dir>/supervisor.sock
  int backoff_min_ms = 250;     // first restart delay
  int backoff_max_ms = 8000;    // delay cap (doubles per consecutive crash)
  int flap_window_s = 30;       // this many restarts within this window...
  int flap_max_restarts = 5;    // ...mark the program FATAL
  int stop_grace_ms = 3000;     // SIGTERM, then SIGKILL after this long
  int healthy_after_ms = 5000;  // running this long resets the back-off
  int hang_timeout_ms = 5000;   // no heartbeat (stats file) this long: HUNG; 0 = off
  bool restart_hung = false;    // SIGKILL and restart a HUNG process
  // tpctl from another host (README "Several machines"): a tcp listener on
  // this host's [[hosts]] address (127.0.0.1 without hosts), off by default;
  // a client proves it knows the shared secret in the control_secret file
  // (HMAC-SHA256 over a fresh challenge, scripts/tp_supervisor/remote.py).
  int control_port = 0;        // 0 = the Unix socket only
  std::string control_secret;  // file holding the shared secret (mode 0600); needed with control_port
};

// CurveZMQ on tcp links. Key files hold one Z85 key on one line (made by
// tp_keygen); a secret key file must not be readable by group or others.
struct SecurityConfig {
  bool curve = false;
  std::string server_public_key;  // every program that connects needs it
  std::string server_secret_key;  // programs that bind tcp endpoints
  std::string client_public_key;  // programs that connect to tcp endpoints
  std::string client_secret_key;
  std::string authorized_clients;  // file: the client public keys servers accept
  bool allow_public_bind = false;  // bind tcp beyond loopback without CURVE
};

// Prometheus metrics over HTTP (GET /metrics, common/metrics.hpp). Off by
// default: the programs of several deployments, or of tests running side by
// side, would all claim the same port on one host; each deployment turns it
// on with a port of its own per program (--set metrics.port=...).
struct MetricsConfig {
  std::string host = "127.0.0.1";  // loopback unless security.allow_public_bind
  int port = 0;                    // 0 = no metrics endpoint
};

// One machine of a deployment spread over several ([[hosts]]): its name, the
// address the other hosts dial it at, and the programs it runs (each of
// gateway, executor, dll_gateway and dead_letter on exactly one host; the
// strategy groups' shards go where their `hosts` say). The programs only
// check these keys, so that one file starts every program on every host;
// the supervisor (`--host NAME`) and the unit generator read them.
struct Host {
  std::string name;
  std::string address;
  std::vector<std::string> programs;
  bool operator==(const Host&) const = default;
};

// The programs [[hosts]] places; strategy shards are placed by their groups.
inline constexpr const char* placed_programs[] = {"gateway", "executor", "dll_gateway", "dead_letter"};

// Where a group without its own `hosts` runs: the hosts that run none of the
// placed programs, or every host when each runs one. Empty without hosts.
std::vector<std::string> strategy_hosts(const std::vector<Host>& hosts);

struct Config {
  RunConfig run;
  Endpoints endpoints;
  NetworkConfig network;
  std::vector<Instrument> instruments{
      {"EURUSD", 1.0850, 0.0001, 0.00005},
      {"GBPUSD", 1.2650, 0.0002, 0.00006},
      {"USDJPY", 151.20, 0.01, 0.006},
      {"AUDUSD", 0.6550, 0.0001, 0.00004},
  };
  GatewayConfig gateway;
  StrategyConfig strategy;
  RiskConfig risk;
  PortfolioConfig portfolio;
  ExecutorConfig executor;
  DllGatewayConfig dll_gateway;
  DeadLetterConfig dead_letter;
  SupervisorConfig supervisor;
  SecurityConfig security;
  MetricsConfig metrics;
  std::vector<Host> hosts;  // empty: a single-host deployment

  // The host running `program` (a placed program); nullptr without hosts.
  const Host* host_of(std::string_view program) const;
  const Instrument* find_instrument(std::string_view symbol) const;
  // <run.dir>/<name>, or `explicit_path` when that is set.
  std::string run_path(const std::string& explicit_path, const std::string& name) const;
};

// Loads `path` (or only the defaults when empty) and applies `overrides`, each
// "section.key=value" with a TOML value (strings may go unquoted).
// Throws ConfigError naming the file and key.
Config load_config(const std::optional<std::string>& path, const std::vector<std::string>& overrides = {});

// Same, from TOML text (tests, embedded configs).
Config parse_config(const std::string& toml_text, const std::vector<std::string>& overrides = {},
                    const std::string& origin = "<string>");

}  // namespace tp
