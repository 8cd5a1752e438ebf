// The strategy API: what a user's strategy implements (tp::Strategy) and what
// it may ask of the runtime that runs it (tp::Context). The runtime owns
// everything a strategy must not get wrong: the feed's health, signal ids,
// the journal written before each send, resending until acked, giving up,
// sharding. A strategy sees whole ticks, feed events, its own orders and
// position, timers and its parameters, emits signals (market or limit orders,
// immediate-or-cancel or resting) and cancels the orders they caused.
//
// Threading: every callback runs on the runtime's one loop thread, one at a
// time; a strategy needs no locks and must not block (a slow callback delays
// every tick behind it). Exceptions thrown from a callback are caught by the
// runtime, dead-lettered (internal_error) and do not end the process, except
// from on_start, where they refuse the start with their message.
//
// C++ plugins: build a shared library against the installed SDK
// (find_package(TradingPipelineSdk) and link tp::strategy_sdk) and name the
// class once with TP_STRATEGY_PLUGIN. The strategy program checks the plugin's
// ABI version before it creates anything. docs/STRATEGIES.md is the guide.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tp {

// Bumped whenever a change to this header would break a compiled plugin
// (a virtual added or moved, a struct's layout changed). A plugin built
// against another version is refused with both numbers in the message.
// 2: order terms in SignalRequest, Context::cancel(signal_id), EXPIRED.
inline constexpr std::uint32_t strategy_abi_version = 2;

enum class Side : std::uint8_t { buy = 1, sell = 2 };

// One quote, as the gateway published it. Prices in the quote currency,
// volumes in units of the instrument, times in ns since the Unix epoch.
struct Tick {
  std::string_view instrument;
  double bid = 0;
  double ask = 0;
  double bid_volume = 0;
  double ask_volume = 0;
  std::int64_t source_ts_ns = 0;   // when the source (exchange, CSV row) stamped it
  std::int64_t gateway_ts_ns = 0;  // when the gateway published it
  std::uint64_t seq = 0;           // per instrument: 1, 2, ... (gaps are reported as FeedEvent::gap)
  // Halved first: bid + ask overflows for prices near the largest double.
  double mid() const noexcept { return bid / 2.0 + ask / 2.0; }
};

enum class FeedEventKind : std::uint8_t {
  dead,       // no believed tick nor heartbeat (stamped within max_tick_age_ms) for
              // strategy.feed_timeout_ms: emit() refuses until alive
  alive,      // ticks or heartbeats again after `dead`
  restarted,  // `instrument`'s price series starts again (the gateway restarted): reset what spans it
  gap,        // `missed` ticks of `instrument` were lost (a slow consumer, a dropped link)
};

struct FeedEvent {
  FeedEventKind kind = FeedEventKind::dead;
  std::string_view instrument;  // gap and restarted; empty for dead and alive (the whole feed)
  std::uint64_t missed = 0;     // gap only
};

// The same numbers as the wire's OrderStatus (docs/PROTOCOL.md).
enum class OrderStatus : std::uint8_t {
  new_order = 1,
  accepted = 2,
  partially_filled = 3,
  filled = 4,
  rejected = 5,  // by the broker, or by the executor before any order (refused: see reason)
  canceled = 6,  // by a cancel, or an immediate-or-cancel order's unfilled rest (fill kept)
  unknown = 7,
  expired = 8,  // a GTD order's good-till time passed (fill kept)
};

// After these the broker changes the order no more: FILLED, REJECTED,
// CANCELED, EXPIRED. PARTIALLY_FILLED is not final: the rest still works.
constexpr bool is_final(OrderStatus s) noexcept {
  return s == OrderStatus::filled || s == OrderStatus::rejected || s == OrderStatus::canceled ||
         s == OrderStatus::expired;
}

// A SignalRequest's order terms. group_default (zero) takes the group's
// setting (order_type / time_in_force in the deployment file).
enum class OrderType : std::uint8_t {
  group_default = 0,
  market = 1,  // at the market, immediate-or-cancel
  limit = 2,   // at limit_price or better
};
enum class TimeInForce : std::uint8_t {
  group_default = 0,
  ioc = 1,  // immediate or cancel: what does not fill at once is canceled
  gtc = 2,  // good till canceled: the rest rests at the broker
  gtd = 3,  // good till created + good_till_ms: then EXPIRED
};

// What became of a signal this strategy group emitted: an ORDER event of the
// executor, or the executor's refusal of the signal (then `refused` is true,
// no order exists, and `reason` says why: risk, expired, ...).
struct OrderUpdate {
  std::string_view signal_id;
  std::string_view instrument;
  std::string_view order_id;  // the broker's; empty when refused
  Side side = Side::buy;
  OrderStatus status = OrderStatus::new_order;
  double quantity = 0;         // ordered
  double filled_quantity = 0;  // in total so far
  double fill_price = 0;       // average price of what is filled
  std::string_view reason;
  std::int64_t event_ts_ns = 0;
  bool refused = false;
};

// What emit() sends. Zero means "the default" for every number.
struct SignalRequest {
  std::string_view instrument;  // one of Context::instruments()
  Side side = Side::buy;
  double quantity = 0;       // 0: the group's quantity
  double confidence = 1;     // 0..1, clamped
  std::int64_t ttl_ms = 0;   // 0: strategy.signal_ttl_ms; not traded at or after created + ttl
  double trigger_price = 0;  // 0: the last tick's ask (buy) or bid (sell)
  // The order's terms; each zero takes the group's setting. A market order
  // is always IOC. A limit order without limit_price is priced from the
  // trigger and the group's limit_offset_bps: a BUY at trigger x (1 - bps/1e4),
  // a SELL at trigger x (1 + bps/1e4). good_till_ms (GTD only; 0: the group's
  // good_till_ms, else the signal's TTL) counts from the signal's creation.
  OrderType order_type = OrderType::group_default;
  double limit_price = 0;
  TimeInForce time_in_force = TimeInForce::group_default;
  std::int64_t good_till_ms = 0;
};

enum class LogLevel : std::uint8_t { debug, info, warn, error };

// Thrown by Params for a parameter that is missing or of the wrong type; the
// runtime refuses to start with its message.
class ParamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The group's parameters (its params table in the deployment file). Values
// arrive as text; each getter converts and checks. The runtime refuses to
// start a strategy that leaves a parameter unread: a typo is an error, not a
// silently ignored key.
class Params {
 public:
  Params() = default;
  Params(std::map<std::string, std::string, std::less<>> values, std::string where)
      : values_(std::move(values)), where_(std::move(where)) {}

  bool has(std::string_view key) const { return values_.find(key) != values_.end(); }

  double number(std::string_view key, double fallback) const {
    const auto* v = find(key);
    if (!v) return fallback;
    std::size_t used = 0;
    double out = 0;
    try {
      out = std::stod(*v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v->size()) fail(key, "a number", *v);
    return out;
  }
  std::int64_t integer(std::string_view key, std::int64_t fallback) const {
    const auto* v = find(key);
    if (!v) return fallback;
    std::size_t used = 0;
    long long out = 0;
    try {
      out = std::stoll(*v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v->size()) fail(key, "an integer", *v);
    return out;
  }
  std::string text(std::string_view key, std::string fallback) const {
    const auto* v = find(key);
    return v ? *v : std::move(fallback);
  }
  bool flag(std::string_view key, bool fallback) const {
    const auto* v = find(key);
    if (!v) return fallback;
    if (*v == "true") return true;
    if (*v == "false") return false;
    fail(key, "true or false", *v);
  }
  // A check of the strategy's own: throws ParamError naming the key.
  void require(bool ok, std::string_view key, std::string_view what) const {
    if (!ok) fail(key, what, text(key, "(default)"));
  }

  // The keys no getter asked for (the runtime refuses them after on_start).
  std::vector<std::string> unread() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : values_)
      if (!read_.count(k)) out.push_back(k);
    return out;
  }
  const std::string& where() const noexcept { return where_; }
  const std::map<std::string, std::string, std::less<>>& all() const noexcept { return values_; }

 private:
  const std::string* find(std::string_view key) const {
    read_.emplace(key);
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : &it->second;
  }
  [[noreturn]] void fail(std::string_view key, std::string_view what, const std::string& got) const {
    throw ParamError(where_ + "." + std::string(key) + " must be " + std::string(what) + " (got \"" + got +
                     "\")");
  }

  std::map<std::string, std::string, std::less<>> values_;
  std::string where_ = "params";
  mutable std::set<std::string, std::less<>> read_;
};

// What a strategy may ask of its runtime. Owned by the runtime; valid from
// on_start until on_stop returns.
class Context {
 public:
  using TimerId = std::uint64_t;

  virtual ~Context() = default;

  virtual std::string_view group() const noexcept = 0;  // the deployment's group name
  virtual std::uint32_t shard() const noexcept = 0;     // this instance: k of shards()
  virtual std::uint32_t shards() const noexcept = 0;
  // The instruments this instance trades (its share of the group's).
  virtual const std::vector<std::string>& instruments() const noexcept = 0;
  virtual const Params& params() const noexcept = 0;

  // Emits a signal. Returns its id, or an empty string when nothing was sent:
  // the feed is dead (signals_suppressed), the instrument's last tick was
  // sent longer ago than strategy.max_signal_tick_age_ms (signals_stale: the
  // backlog of a pause or of a returning link, or a quiet instrument), the
  // instrument is not this instance's, the request is invalid, or the
  // journal cannot be written (each counted in the stats). The runtime
  // journals it before sending and resends it until acked.
  virtual std::string emit(const SignalRequest& request) = 0;

  // Asks the executor to cancel the order of a signal this instance emitted
  // (a resting GTC/GTD order; an IOC order is over before a cancel could
  // reach it). True when a cancel is under way: sent now (or once the signal
  // itself is acked), resent every strategy.resend_ms until the executor
  // acks it or the order is seen final; its outcome arrives through
  // on_order (CANCELED, or the final status the order reached first).
  // Asking again while one is under way sends nothing more. False when
  // `signal_id` is not an open order of this instance (unknown, refused or
  // final). Pending cancels live in memory only: a restarted instance
  // forgets them (the order stays open until cancelled again or final).
  virtual bool cancel(std::string_view signal_id, std::string_view reason = {}) = 0;

  // This group's net position in `instrument` (> 0 long), as the executor
  // last reported it plus the fills since. 0 until the first report; after a
  // restart the executor's report (within a second) restores it.
  virtual double position(std::string_view instrument) const = 0;
  virtual bool position_known(std::string_view instrument) const = 0;

  // Timers on the runtime's loop. `every` runs `fn` each period (the first
  // time one period from now); `at` once at a wall-clock time (now or in the
  // past: on the next turn of the loop). Cancelling an unknown id is a no-op.
  virtual TimerId every(std::int64_t period_ms, std::function<void()> fn) = 0;
  virtual TimerId at(std::int64_t wall_ts_ns, std::function<void()> fn) = 0;
  virtual void cancel(TimerId id) = 0;

  virtual std::int64_t now_ns() const noexcept = 0;  // wall clock, ns since the epoch
  virtual bool feed_alive() const noexcept = 0;

  // Through the program's logger, prefixed with the group and shard.
  virtual void log(LogLevel level, std::string_view message) = 0;
};

// A user's strategy. One object per instance (shard), serving all of its
// instruments: keep per-instrument state in a map keyed by instrument.
class Strategy {
 public:
  virtual ~Strategy() = default;

  // Read parameters here (ctx().params(); throw ParamError, or any
  // exception, to refuse to start). ctx() is valid from here until on_stop
  // returns.
  virtual void on_start() {}
  virtual void on_tick(const Tick& tick) = 0;
  virtual void on_feed(const FeedEvent&) {}
  virtual void on_order(const OrderUpdate&) {}
  virtual void on_stop() {}

  // Called by the runtime before on_start.
  void attach(Context& ctx) noexcept { ctx_ = &ctx; }

 protected:
  Context& ctx() const noexcept { return *ctx_; }

 private:
  Context* ctx_ = nullptr;
};

// What a plugin exports (through TP_STRATEGY_PLUGIN). abi_version comes first
// and never moves: a reader of any version can read it before trusting the
// rest.
struct StrategyPlugin {
  std::uint32_t abi_version;
  const char* kind;  // the strategy's own name, for logs
  Strategy* (*create)();
  void (*destroy)(Strategy*);  // deletes in the plugin: its allocator, its destructor
};

}  // namespace tp

// The entry point the strategy program looks up with dlsym.
#define TP_STRATEGY_PLUGIN_SYMBOL "tp_strategy_plugin"

// Names the plugin's strategy class; once per shared library.
#define TP_STRATEGY_PLUGIN(Class, kind_name)                                                           \
  extern "C" __attribute__((visibility("default"))) const ::tp::StrategyPlugin* tp_strategy_plugin() { \
    static const ::tp::StrategyPlugin plugin{::tp::strategy_abi_version, kind_name,                    \
                                             []() -> ::tp::Strategy* { return new Class(); },          \
                                             [](::tp::Strategy* s) { delete s; }};                     \
    return &plugin;                                                                                    \
  }
