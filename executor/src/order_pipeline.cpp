#include "executor/order_pipeline.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <utility>

#include "common/clock.hpp"
#include "common/zmq_util.hpp"

namespace tp::executor {

OrderPipeline::OrderPipeline(zmq::context_t& ctx, std::string endpoint, OrderClientOptions options,
                             std::size_t slots)
    : ctx_(ctx),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      flights_(std::max<std::size_t>(1, slots)) {
  open();
}

void OrderPipeline::open() {
  try {
    // linger 0: what is queued for a dll_gateway that went away is not sent
    // at the stop. The high-water marks hold a window of orders many times.
    auto s = make_socket(ctx_, zmq::socket_type::dealer,
                         SocketOptions{.linger_ms = 0, .sndhwm = 1000, .rcvhwm = 1000});
    s.set(zmq::sockopt::immediate, 1);
    options_.security_or_none().connect(s, endpoint_);
    socket_ = std::move(s);
  } catch (const zmq::error_t&) {
    // Out of descriptors (EMFILE) or the like: no socket until a later
    // attempt can make one; the orders are not lost, only later.
    ++socket_failures_;
  }
}

std::size_t OrderPipeline::start(const proto::OrderRequest& req) {
  const auto it =
      std::find_if(flights_.begin(), flights_.end(), [](const Flight& f) { return f.phase == Phase::free; });
  if (it == flights_.end()) throw std::logic_error("OrderPipeline::start: every slot has an order in flight");
  Flight& f = *it;
  f = Flight{};
  f.client_order_id = req.client_order_id;
  f.payload.assign(encoder_.encode(req));
  ++in_flight_;
  if (stopping())
    settle(f, std::nullopt);
  else
    attempt(f, monotonic_ns());
  return static_cast<std::size_t>(it - flights_.begin());
}

bool OrderPipeline::send(Flight& f, std::int64_t now) {
  if (!socket_) open();
  // dontwait: with ZMQ_IMMEDIATE and no connection to dll_gateway the send
  // fails instead of queuing. The envelope is a REQ's: an empty frame, then
  // the request (the second part of a message goes wherever the first did).
  const bool sent =
      socket_ && socket_.send(zmq::const_buffer(), zmq::send_flags::dontwait | zmq::send_flags::sndmore) &&
      socket_.send(zmq::const_buffer(f.payload.data(), f.payload.size()), zmq::send_flags::dontwait);
  if (sent) {
    f.phase = Phase::waiting;
    f.until_ns = now + std::int64_t{options_.timeout_ms} * ns_per_ms;
  }
  return sent;
}

void OrderPipeline::attempt(Flight& f, std::int64_t now) {
  if (send(f, now)) return;
  // Not connected (yet): sent the moment the socket can take it, within
  // the attempt's time; past it, the attempt failed.
  f.phase = Phase::idle;
  f.until_ns = now + std::int64_t{options_.timeout_ms} * ns_per_ms;
}

void OrderPipeline::next_attempt(Flight& f, std::int64_t now) {
  if (f.attempt >= std::max(0, options_.retries) || stopping() ||
      (options_.hold_retries && options_.hold_retries())) {
    settle(f, std::nullopt);
    return;
  }
  ++f.attempt;
  ++retries_;
  const int shift = std::min(f.attempt - 1, 16);
  f.phase = Phase::paused;
  f.until_ns =
      now + std::int64_t{std::min(options_.max_backoff_ms, options_.backoff_ms << shift)} * ns_per_ms;
}

void OrderPipeline::settle(Flight& f, std::optional<proto::OrderReply> answer) {
  f.phase = Phase::settled;
  f.answer = std::move(answer);
}

void OrderPipeline::advance(Flight& f, std::int64_t now) {
  switch (f.phase) {
    case Phase::waiting:
      if (!f.stop_seen && stopping()) {
        // A healthy dll_gateway answers within the grace and the answer is
        // applied; a frozen one costs no more than the grace, and the order
        // is then reconciled by query at the next start.
        f.stop_seen = true;
        f.until_ns = std::min(f.until_ns, now + std::int64_t{OrderClient::stop_grace_ms} * ns_per_ms);
      }
      if (now < f.until_ns) return;
      if (f.stop_seen) {
        settle(f, std::nullopt);  // no retry once stopping
        return;
      }
      next_attempt(f, now);
      return;
    case Phase::idle:
    case Phase::paused:
      if (stopping()) {
        settle(f, std::nullopt);
        return;
      }
      if (now < f.until_ns) return;
      if (f.phase == Phase::idle)
        next_attempt(f, now);
      else
        attempt(f, now);
      return;
    case Phase::free:
    case Phase::settled:
      return;
  }
}

void OrderPipeline::receive() {
  for (;;) {
    if (!socket_.recv(frame_, zmq::recv_flags::dontwait)) return;
    // [""][answer]: anything else is drained and counted, never taken.
    bool bad = frame_.size() != 0 || !frame_.more();
    if (!bad) {
      (void)socket_.recv(frame_, zmq::recv_flags::dontwait);  // a message's parts arrive together
      bad = frame_.more();
    }
    if (bad) {
      ++bad_replies_;
      while (frame_.more() && socket_.recv(frame_, zmq::recv_flags::dontwait)) {
      }
      continue;
    }
    auto decoded = decoder_.decode_order_reply(bytes_of(frame_));
    if (!decoded) {
      ++bad_replies_;
      continue;
    }
    // Any attempt's answer is the order's: one given before a timeout is as
    // good as the retry's, and ends the flight sooner.
    const auto it = std::find_if(flights_.begin(), flights_.end(), [&](const Flight& f) {
      return f.phase != Phase::free && f.phase != Phase::settled &&
             f.client_order_id == decoded->client_order_id;
    });
    if (it == flights_.end()) {
      ++late_replies_;
      continue;
    }
    settle(*it, std::move(decoded).value());
  }
}

void OrderPipeline::wait(std::vector<Settled>& settled, zmq::socket_t* also) {
  const auto before = settled.size();
  while (in_flight_ > 0) {
    const std::int64_t now = monotonic_ns();
    std::int64_t wake_ns = now + std::int64_t{OrderClient::stop_check_ms} * ns_per_ms;
    bool unsent = false;
    for (std::size_t slot = 0; slot < flights_.size(); ++slot) {
      Flight& f = flights_[slot];
      advance(f, now);
      if (f.phase == Phase::settled) {
        settled.push_back(Settled{slot, std::exchange(f.answer, std::nullopt)});
        f.phase = Phase::free;
        --in_flight_;
      } else if (f.phase != Phase::free) {
        wake_ns = std::min(wake_ns, f.until_ns);
        unsent = unsent || f.phase == Phase::idle;
      }
    }
    if (settled.size() > before) return;
    // The caller's heartbeat: a wait on a frozen dll_gateway is not a hung
    // executor.
    if (options_.while_waiting) options_.while_waiting();
    const std::int64_t wait_ms =
        std::max<std::int64_t>(0, (wake_ns - monotonic_ns() + ns_per_ms - 1) / ns_per_ms);
    // Read during back-offs too: a late answer settles its order sooner.
    const short events = ZMQ_POLLIN | (unsent ? ZMQ_POLLOUT : 0);
    std::array<zmq::pollitem_t, 2> items{zmq::pollitem_t{socket_ ? socket_.handle() : nullptr, 0, events, 0},
                                         zmq::pollitem_t{also ? also->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    // The order socket (when open) first, then `also` (when given).
    const std::size_t first = socket_ ? 0 : 1;
    const std::size_t count = (socket_ ? 1 : 0) + (also ? 1 : 0);
    try {
      zmq::poll(items.data() + first, count, std::chrono::milliseconds(wait_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal; the stop flag is seen at the next advance
      throw;
    }
    const zmq::pollitem_t& item = items[0];
    if (item.revents & ZMQ_POLLIN) receive();
    if (item.revents & ZMQ_POLLOUT) {
      const auto now_out = monotonic_ns();
      for (Flight& f : flights_)
        if (f.phase == Phase::idle && !send(f, now_out)) break;
    }
    if (items[1].revents & ZMQ_POLLIN) return;
  }
}

}  // namespace tp::executor
