#include "proto/messages.hpp"

namespace tp::proto {

std::string_view to_string(MsgType t) noexcept {
  switch (t) {
    case MsgType::tick:
      return "tick";
    case MsgType::heartbeat:
      return "heartbeat";
    case MsgType::signal:
      return "signal";
    case MsgType::order_request:
      return "order_request";
    case MsgType::order_query:
      return "order_query";
    case MsgType::order_reply:
      return "order_reply";
    case MsgType::order_event:
      return "order_event";
    case MsgType::signal_ack:
      return "signal_ack";
    case MsgType::dead_letter:
      return "dead_letter";
    case MsgType::position_query:
      return "position_query";
    case MsgType::position_reply:
      return "position_reply";
    case MsgType::strategy_position:
      return "strategy_position";
    case MsgType::cancel_request:
      return "cancel_request";
    case MsgType::order_cancel:
      return "order_cancel";
    case MsgType::execution_report:
      return "execution_report";
    case MsgType::report_query:
      return "report_query";
    case MsgType::report_batch:
      return "report_batch";
    case MsgType::open_orders_query:
      return "open_orders_query";
    case MsgType::portfolio_event:
      return "portfolio_event";
    case MsgType::instrument_pnl:
      return "instrument_pnl";
    case MsgType::control_request:
      return "control_request";
    case MsgType::control_reply:
      return "control_reply";
  }
  return "?";
}

std::string_view to_string(Side s) noexcept {
  switch (s) {
    case Side::buy:
      return "BUY";
    case Side::sell:
      return "SELL";
  }
  return "?";
}

std::string_view to_string(OrderStatus s) noexcept {
  switch (s) {
    case OrderStatus::new_order:
      return "NEW";
    case OrderStatus::accepted:
      return "ACCEPTED";
    case OrderStatus::partially_filled:
      return "PARTIALLY_FILLED";
    case OrderStatus::filled:
      return "FILLED";
    case OrderStatus::rejected:
      return "REJECTED";
    case OrderStatus::canceled:
      return "CANCELED";
    case OrderStatus::unknown:
      return "UNKNOWN";
    case OrderStatus::expired:
      return "EXPIRED";
  }
  return "?";
}

std::string_view to_string(OrderType t) noexcept {
  switch (t) {
    case OrderType::market:
      return "MARKET";
    case OrderType::limit:
      return "LIMIT";
  }
  return "?";
}

std::string_view to_string(TimeInForce t) noexcept {
  switch (t) {
    case TimeInForce::ioc:
      return "IOC";
    case TimeInForce::gtc:
      return "GTC";
    case TimeInForce::gtd:
      return "GTD";
  }
  return "?";
}

std::string_view to_string(TradingState s) noexcept {
  switch (s) {
    case TradingState::active:
      return "ACTIVE";
    case TradingState::reducing:
      return "REDUCING";
    case TradingState::halted:
      return "HALTED";
  }
  return "?";
}

std::string_view to_string(ControlCommand c) noexcept {
  switch (c) {
    case ControlCommand::status:
      return "STATUS";
    case ControlCommand::halt:
      return "HALT";
    case ControlCommand::reduce:
      return "REDUCE";
    case ControlCommand::flatten:
      return "FLATTEN";
    case ControlCommand::resume:
      return "RESUME";
  }
  return "?";
}

std::string_view to_string(AckStatus s) noexcept {
  switch (s) {
    case AckStatus::accepted:
      return "ACCEPTED";
    case AckStatus::duplicate:
      return "DUPLICATE";
    case AckStatus::rejected:
      return "REJECTED";
  }
  return "?";
}

bool is_final(OrderStatus s) noexcept {
  return s == OrderStatus::filled || s == OrderStatus::rejected || s == OrderStatus::canceled ||
         s == OrderStatus::expired;
}

std::string report_topic(std::string_view instrument) {
  std::string t(report_topic_prefix);
  t += instrument;
  return t;
}

std::string pnl_topic(std::string_view instrument) {
  std::string t(pnl_topic_prefix);
  t += instrument;
  return t;
}

std::string tick_topic(std::string_view instrument) {
  std::string t(tick_topic_prefix);
  t += instrument;
  return t;
}

std::string order_topic(std::string_view instrument) {
  std::string t(order_topic_prefix);
  t += instrument;
  return t;
}

std::string ack_topic(std::string_view strategy, std::uint32_t instance) {
  std::string t(ack_topic_prefix);
  t += strategy;
  t += '.';
  t += std::to_string(instance);
  return t;
}

std::string position_topic(std::string_view strategy) {
  std::string t(position_topic_prefix);
  t += strategy;
  return t;
}

}  // namespace tp::proto
