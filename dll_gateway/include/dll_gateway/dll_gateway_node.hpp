// DllGatewayNode: the dll_gateway process's sockets and its single loop. A
// ROUTER socket bound on endpoints.orders serves REQ peers (each executor
// order client is one) and answers every request, valid or not (a REQ waits
// for its answer): OrderRequest, OrderQuery, OrderCancel,
// ReportQuery and OpenOrdersQuery go to the OrderDesk, a PositionQuery to the
// plugin's position call, anything else is dead-lettered and answered with
// a REJECTED OrderReply. A PUB bound on endpoints.reports publishes every
// execution report the desk stored (topic REPORT.<instrument>), after the
// commit. The requests waiting are read together (at most
// max_requests_per_group): the PENDING rows of their new orders are
// committed in one transaction (OrderDesk::prepare), each request is
// answered to its own peer as soon as its broker call returns, and the DONE
// rows and reports of the group follow in one transaction (flush). When the plugin wants market data, a SUB
// on endpoints.ticks feeds it every tick ("TICK." prefix); the broker's reports are polled after each batch
// of ticks and every poll_interval_ms. At start the desk settles the store's open orders with the broker. One
// RunLoop: the order socket, then the ticks, then the monitors; the stats and the poll as timers. Borrows the
// plugin, store and clock; owns its sockets. One thread.
//
// Disk and descriptors: a store write that fails (a full disk) is logged
// with the file and errno at a bounded rate (WriteFailures), shown in the
// stats (`files_failing`, `alert`) until a write succeeds again, and the
// desk answers the orders it could not record UNKNOWN; the free space of the
// db's and run dir's filesystems is polled (DiskWatch). A connection that
// cannot be accepted for lack of descriptors is counted (`accept_failed`)
// and logged at a bounded rate; the program goes on.
//
// With metrics.port set the same figures are served as Prometheus metrics
// (dll_gateway_metrics.hpp), published by the loop where it writes the stats
// file; the metrics server's thread only reads the published text.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/clock_skew.hpp"
#include "common/config.hpp"
#include "common/dead_letter.hpp"
#include "common/disk_watch.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/run_loop.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "common/sqlite_store.hpp"
#include "common/zmq_util.hpp"
#include "dll_gateway/broker_plugin.hpp"
#include "dll_gateway/dll_gateway_metrics.hpp"
#include "dll_gateway/order_desk.hpp"
#include "dll_gateway/order_store.hpp"
#include "proto/codec.hpp"

namespace tp::dll_gateway {

class DllGatewayNode {
 public:
  // Binds/connects the sockets; throws std::runtime_error naming the endpoint.
  DllGatewayNode(zmq::context_t& ctx, const Config& cfg, BrokerPlugin& plugin, OrderStore& store,
                 const Clock& clock, const Security& security = Security::none());

  // The broker's reports are polled at least this often (GTD expiries are
  // made by the poll itself).
  static constexpr int poll_interval_ms = 10;
  // Requests read and answered as one group at most: bounds the wait of the
  // first answer behind the group's PENDING commit, and how long the stop
  // flag and the ticks wait.
  static constexpr std::size_t max_requests_per_group = 64;
  // And at most this many bytes of requests (a group stops growing once it
  // holds them): with 64 KiB frames, a flood cannot make a group hold 4 MiB.
  static constexpr std::size_t max_group_bytes = 128 * 1024;

  // Settles the store's open orders with the broker, then loops until
  // tp::stop_requested(), then writes the final stats.
  void run();
  // One turn of the loop: a poll over the sockets (waiting at most
  // `timeout`, capped by the stats timer and 100 ms), whatever is ready, and
  // the stats when due.
  void poll_once(std::chrono::milliseconds timeout);
  // Writes <run.dir>/dll_gateway.stats.json; false on failure (logged
  // through WriteFailures).
  bool write_stats();
  std::string stats_json() const;
  DllGatewayFigures figures() const;

  const DeskCounters& desk_counters() const noexcept { return desk_.counters(); }
  const NodeCounters& counters() const noexcept { return counters_; }

 private:
  // One request read from the ROUTER: its peer's envelope and its body.
  struct Request {
    zmq::message_t peer;     // the REQ peer's routing id
    zmq::message_t payload;  // the body's first frame
    std::optional<proto::OrderRequest> order;
    std::optional<proto::OrderReply> refusal;  // answered without the desk (bad frames, refused order)
  };
  // Reads the requests waiting (at most max_requests_per_group) and answers
  // them as a group (see above); false when none was waiting.
  bool handle_requests();
  // Reads one request into `r`; false when none was waiting or it was not
  // a REQ peer's (no envelope: dropped, as a REP socket would).
  bool read_request(Request& r, bool& got);
  void send_answer(Request& r, std::string_view payload);
  // The encoded answer to one request (valid until the next encode).
  std::string_view answer(const zmq::message_t& payload);
  proto::PositionReply position_of(const proto::PositionQuery& query);
  proto::OrderReply refuse(std::string_view reason, const std::string& detail, std::string_view original);
  // Business checks before the store and the broker see an order: a
  // configured instrument and a quantity within risk.max_order_quantity
  // (the executor checks the same; this is the last line). Empty when fine.
  std::optional<proto::OrderReply> refuse_order(const proto::OrderRequest& order, std::string_view original);
  ConnectionCounters connections() const noexcept;
  bool handle_tick();
  // Polls the broker's reports and publishes what the desk stored.
  void poll_reports();
  void publish_reports();
  // Registers the sockets, the per-turn work and the stats timer with loop_.
  void add_loop_callbacks();
  // Logs accept failures (descriptors exhausted) at a bounded rate.
  void watch_connections();
  // The store's checkpoint, when due and no request waits.
  void checkpoint_if_quiet();
  // What the store's writes tell the node (OrderDesk's StoreListener).
  void on_store_write(const StoreError* error, std::string_view consequence);
  // "cannot write <file>: <why>" while a file is failing, else empty.
  std::string alert() const;
  // The stats' figures as Prometheus metrics, swapped into the server.
  void publish_metrics();

  BrokerPlugin& plugin_;
  OrderStore& store_;
  const Clock& clock_;
  WriteFailures write_failures_;  // before desk_: its listener writes here
  OrderDesk desk_;
  std::string stats_path_;
  std::chrono::milliseconds stats_interval_;
  std::set<std::string, std::less<>> instruments_;  // configured symbols
  double max_order_quantity_;
  zmq::socket_t orders_;  // ROUTER
  zmq::socket_t reports_;
  std::optional<zmq::socket_t> sub_;  // only when the plugin wants quotes
  // After the sockets they watch: destroyed first.
  SocketMonitor orders_monitor_;
  std::optional<SocketMonitor> sub_monitor_;
  DeadLetterSender dead_letters_;
  proto::Encoder encoder_;
  proto::Decoder decoder_;
  std::vector<zmq::message_t> frames_;
  std::vector<Request> requests_;  // the group being answered; kept for its capacity
  std::vector<const proto::OrderRequest*> group_orders_;
  NodeCounters counters_;
  tp::sqlite::QuietCheckpoint checkpoint_;  // the store's, while no request waits
  ClockLags clock_lags_;
  LagWindow& order_lag_ = clock_lags_.add("executor");  // the executor's clock, from sent_ts_ns
  DiskWatch disk_;
  LogLimiter limiter_;
  std::uint64_t accept_failed_logged_ = 0;
  std::uint64_t min_free_bytes_ = 0;                 // run.min_free_bytes, for tp_disk_floor_bytes
  std::unique_ptr<metrics::MetricsServer> metrics_;  // null when metrics.port = 0
  RunLoop loop_;                                     // last: it holds the sockets above and callbacks on this
};

}  // namespace tp::dll_gateway
