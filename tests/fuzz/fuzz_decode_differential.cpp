// Differential fuzz target: the fast in-place decoder against the reference
// (msgpack-object) decoder, for every message type and peek_type. Any
// difference in value, error code or detail aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "proto/codec.hpp"

template <class T>
static void check(const char* name, tp::proto::Result<T> (tp::proto::Decoder::*fn)(tp::proto::Bytes),
                  tp::proto::Bytes b) {
  static tp::proto::Decoder fast;
  static tp::proto::Decoder ref(tp::proto::DecodePath::reference);
  auto a = (fast.*fn)(b);
  auto r = (ref.*fn)(b);
  bool same = a.ok() == r.ok() &&
              (a.ok() ? a.value() == r.value()
                      : (a.error().code == r.error().code && a.error().detail == r.error().detail));
  if (!same) {
    std::fprintf(stderr, "%s differs: fast=%s ref=%s\n", name, a.ok() ? "ok" : a.error().message().c_str(),
                 r.ok() ? "ok" : r.error().message().c_str());
    std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tp::proto::Bytes b{reinterpret_cast<const std::byte*>(data), size};
  static tp::proto::Decoder fast;
  static tp::proto::Decoder ref(tp::proto::DecodePath::reference);
  auto pa = fast.peek_type(b);
  auto pr = ref.peek_type(b);
  if (pa.ok() != pr.ok() ||
      (pa.ok() ? pa.value() != pr.value() : pa.error().message() != pr.error().message()))
    std::abort();
  using D = tp::proto::Decoder;
  check("tick", &D::decode_tick, b);
  check("heartbeat", &D::decode_heartbeat, b);
  check("signal", &D::decode_signal, b);
  check("order_request", &D::decode_order_request, b);
  check("order_query", &D::decode_order_query, b);
  check("order_reply", &D::decode_order_reply, b);
  check("order_event", &D::decode_order_event, b);
  check("signal_ack", &D::decode_signal_ack, b);
  check("dead_letter", &D::decode_dead_letter, b);
  check("position_query", &D::decode_position_query, b);
  check("position_reply", &D::decode_position_reply, b);
  check("strategy_position", &D::decode_strategy_position, b);
  check("cancel_request", &D::decode_cancel_request, b);
  check("order_cancel", &D::decode_order_cancel, b);
  check("execution_report", &D::decode_execution_report, b);
  check("report_query", &D::decode_report_query, b);
  check("report_batch", &D::decode_report_batch, b);
  check("open_orders_query", &D::decode_open_orders_query, b);
  check("portfolio_event", &D::decode_portfolio_event, b);
  check("instrument_pnl", &D::decode_instrument_pnl, b);
  check("control_request", &D::decode_control_request, b);
  check("control_reply", &D::decode_control_reply, b);
  return 0;
}
