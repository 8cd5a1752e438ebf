#include "executor/order_client.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "common/clock.hpp"
#include "common/zmq_util.hpp"

namespace tp::executor {
namespace {

zmq::socket_t make_req(zmq::context_t& ctx, const std::string& endpoint, const Security& security) {
  // linger 0: a request abandoned by a reopen must not keep the socket alive.
  auto s =
      make_socket(ctx, zmq::socket_type::req, SocketOptions{.linger_ms = 0, .sndhwm = 1000, .rcvhwm = 1000});
  security.connect(s, endpoint);
  return s;
}

}  // namespace

bool OrderClient::pause(int ms) {
  const std::int64_t until = monotonic_ns() + std::int64_t{ms} * ns_per_ms;
  for (;;) {
    if (stopping()) return false;
    if (options_.while_waiting) options_.while_waiting();
    const std::int64_t left_ms = (until - monotonic_ns()) / ns_per_ms;
    if (left_ms <= 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(left_ms, stop_check_ms)));
  }
}

OrderClient::OrderClient(zmq::context_t& ctx, std::string endpoint, OrderClientOptions options)
    : ctx_(ctx), endpoint_(std::move(endpoint)), options_(options) {
  // Out of descriptors now: the first attempt makes the socket (or waits).
  reopen();
}

void OrderClient::reopen() {
  // A REQ socket that sent and got no answer cannot send again: the Lazy
  // Pirate way out is a fresh socket.
  socket_.close();
  try {
    socket_ = make_req(ctx_, endpoint_, options_.security_or_none());
  } catch (const zmq::error_t&) {
    // Out of descriptors (EMFILE) or the like: no socket until a later
    // attempt can make one; the request is not lost, only later.
    ++socket_failures_;
  }
}

OrderClient::Attempt OrderClient::try_send() {
  if (!socket_) reopen();
  if (!socket_) return Attempt::no_socket;
  // dontwait: a REQ with no connected peer would otherwise block here.
  const bool sent =
      socket_.send(zmq::const_buffer(payload_.data(), payload_.size()), zmq::send_flags::dontwait)
          .has_value();
  return sent ? Attempt::sent : Attempt::not_sent;
}

std::optional<proto::OrderReply> OrderClient::request(const proto::OrderRequest& req) {
  payload_.assign(encoder_.encode(req));
  return order_exchange(req.client_order_id, options_.retries);
}

std::optional<proto::OrderReply> OrderClient::query(const proto::OrderQuery& q, int retries) {
  payload_.assign(encoder_.encode(q));
  return order_exchange(q.client_order_id, retries < 0 ? options_.retries : retries);
}

std::optional<proto::PositionReply> OrderClient::position(const proto::PositionQuery& q) {
  payload_.assign(encoder_.encode(q));
  std::optional<proto::PositionReply> answer;
  exchange(options_.retries, [&](proto::Bytes bytes) {
    auto decoded = decoder_.decode_position_reply(bytes);
    if (!decoded || decoded->instrument != q.instrument) return false;
    answer = std::move(decoded).value();
    return true;
  });
  return answer;
}

std::optional<proto::OrderReply> OrderClient::cancel(const proto::OrderCancel& c) {
  payload_.assign(encoder_.encode(c));
  return order_exchange(c.client_order_id, options_.retries);
}

std::optional<proto::ReportBatch> OrderClient::reports(const proto::ReportQuery& q, int retries) {
  payload_.assign(encoder_.encode(q));
  return batch_exchange(retries < 0 ? options_.retries : retries);
}

std::optional<proto::ReportBatch> OrderClient::open_orders(const proto::OpenOrdersQuery& q) {
  payload_.assign(encoder_.encode(q));
  return batch_exchange(options_.retries);
}

std::optional<proto::ReportBatch> OrderClient::batch_exchange(int retries) {
  std::optional<proto::ReportBatch> answer;
  exchange(retries, [&](proto::Bytes bytes) {
    auto decoded = decoder_.decode_report_batch(bytes);
    if (!decoded) return false;
    answer = std::move(decoded).value();
    return true;
  });
  return answer;
}

std::optional<proto::OrderReply> OrderClient::order_exchange(std::string_view client_order_id, int retries) {
  std::optional<proto::OrderReply> answer;
  exchange(retries, [&](proto::Bytes bytes) {
    auto decoded = decoder_.decode_order_reply(bytes);
    if (!decoded || decoded->client_order_id != client_order_id) return false;
    answer = std::move(decoded).value();
    return true;
  });
  return answer;
}

bool OrderClient::exchange(int retries, const std::function<bool(proto::Bytes)>& take) {
  const int attempts = 1 + std::max(0, retries);
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (stopping()) return false;
    if (attempt > 0) {
      ++retries_;
      const int shift = std::min(attempt - 1, 16);
      const int pause_ms = std::min(options_.max_backoff_ms, options_.backoff_ms << shift);
      if (!pause(pause_ms)) return false;
    }
    const Attempt sent = try_send();
    if (sent == Attempt::no_socket) {
      if (!pause(options_.timeout_ms)) return false;
      continue;
    }
    if (sent == Attempt::not_sent) {
      // Nothing went out; wait out this attempt's time so a missing
      // dll_gateway is not hammered, then try again on a fresh socket.
      if (!pause(options_.timeout_ms)) return false;
      reopen();
      continue;
    }

    std::int64_t deadline = monotonic_ns() + std::int64_t{options_.timeout_ms} * ns_per_ms;
    bool answered = false;
    bool stop_seen = false;
    while (!answered) {
      if (!stop_seen && stopping()) {
        // A healthy dll_gateway answers within the grace and the answer is
        // applied; a frozen one costs no more than the grace, and the order
        // is then reconciled by query at the next start.
        stop_seen = true;
        deadline = std::min(deadline, monotonic_ns() + std::int64_t{stop_grace_ms} * ns_per_ms);
      }
      const std::int64_t left_ms = (deadline - monotonic_ns() + ns_per_ms - 1) / ns_per_ms;
      if (left_ms <= 0) break;
      if (options_.while_waiting) options_.while_waiting();
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, std::chrono::milliseconds(std::min<std::int64_t>(left_ms, stop_check_ms)));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal; the caller sees the stop flag later
        throw;
      }
      answered = (item.revents & ZMQ_POLLIN) != 0;
    }
    if (!answered) {
      reopen();
      if (stop_seen) return false;  // no retry once stopping
      continue;
    }

    zmq::message_t reply;
    if (!socket_.recv(reply, zmq::recv_flags::dontwait)) {
      reopen();
      continue;
    }
    if (reply.more()) {
      // Drain the extra frames; a well-behaved REP sends one.
      zmq::message_t extra;
      while (socket_.get(zmq::sockopt::rcvmore) && socket_.recv(extra, zmq::recv_flags::dontwait)) {
      }
      ++bad_replies_;
      reopen();
      continue;
    }
    if (!take(bytes_of(reply))) {
      ++bad_replies_;
      reopen();
      continue;
    }
    return true;
  }
  return false;
}

}  // namespace tp::executor
