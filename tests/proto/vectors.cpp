// Cross-language test vectors. `proto_vectors write DIR` writes one file per
// message type; `proto_vectors check DIR` decodes the files a Python peer
// wrote (py_<type>.bin) and exits non-zero unless each equals the expected
// message. Both sides use the same expected values (expected_messages).
// `proto_vectors schema` prints the C++ wire schema (messages.hpp) as JSON,
// which test_schema.py holds scripts/tp_proto.py and docs/PROTOCOL.md to.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>

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
const tp::proto::DeadLetter dead_letter{"strategy:1", "malformed", "truncated msgpack", 5,
                                        std::string("\x00\xc1\xff", 3)};
const tp::proto::PositionQuery position_query{"USDJPY", 1700000000000000400};
const tp::proto::PositionReply position_reply{"USDJPY", true, -2500.5, "", 1700000000000000500};
const tp::proto::StrategyPosition strategy_position{"trend", "EURUSD", -1500.25, 1700000000000000600};

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

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "schema") {
    print_schemas(std::cout, tp::proto::AllMessages{});
    return 0;
  }
  if (argc != 3) {
    std::cerr << "usage: proto_vectors write|check DIR | proto_vectors schema\n";
    return 2;
  }
  std::string mode = argv[1], dir = argv[2];
  if (mode == "write") {
    tp::proto::Encoder e;
    bool ok = write_file(dir + "/cpp_tick.bin", e.encode(tick)) &&
              write_file(dir + "/cpp_heartbeat.bin", e.encode(heartbeat)) &&
              write_file(dir + "/cpp_signal.bin", e.encode(signal)) &&
              write_file(dir + "/cpp_order_request.bin", e.encode(request)) &&
              write_file(dir + "/cpp_order_query.bin", e.encode(query)) &&
              write_file(dir + "/cpp_order_reply.bin", e.encode(reply)) &&
              write_file(dir + "/cpp_order_event.bin", e.encode(event)) &&
              write_file(dir + "/cpp_signal_ack.bin", e.encode(ack)) &&
              write_file(dir + "/cpp_dead_letter.bin", e.encode(dead_letter)) &&
              write_file(dir + "/cpp_position_query.bin", e.encode(position_query)) &&
              write_file(dir + "/cpp_position_reply.bin", e.encode(position_reply)) &&
              write_file(dir + "/cpp_strategy_position.bin", e.encode(strategy_position));
    return ok ? 0 : 1;
  }
  if (mode == "check") {
    bool ok = true;
    ok &= check(dir, "tick", tick, &tp::proto::Decoder::decode_tick);
    ok &= check(dir, "heartbeat", heartbeat, &tp::proto::Decoder::decode_heartbeat);
    ok &= check(dir, "signal", signal, &tp::proto::Decoder::decode_signal);
    ok &= check(dir, "order_request", request, &tp::proto::Decoder::decode_order_request);
    ok &= check(dir, "order_query", query, &tp::proto::Decoder::decode_order_query);
    ok &= check(dir, "order_reply", reply, &tp::proto::Decoder::decode_order_reply);
    ok &= check(dir, "order_event", event, &tp::proto::Decoder::decode_order_event);
    ok &= check(dir, "signal_ack", ack, &tp::proto::Decoder::decode_signal_ack);
    ok &= check(dir, "dead_letter", dead_letter, &tp::proto::Decoder::decode_dead_letter);
    ok &= check(dir, "position_query", position_query, &tp::proto::Decoder::decode_position_query);
    ok &= check(dir, "position_reply", position_reply, &tp::proto::Decoder::decode_position_reply);
    ok &= check(dir, "strategy_position", strategy_position, &tp::proto::Decoder::decode_strategy_position);
    return ok ? 0 : 1;
  }
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
