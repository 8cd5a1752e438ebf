// Builders for the messages tests send: a signal, an order request and a
// tick, each with plain defaults (EURUSD, buy, fixed prices, zero stamps) and
// a setter per field a test varies, so a test names only what matters to it:
//   auto s = a_signal("sma.1.1.1").side(proto::Side::sell).quantity(50).build();
// Header only; values, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "proto/messages.hpp"

namespace tp::test {

class SignalBuilder {
 public:
  explicit SignalBuilder(std::string id) {
    s_.signal_id = std::move(id);
    s_.strategy = "sma";
    s_.instance = 1;
    s_.instrument = "EURUSD";
    s_.action = proto::Side::buy;
    s_.quantity = 100;
    s_.trigger_price = 1.1;
  }
  SignalBuilder& strategy(std::string v) {
    s_.strategy = std::move(v);
    return *this;
  }
  SignalBuilder& instance(std::uint32_t v) {
    s_.instance = v;
    return *this;
  }
  SignalBuilder& instrument(std::string v) {
    s_.instrument = std::move(v);
    return *this;
  }
  SignalBuilder& side(proto::Side v) {
    s_.action = v;
    return *this;
  }
  SignalBuilder& quantity(double v) {
    s_.quantity = v;
    return *this;
  }
  SignalBuilder& price(double v) {
    s_.trigger_price = v;
    return *this;
  }
  SignalBuilder& confidence(double v) {
    s_.confidence = v;
    return *this;
  }
  SignalBuilder& created_ns(std::int64_t v) {
    s_.created_ts_ns = v;
    return *this;
  }
  SignalBuilder& expires_ns(std::int64_t v) {
    s_.expires_ts_ns = v;
    return *this;
  }
  SignalBuilder& causation(std::uint64_t seq, std::int64_t ts_ns) {
    s_.causation_seq = seq;
    s_.causation_ts_ns = ts_ns;
    return *this;
  }
  SignalBuilder& causation_ns(std::int64_t ts_ns) {
    s_.causation_ts_ns = ts_ns;
    return *this;
  }
  proto::TradingSignal build() const { return s_; }
  operator proto::TradingSignal() const {
    return s_;
  }  // NOLINT(google-explicit-constructor): reads as a value

 private:
  proto::TradingSignal s_;
};

// An order request: client_order_id `id`, signal_id "sig-<id>", 1000 EURUSD buy.
class OrderBuilder {
 public:
  explicit OrderBuilder(std::string id) {
    o_.signal_id = "sig-" + id;
    o_.client_order_id = std::move(id);
    o_.instrument = "EURUSD";
    o_.side = proto::Side::buy;
    o_.quantity = 1000;
  }
  OrderBuilder& signal_id(std::string v) {
    o_.signal_id = std::move(v);
    return *this;
  }
  OrderBuilder& instrument(std::string v) {
    o_.instrument = std::move(v);
    return *this;
  }
  OrderBuilder& side(proto::Side v) {
    o_.side = v;
    return *this;
  }
  OrderBuilder& quantity(double v) {
    o_.quantity = v;
    return *this;
  }
  OrderBuilder& price_hint(double v) {
    o_.price_hint = v;
    return *this;
  }
  OrderBuilder& sent_ns(std::int64_t v) {
    o_.sent_ts_ns = v;
    return *this;
  }
  OrderBuilder& expires_ns(std::int64_t v) {
    o_.expires_ts_ns = v;
    return *this;
  }
  proto::OrderRequest build() const { return o_; }
  operator proto::OrderRequest() const { return o_; }  // NOLINT(google-explicit-constructor)

 private:
  proto::OrderRequest o_;
};

// A tick: `instrument` at `seq`, a one-pip spread around `mid`, 1e6 each side.
class TickBuilder {
 public:
  TickBuilder(std::string instrument, std::uint64_t seq, double mid = 1.085) {
    t_.instrument = std::move(instrument);
    t_.seq = seq;
    this->mid(mid);
    t_.bid_volume = 1e6;
    t_.ask_volume = 1e6;
  }
  TickBuilder& mid(double v) {
    t_.bid = v - 0.00005;
    t_.ask = v + 0.00005;
    return *this;
  }
  TickBuilder& bid_ask(double bid, double ask) {
    t_.bid = bid;
    t_.ask = ask;
    return *this;
  }
  TickBuilder& source_ns(std::int64_t v) {
    t_.source_ts_ns = v;
    return *this;
  }
  TickBuilder& gateway_ns(std::int64_t v) {
    t_.gateway_ts_ns = v;
    return *this;
  }
  TickBuilder& stamped(std::int64_t ns) {  // both stamps, as a live gateway sets them
    t_.source_ts_ns = ns;
    t_.gateway_ts_ns = ns;
    return *this;
  }
  proto::TickEvent build() const { return t_; }
  operator proto::TickEvent() const { return t_; }  // NOLINT(google-explicit-constructor)

 private:
  proto::TickEvent t_;
};

inline SignalBuilder a_signal(std::string id) { return SignalBuilder(std::move(id)); }
inline OrderBuilder an_order(std::string id) { return OrderBuilder(std::move(id)); }
inline TickBuilder a_tick(std::string instrument, std::uint64_t seq, double mid = 1.085) {
  return TickBuilder(std::move(instrument), seq, mid);
}

}  // namespace tp::test
