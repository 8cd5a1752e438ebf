// The executor's orders to dll_gateway: one DEALER socket with up to `slots`
// orders in flight at once, each under its own Lazy Pirate (its own
// timeout, attempts and back-off; the same client order id on every
// attempt, so that dll_gateway answers a repeat with the stored outcome and
// a retry can never become a second order).
//
// Why one DEALER and not a REQ socket per order: a burst then goes out as a
// few writes on one connection, and its answers come back the same way,
// where 32 REQ sockets cost 32 connections' worth of writes, reads and I/O
// thread wakeups on both sides (the larger part of the CPU an order took).
// A DEALER does not match answers to requests: the answer's client order id
// does. Any answer carrying a flight's id is that order's answer, whichever
// attempt it answers (dll_gateway gives every attempt the same stored
// outcome); one for no flight (an attempt given up) is dropped and counted.
// A DEALER has no lockstep to break, so a timeout sends again on the same
// socket instead of reopening it. ZMQ_IMMEDIATE keeps requests from queuing
// while dll_gateway is away: an attempt that cannot be sent waits for the
// connection, within its timeout, and is never queued past it, so that no
// copy of a given-up order reaches the broker when dll_gateway comes back
// (an order given up while HALTED is reconciled by query, never sent behind
// the operator's back).
//
// dll_gateway's ROUTER sees what a REQ peer sends ([""][request]) and
// answers the same way. Owns its socket; one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "executor/order_client.hpp"
#include "proto/codec.hpp"

namespace tp::executor {

class OrderPipeline {
 public:
  struct Settled {
    std::size_t slot = 0;
    std::optional<proto::OrderReply> reply;  // nothing: no answer through every attempt, or a stop
  };

  // `options` as OrderClient's: timeout_ms and retries per order, back-off,
  // stopping (and its grace), hold_retries, while_waiting.
  OrderPipeline(zmq::context_t& ctx, std::string endpoint, OrderClientOptions options, std::size_t slots);

  std::size_t slots() const noexcept { return flights_.size(); }
  std::size_t in_flight() const noexcept { return in_flight_; }
  bool slot_free() const noexcept { return in_flight_ < flights_.size(); }

  // Makes the order's first attempt (it returns at once) on a free slot,
  // which it returns; there must be one (slot_free()).
  std::size_t start(const proto::OrderRequest& req);
  // Waits until at least one order in flight settles (its answer came, or
  // none through all its attempts, or a stop) and appends every settled one;
  // their slots are free again. Returns at once when nothing is in flight.
  // With `also`: returns as well, settled or not, once `also` is readable
  // (the executor's signals, decided while its orders are out).
  void wait(std::vector<Settled>& settled, zmq::socket_t* also = nullptr);

  std::uint64_t retries() const noexcept { return retries_; }                  // attempts after a first
  std::uint64_t bad_replies() const noexcept { return bad_replies_; }          // undecodable or no envelope
  std::uint64_t late_replies() const noexcept { return late_replies_; }        // for no order in flight
  std::uint64_t socket_failures() const noexcept { return socket_failures_; }  // EMFILE...

 private:
  enum class Phase {
    free,     // no order
    waiting,  // an attempt is out: its answer is awaited until `until_ns`
    idle,     // not sent yet (no connection): sent when it can be, until `until_ns`
    paused,   // the back-off before the next attempt, until `until_ns`
    settled,  // answered or given up: handed out by the next wait()
  };
  struct Flight {
    Phase phase = Phase::free;
    std::string client_order_id;
    std::string payload;  // the encoded request, sent on every attempt
    int attempt = 0;      // 0: the first
    std::int64_t until_ns = 0;
    bool stop_seen = false;
    std::optional<proto::OrderReply> answer;
  };

  // Sends the flight's request: true when the socket took it (the flight
  // then waits for its answer).
  bool send(Flight& f, std::int64_t now);
  // An attempt: sent now, or as soon as the socket can take it.
  void attempt(Flight& f, std::int64_t now);
  // The attempt failed (no answer in time, or none could be sent): the next
  // one after its back-off, or none when they are spent, held or stopped.
  void next_attempt(Flight& f, std::int64_t now);
  void settle(Flight& f, std::optional<proto::OrderReply> answer);
  // Timeouts, back-offs and the stop flag at `now`.
  void advance(Flight& f, std::int64_t now);
  // Every answer waiting on the socket, each to the flight of its id.
  void receive();
  void open();
  bool stopping() const { return options_.stopping && options_.stopping(); }

  zmq::context_t& ctx_;
  std::string endpoint_;
  OrderClientOptions options_;
  zmq::socket_t socket_;
  proto::Encoder encoder_;
  proto::Decoder decoder_;
  std::vector<Flight> flights_;
  std::size_t in_flight_ = 0;
  zmq::message_t frame_;
  std::uint64_t retries_ = 0;
  std::uint64_t bad_replies_ = 0;
  std::uint64_t late_replies_ = 0;
  std::uint64_t socket_failures_ = 0;
};

}  // namespace tp::executor
