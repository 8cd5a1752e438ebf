// The executor's side of the order channel: a REQ socket to dll_gateway used
// with the Lazy Pirate pattern (poll with a timeout; on a timeout close and
// reopen the socket and send the same request again, with a growing
// back-off). The same client order id goes out on every attempt, and
// dll_gateway answers a repeat with the stored outcome, so a retry can never
// become a second order. One request at a time: the executor's queries,
// cancels and report fetches (its orders, several at once, go through
// OrderPipeline). Owns its socket; one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/security.hpp"
#include "proto/codec.hpp"

namespace tp::executor {

struct OrderClientOptions {
  int timeout_ms = 1000;  // one attempt's wait for the reply
  int retries = 3;        // attempts after the first
  int backoff_ms = 10;    // pause before retry i: backoff_ms << (i-1), capped
  int max_backoff_ms = 500;
  const Security* security = nullptr;  // CURVE on tcp; none when null
  // Polled at least every stop_check_ms while waiting; once it says true the
  // reply in flight is awaited for at most stop_grace_ms and nothing is
  // retried, so that SIGTERM is not held up by a frozen dll_gateway. An
  // order left without an answer is reconciled at the next start, under the
  // same id.
  std::function<bool()> stopping;
  // OrderPipeline's orders only. Asked before each retry (never before the
  // first attempt): true gives the order up unanswered instead of sending it
  // again. The executor holds while trading is HALTED: a resend then would
  // be an order sent after the halt; the order is reconciled by query
  // instead.
  std::function<bool()> hold_retries;
  // Runs at least every stop_check_ms while an exchange waits (the caller's
  // heartbeat: a program waiting on a frozen peer is not itself hung). It
  // must not call back into order handling: the client is mid-exchange.
  std::function<void()> while_waiting;

  // `*security`, or Security::none() when it is null.
  const Security& security_or_none() const { return security ? *security : Security::none(); }
};

class OrderClient {
 public:
  static constexpr int stop_check_ms = 50;
  static constexpr int stop_grace_ms = 250;

  OrderClient(zmq::context_t& ctx, std::string endpoint, OrderClientOptions options);

  // Sends the request and waits for the matching reply through up to
  // 1 + retries attempts. Returns nothing when no (valid, matching) answer
  // came or `stopping` said so. Never blocks longer than the attempts'
  // timeouts and back-offs, nor longer than stop_grace_ms past a stop.
  std::optional<proto::OrderReply> request(const proto::OrderRequest& req);
  // `retries` < 0: the configured number; 0: one attempt (a liveness probe).
  std::optional<proto::OrderReply> query(const proto::OrderQuery& q, int retries = -1);
  // The broker's position in one instrument, the same way.
  std::optional<proto::PositionReply> position(const proto::PositionQuery& q);
  // A cancel (answered with the order's state), the same way: dll_gateway
  // lets one cancel per client order id through to the broker, so a retry
  // is as safe as an order's.
  std::optional<proto::OrderReply> cancel(const proto::OrderCancel& c);
  // Stored execution reports from a seq on, or the broker's open orders.
  std::optional<proto::ReportBatch> reports(const proto::ReportQuery& q, int retries = -1);
  std::optional<proto::ReportBatch> open_orders(const proto::OpenOrdersQuery& q);

  std::uint64_t retries() const noexcept { return retries_; }          // re-sent attempts
  std::uint64_t bad_replies() const noexcept { return bad_replies_; }  // undecodable or mismatched
  std::uint64_t socket_failures() const noexcept {
    return socket_failures_;
  }  // a new socket refused (EMFILE...)

 private:
  // How one attempt's send went; `none`: not made yet.
  enum class Attempt { none, stopped, no_socket, not_sent, sent };
  // One send of `payload_` on the socket (made anew when missing).
  Attempt try_send();
  // Sends `payload_` and waits for a reply that `take` accepts (it decodes
  // and keeps it; false for a bad or mismatched reply, which is retried).
  bool exchange(int retries, const std::function<bool(proto::Bytes)>& take);
  std::optional<proto::OrderReply> order_exchange(std::string_view client_order_id, int retries);
  std::optional<proto::ReportBatch> batch_exchange(int retries);
  void reopen();
  // Sleeps `ms`, in slices that look at `stopping`; false when stopped.
  bool pause(int ms);
  bool stopping() const { return options_.stopping && options_.stopping(); }

  zmq::context_t& ctx_;
  std::string endpoint_;
  OrderClientOptions options_;
  zmq::socket_t socket_;
  proto::Encoder encoder_;
  proto::Decoder decoder_;
  std::string payload_;  // the request being sent, kept across reopen
  std::uint64_t retries_ = 0;
  std::uint64_t bad_replies_ = 0;
  std::uint64_t socket_failures_ = 0;
};

}  // namespace tp::executor
