// Cross-language test vectors. `proto_vectors write DIR` writes one file per
// message type (and per variant: cpp_<name>.bin); `proto_vectors check DIR`
// decodes the files a Python peer wrote (py_<name>.bin) and exits non-zero
// unless each equals the expected message. Both sides hold the same expected
// values (here and in test_vectors.py). `proto_vectors decode DIR` decodes
// every refuse_*.bin in DIR by its type number and prints "<file>: ok" or
// "<file>: <code>: <detail>", so that test_vectors.py can hold the C++
// refusals to the ones the protocol page names.
// `proto_vectors schema` prints the C++ wire schema (messages.hpp; with each
// enum field's accepted values and their names) as JSON,
// which test_schema.py holds scripts/tp_proto.py and docs/PROTOCOL.md to.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "proto/codec.hpp"

namespace {

// Values chosen to catch mix-ups: every field distinct, fractional prices,
// whole-number doubles (written as ints by msgpack-c), negative and large ints.
const tp::proto::TickEvent tick{"EURUSD",           1.08501, 1.08512, 1500000, 2.5, 1700000000123456789, 42,
                                1700000000123999999};
const tp::proto::Heartbeat heartbeat{"gateway", 7, 1700000000000000001, 123456};
const tp::proto::TradingSignal signal{"sma_crossover.1.1700000000000.17",
                                      "sma_crossover",
                                      1,
                                      "GBPUSD",
                                      tp::proto::Side::sell,
                                      1000,
                                      1.26543,
                                      0.625,
                                      1700000000000000000,
                                      1700000005000000000,
                                      99,
                                      1699999999999999000};
const tp::proto::OrderRequest request{"C-sma_crossover.1.1700000000000.17",
                                      "sma_crossover.1.1700000000000.17",
                                      "GBPUSD",
                                      tp::proto::Side::sell,
                                      1000,
                                      1.26543,
                                      1700000000000000100,
                                      1700000005000000000};
const tp::proto::OrderQuery query{"C-x.0.1.2", -1};
const tp::proto::OrderReply reply{"C-x.0.1.2",
                                  "SIM-000017",
                                  tp::proto::OrderStatus::partially_filled,
                                  250.5,
                                  151.234,
                                  "remainder canceled (IOC)",
                                  true,
                                  1700000000000000200};
const tp::proto::OrderEvent event{"SIM-000017",
                                  "C-x.0.1.2",
                                  "x.0.1.2",
                                  "USDJPY",
                                  tp::proto::Side::buy,
                                  tp::proto::OrderStatus::filled,
                                  1000,
                                  1000,
                                  151.234,
                                  "",
                                  1,
                                  2,
                                  3};
const tp::proto::SignalAck ack{"x.0.1.2", tp::proto::AckStatus::rejected, "expired", 1700000000000000300};
// A letter its sender may send again (the executor's refusal of a signal):
// keyed; one sent once (a strategy's malformed tick): no key.
const tp::proto::DeadLetter dead_letter{.source = "executor",
                                        .reason = "trading_halted",
                                        .detail = "signal x.0.1.2: trading halted",
                                        .ts_ns = 5,
                                        .original = std::string("\x00\xc1\xff", 3),
                                        .key = "signal/x.0.1.2"};
const tp::proto::DeadLetter dead_letter_without_key{"strategy:1", "malformed", "truncated msgpack", 5,
                                                    std::string("\x00\xc1\xff", 3)};
const tp::proto::PositionQuery position_query{"USDJPY", 1700000000000000400};
const tp::proto::PositionReply position_reply{"USDJPY", true, -2500.5, "", 1700000000000000500};
const tp::proto::StrategyPosition strategy_position{"trend", "EURUSD", -1500.25, 1700000000000000600};

// Orders with a life: the signal above as an older sender sends it (no terms:
// market IOC) and with LIMIT/GTD terms; the request with LIMIT/GTC terms.
const tp::proto::TradingSignal signal_without_terms = signal;
tp::proto::TradingSignal with_terms(tp::proto::TradingSignal s) {
  s.order_type = tp::proto::OrderType::limit;
  s.limit_price = 1.2655;
  s.time_in_force = tp::proto::TimeInForce::gtd;
  s.good_till_ns = 1700000060000000000;
  return s;
}
const tp::proto::TradingSignal signal_with_terms = with_terms(signal);
tp::proto::OrderRequest with_terms(tp::proto::OrderRequest r) {
  r.set_terms({tp::proto::OrderType::limit, 1.2655, tp::proto::TimeInForce::gtc, 0});
  return r;
}
const tp::proto::OrderRequest request_with_terms = with_terms(request);
// The keyed letter above as a sender older than the key writes it.
tp::proto::DeadLetter without_key(tp::proto::DeadLetter d) {
  d.key.clear();
  return d;
}
const tp::proto::DeadLetter dead_letter_without_key_field = without_key(dead_letter);
const tp::proto::SignalAck cancel_ack{"x.0.1.2", tp::proto::AckStatus::rejected, "order_final",
                                      1700000000000000650, true};
const tp::proto::CancelRequest cancel_request{.signal_id = "trend.1.1700000000000.5",
                                              .strategy = "trend",
                                              .instance = 1,
                                              .reason = "price moved away",
                                              .created_ts_ns = 1700000000000000700};
const tp::proto::OrderCancel order_cancel{.client_order_id = "C-trend.1.1700000000000.5",
                                          .reason = "price moved away",
                                          .sent_ts_ns = 1700000000000000800};
// A partial fill matched on the tick above, then the rest expiring.
const tp::proto::ExecutionReport report_fill{.stream = "dg.1700000000000",
                                             .seq = 41,
                                             .client_order_id = "C-trend.1.1700000000000.5",
                                             .order_id = "SIM-000042",
                                             .instrument = "EURUSD",
                                             .side = tp::proto::Side::buy,
                                             .status = tp::proto::OrderStatus::partially_filled,
                                             .quantity = 1000,
                                             .last_quantity = 250.5,
                                             .last_price = 1.08512,
                                             .filled_quantity = 750.5,
                                             .avg_price = 1.085105,
                                             .reason = "",
                                             .broker_ts_ns = 1700000000000000900,
                                             .ts_ns = 1700000000000000950,
                                             .quote_seq = 42,
                                             .quote_ts_ns = 1700000000123999999};
const tp::proto::ExecutionReport report_expiry{.stream = "dg.1700000000000",
                                               .seq = 42,
                                               .client_order_id = "C-trend.1.1700000000000.5",
                                               .order_id = "SIM-000042",
                                               .instrument = "EURUSD",
                                               .side = tp::proto::Side::buy,
                                               .status = tp::proto::OrderStatus::expired,
                                               .quantity = 1000,
                                               .last_quantity = 0,
                                               .last_price = 0,
                                               .filled_quantity = 750.5,
                                               .avg_price = 1.085105,
                                               .reason = "good till time passed",
                                               .broker_ts_ns = 1700000060000000000,
                                               .ts_ns = 1700000060000000050,
                                               .quote_seq = 0,
                                               .quote_ts_ns = 0};
const tp::proto::ReportQuery report_query{.from_seq = 41, .max_count = 256, .sent_ts_ns = -7};
const tp::proto::OpenOrdersQuery open_orders_query{.offset = 64, .sent_ts_ns = 1700000000000001000};
// The reports' bytes differ between encoders (msgpack-c writes whole doubles
// as integers), so a batch is compared field by field and by its unpacked
// reports.
tp::proto::ReportBatch make_batch() {
  tp::proto::ReportBatch b{.stream = "dg.1700000000000",
                           .last_seq = 42,
                           .count = 0,
                           .complete = false,
                           .reports = "",
                           .reason = "",
                           .ts_ns = 1700000000000001100};
  tp::proto::append_report(b, tp::proto::encode_to_string(report_fill));
  tp::proto::append_report(b, tp::proto::encode_to_string(report_expiry));
  return b;
}
const tp::proto::ReportBatch report_batch = make_batch();

// Trading controls and the portfolio: a USD account with a short USDJPY
// position whose yen PnL converts at 1 / the USDJPY mid, in REDUCING.
const tp::proto::InstrumentPnl instrument_pnl{.instrument = "USDJPY",
                                              .quote_currency = "JPY",
                                              .position = -2500,
                                              .avg_price = 151.234,
                                              .mark_price = 151.25,
                                              .realized_pnl = 12345.5,
                                              .unrealized_pnl = -40,
                                              .rate_to_account = 0.006611570247933884,
                                              .realized_account = 81.62314049586777,
                                              .unrealized_account = -0.2644628099173554,
                                              .ts_ns = 1700000000000001200};
const tp::proto::PortfolioEvent portfolio_event{.account_currency = "USD",
                                                .equity = 1000250,
                                                .realized_pnl = 331.25,
                                                .unrealized_pnl = -81.25,
                                                .daily_pnl = -1250.75,
                                                .day_start_ns = 1699920000000000000,
                                                .complete = false,
                                                .state = tp::proto::TradingState::reducing,
                                                .open_orders = 70000,
                                                .ts_ns = 1700000000000001200};
const tp::proto::ControlRequest control_request{.command = tp::proto::ControlCommand::flatten,
                                                .reason = "spread blew out",
                                                .sent_by = "tpctl:alice@host",
                                                .sent_ts_ns = 1700000000000001300};
const tp::proto::ControlReply control_reply{.ok = true,
                                            .state = tp::proto::TradingState::reducing,
                                            .cause = "FLATTEN by tpctl:alice@host: spread blew out",
                                            .since_ns = 1700000000000001350,
                                            .flatten_pending = true,
                                            .open_orders = 3,
                                            .detail = "",
                                            .ts_ns = 1700000000000001400};
// A command not applied: the state as it was, and why.
const tp::proto::ControlReply control_reply_refused{.ok = false,
                                                    .state = tp::proto::TradingState::halted,
                                                    .cause = "open_orders_mismatch: C-x.0.1.2",
                                                    .since_ns = -1,
                                                    .flatten_pending = false,
                                                    .open_orders = 0,
                                                    .detail = "not stored: disk I/O error",
                                                    .ts_ns = 1700000000000001500};

template <class M>
void print_schema(std::ostream& out, bool first) {
  out << (first ? "" : ",\n") << "  {\"type\": " << static_cast<unsigned>(M::type) << ", \"name\": \""
      << tp::proto::to_string(M::type) << "\", \"fields\": [";
  bool first_field = true;
  tp::proto::wire::for_each_field<M>([&](const auto& f) {
    using F = std::remove_cvref_t<decltype(f)>;
    out << (first_field ? "" : ", ") << "{\"name\": \"" << f.name << "\", \"type\": \""
        << tp::proto::wire::type_name<F>() << "\", \"optional\": " << (F::optional ? "true" : "false");
    if constexpr (F::kind == tp::proto::wire::Kind::str) out << ", \"max_len\": " << f.max_len;
    if constexpr (F::kind == tp::proto::wire::Kind::enumeration) {
      // Every value a reader accepts, with its name: {"1": "BUY", ...}.
      using E = typename F::value_type;
      using Info = tp::proto::wire::EnumInfo<E>;
      out << ", \"values\": {";
      for (auto v = Info::lo; v <= Info::hi; ++v)
        out << (v == Info::lo ? "" : ", ") << "\"" << v << "\": \"" << tp::proto::to_string(static_cast<E>(v))
            << "\"";
      out << "}";
    }
    out << "}";
    first_field = false;
  });
  out << "]}";
}

template <class... M>
void print_schemas(std::ostream& out, tp::proto::MessageList<M...>) {
  out << "{\"schema_version\": " << tp::proto::schema_version << ", \"messages\": [\n";
  bool first = true;
  ((print_schema<M>(out, first), first = false), ...);
  out << "\n]}\n";
}

bool write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class T, class F>
bool check(const std::string& dir, const char* name, const T& expected, F decode) {
  auto bytes = read_file(dir + "/py_" + name + ".bin");
  tp::proto::Decoder dec;
  auto r = (dec.*decode)(tp::proto::as_bytes(bytes));
  if (!r.ok()) {
    std::cerr << name << ": " << r.error().message() << "\n";
    return false;
  }
  if (!(r.value() == expected)) {
    std::cerr << name << ": decoded value differs from the expected one\n";
    return false;
  }
  std::cout << name << ": ok\n";
  return true;
}

bool check_batch(const std::string& dir) {
  auto bytes = read_file(dir + "/py_report_batch.bin");
  tp::proto::Decoder dec;
  auto r = dec.decode_report_batch(tp::proto::as_bytes(bytes));
  if (!r.ok()) {
    std::cerr << "report_batch: " << r.error().message() << "\n";
    return false;
  }
  auto got = r.value();
  auto reports = tp::proto::unpack_reports(got);
  if (!reports.ok()) {
    std::cerr << "report_batch: reports: " << reports.error().message() << "\n";
    return false;
  }
  got.reports = report_batch.reports;
  if (!(got == report_batch) || reports.value() != std::vector{report_fill, report_expiry}) {
    std::cerr << "report_batch: decoded value differs from the expected one\n";
    return false;
  }
  std::cout << "report_batch: ok\n";
  return true;
}

// Decodes `bytes` as the message its type number names; "ok" or the error.
template <class... M>
std::string decode_any(std::string_view bytes, tp::proto::MessageList<M...>) {
  tp::proto::Decoder dec;
  auto type = dec.peek_type(tp::proto::as_bytes(bytes));
  if (!type.ok()) return type.error().message();
  std::string out = "ok";
  auto one = [&](auto msg) {
    if (decltype(msg)::type != type.value()) return;
    if (auto e = dec.decode_into(tp::proto::as_bytes(bytes), msg)) {
      out = e->message();
    } else if constexpr (std::is_same_v<decltype(msg), tp::proto::ReportBatch>) {
      // A batch is only good when its reports are.
      if (auto reports = tp::proto::unpack_reports(msg); !reports.ok()) out = reports.error().message();
    }
  };
  (one(M{}), ...);
  return out;
}

int decode_refusals(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (name.starts_with("refuse_") && name.ends_with(".bin")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names)
    std::cout << name << ": " << decode_any(read_file(dir + "/" + name), tp::proto::AllMessages{}) << "\n";
  return names.empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "schema") {
    print_schemas(std::cout, tp::proto::AllMessages{});
    return 0;
  }
  if (argc != 3) {
    std::cerr << "usage: proto_vectors write|check|decode DIR | proto_vectors schema\n";
    return 2;
  }
  std::string mode = argv[1], dir = argv[2];
  if (mode == "write") {
    tp::proto::Encoder e;
    bool ok = write_file(dir + "/cpp_tick.bin", e.encode(tick)) &&
              write_file(dir + "/cpp_heartbeat.bin", e.encode(heartbeat)) &&
              write_file(dir + "/cpp_signal.bin", e.encode(signal_with_terms)) &&
              write_file(dir + "/cpp_order_request.bin", e.encode(request_with_terms)) &&
              write_file(dir + "/cpp_order_query.bin", e.encode(query)) &&
              write_file(dir + "/cpp_order_reply.bin", e.encode(reply)) &&
              write_file(dir + "/cpp_order_event.bin", e.encode(event)) &&
              write_file(dir + "/cpp_signal_ack.bin", e.encode(ack)) &&
              write_file(dir + "/cpp_dead_letter.bin", e.encode(dead_letter)) &&
              write_file(dir + "/cpp_position_query.bin", e.encode(position_query)) &&
              write_file(dir + "/cpp_position_reply.bin", e.encode(position_reply)) &&
              write_file(dir + "/cpp_strategy_position.bin", e.encode(strategy_position)) &&
              write_file(dir + "/cpp_signal_ack_cancel.bin", e.encode(cancel_ack)) &&
              write_file(dir + "/cpp_cancel_request.bin", e.encode(cancel_request)) &&
              write_file(dir + "/cpp_order_cancel.bin", e.encode(order_cancel)) &&
              write_file(dir + "/cpp_execution_report.bin", e.encode(report_fill)) &&
              write_file(dir + "/cpp_report_query.bin", e.encode(report_query)) &&
              write_file(dir + "/cpp_open_orders_query.bin", e.encode(open_orders_query)) &&
              write_file(dir + "/cpp_report_batch.bin", e.encode(report_batch)) &&
              write_file(dir + "/cpp_portfolio_event.bin", e.encode(portfolio_event)) &&
              write_file(dir + "/cpp_instrument_pnl.bin", e.encode(instrument_pnl)) &&
              write_file(dir + "/cpp_control_request.bin", e.encode(control_request)) &&
              write_file(dir + "/cpp_control_reply.bin", e.encode(control_reply)) &&
              write_file(dir + "/cpp_control_reply_refused.bin", e.encode(control_reply_refused));
    // An unkeyed letter; older senders' messages as C++ writes them (optional
    // fields at their defaults).
    ok = ok && write_file(dir + "/cpp_dead_letter_without_key.bin", e.encode(dead_letter_without_key)) &&
         write_file(dir + "/cpp_signal_without_terms.bin", e.encode(signal_without_terms)) &&
         write_file(dir + "/cpp_dead_letter_without_key_field.bin", e.encode(dead_letter_without_key_field));
    return ok ? 0 : 1;
  }
  if (mode == "check") {
    bool ok = true;
    ok &= check(dir, "tick", tick, &tp::proto::Decoder::decode_tick);
    ok &= check(dir, "heartbeat", heartbeat, &tp::proto::Decoder::decode_heartbeat);
    ok &= check(dir, "signal", signal_with_terms, &tp::proto::Decoder::decode_signal);
    ok &= check(dir, "signal_without_terms", signal_without_terms, &tp::proto::Decoder::decode_signal);
    ok &= check(dir, "order_request", request_with_terms, &tp::proto::Decoder::decode_order_request);
    ok &= check(dir, "order_query", query, &tp::proto::Decoder::decode_order_query);
    ok &= check(dir, "order_reply", reply, &tp::proto::Decoder::decode_order_reply);
    ok &= check(dir, "order_event", event, &tp::proto::Decoder::decode_order_event);
    ok &= check(dir, "signal_ack", ack, &tp::proto::Decoder::decode_signal_ack);
    ok &= check(dir, "dead_letter", dead_letter, &tp::proto::Decoder::decode_dead_letter);
    ok &= check(dir, "dead_letter_without_key", dead_letter_without_key,
                &tp::proto::Decoder::decode_dead_letter);
    ok &= check(dir, "dead_letter_without_key_field", dead_letter_without_key_field,
                &tp::proto::Decoder::decode_dead_letter);
    ok &= check(dir, "position_query", position_query, &tp::proto::Decoder::decode_position_query);
    ok &= check(dir, "position_reply", position_reply, &tp::proto::Decoder::decode_position_reply);
    ok &= check(dir, "strategy_position", strategy_position, &tp::proto::Decoder::decode_strategy_position);
    ok &= check(dir, "signal_ack_cancel", cancel_ack, &tp::proto::Decoder::decode_signal_ack);
    ok &= check(dir, "cancel_request", cancel_request, &tp::proto::Decoder::decode_cancel_request);
    ok &= check(dir, "order_cancel", order_cancel, &tp::proto::Decoder::decode_order_cancel);
    ok &= check(dir, "execution_report", report_fill, &tp::proto::Decoder::decode_execution_report);
    ok &= check(dir, "report_query", report_query, &tp::proto::Decoder::decode_report_query);
    ok &= check(dir, "open_orders_query", open_orders_query, &tp::proto::Decoder::decode_open_orders_query);
    ok &= check_batch(dir);
    ok &= check(dir, "portfolio_event", portfolio_event, &tp::proto::Decoder::decode_portfolio_event);
    ok &= check(dir, "instrument_pnl", instrument_pnl, &tp::proto::Decoder::decode_instrument_pnl);
    ok &= check(dir, "control_request", control_request, &tp::proto::Decoder::decode_control_request);
    ok &= check(dir, "control_reply", control_reply, &tp::proto::Decoder::decode_control_reply);
    ok &=
        check(dir, "control_reply_refused", control_reply_refused, &tp::proto::Decoder::decode_control_reply);
    return ok ? 0 : 1;
  }
  if (mode == "decode") {
    return decode_refusals(dir);
  }
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
