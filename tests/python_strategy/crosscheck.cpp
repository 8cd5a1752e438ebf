// The C++ side of the Python runtime's compatibility tests
// (test_python_strategy_unit.py): writes and replays signal journals with
// the C++ SignalJournal, and runs the C++ indicators over a series, so that
// the Python journal and indicators are checked against the real C++ code
// rather than against a description of it; and decodes what the Python
// runtime sends (signals with their terms, cancel requests) with the C++
// decoder, the executor's, and encodes what it reads (a cancel's ack, an
// EXPIRED order event).
//   crosscheck write <journal>     B 1000; S x3; A #1; X #2 (ids g.0.1000.<n>)
//   crosscheck read <journal>      one JSON line: the C++ replay of the file
//   crosscheck compact <journal>   replays, then compacts to the pending signals
//   crosscheck indicators <n>      mids on stdin, one line per mid out:
//                                  sma ema rsi min max (%.17g; ready flags 0/1)
//   crosscheck decode <file>       the payload in <file> (a signal or a cancel
//                                  request) decoded: one JSON line, or
//                                  {"error": "<code: detail>"}
//   crosscheck encode <dir>        writes ack_cancel.bin (a SignalAck with
//                                  cancel = true) and event_expired.bin
//   crosscheck metrics text        MetricsText calls on stdin, one a line (see
//                                  metrics_text()), the exposition out
//   crosscheck metrics values      hex floats on stdin, format_value() of each out
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.hpp"
#include "proto/codec.hpp"
#include "strategy/signal_journal.hpp"
#include "tp/indicators.hpp"

namespace {

tp::proto::TradingSignal signal(int n) {
  tp::proto::TradingSignal s;
  s.signal_id = "g.0.1000." + std::to_string(n);
  s.strategy = "g";
  s.instance = 0;
  s.instrument = "EURUSD";
  s.action = n % 2 ? tp::proto::Side::buy : tp::proto::Side::sell;
  s.quantity = 1000;
  s.trigger_price = 1.085 + n * 1e-5;
  s.confidence = 0.5;
  s.created_ts_ns = 1'700'000'000'000'000'000;
  s.expires_ts_ns = 1'700'000'005'000'000'000;
  s.causation_seq = static_cast<std::uint64_t>(n);
  s.causation_ts_ns = 1'699'999'999'000'000'000;
  return s;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';  // never in what these tests write; kept out of the JSON
      continue;
    }
    out += c;
  }
  return out + "\"";
}

int write(const std::string& path) {
  tp::strategy::SignalJournal j(path);
  tp::proto::Encoder enc;
  bool ok = j.append_boot(1000);
  for (int n = 1; n <= 3; ++n) ok = ok && j.append_signal(enc.encode(signal(n)));
  ok = ok && j.append_acked("g.0.1000.1") && j.append_given_up("g.0.1000.2");
  return ok ? 0 : 1;
}

void print_replay(const tp::strategy::SignalJournal& j) {
  const auto& r = j.replay();
  std::string pending;
  for (const auto& s : r.pending) pending += (pending.empty() ? "" : ",") + json_string(s.signal_id);
  std::string unreadable;
  for (const auto& u : r.unreadable)
    unreadable += (unreadable.empty() ? "" : ",") + std::string("[") + std::to_string(u.offset) + "," +
                  json_string(u.signal_id) + "," + (u.settled ? "true" : "false") + "]";
  std::printf(
      "{\"last_boot_ms\":%lld,\"records\":%llu,\"bad_records\":%llu,\"torn\":%s,\"torn_id\":%s,\"pending\":[%"
      "s],"
      "\"unreadable\":[%s],\"size\":%llu}\n",
      static_cast<long long>(r.last_boot_ms), static_cast<unsigned long long>(r.records),
      static_cast<unsigned long long>(r.bad_records), r.torn_tail ? "true" : "false",
      json_string(r.torn ? r.torn->signal_id : "").c_str(), pending.c_str(), unreadable.c_str(),
      static_cast<unsigned long long>(j.size_bytes()));
}

int indicators(std::size_t n) {
  tp::Sma sma(n);
  tp::Ema ema(n);
  tp::Rsi rsi(n);
  tp::RollingMin lo(n);
  tp::RollingMax hi(n);
  double x = 0;
  while (std::cin >> x) {
    sma.update(x);
    ema.update(x);
    rsi.update(x);
    lo.update(x);
    hi.update(x);
    std::printf("%.17g %.17g %.17g %.17g %.17g %d%d%d%d\n", sma.value(), ema.value(), rsi.value(), lo.value(),
                hi.value(), sma.ready(), ema.ready(), rsi.ready(), lo.ready());
  }
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int decode(const std::string& path) {
  const std::string payload = read_file(path);
  const auto bytes = tp::proto::as_bytes(payload);
  tp::proto::Decoder dec;
  auto type = dec.peek_type(bytes);
  auto fail = [](const tp::proto::DecodeError& e) {
    std::printf("{\"error\":%s}\n", json_string(e.message()).c_str());
    return 0;
  };
  if (!type) return fail(type.error());
  if (type.value() == tp::proto::MsgType::signal) {
    auto s = dec.decode_signal(bytes);
    if (!s) return fail(s.error());
    std::printf(
        "{\"type\":\"signal\",\"signal_id\":%s,\"strategy\":%s,\"instance\":%u,\"instrument\":%s,\"action\":%"
        "d,"
        "\"quantity\":%.17g,\"trigger_price\":%.17g,\"created_ts_ns\":%lld,\"expires_ts_ns\":%lld,"
        "\"order_type\":%d,\"limit_price\":%.17g,\"time_in_force\":%d,\"good_till_ns\":%lld}\n",
        json_string(s->signal_id).c_str(), json_string(s->strategy).c_str(), s->instance,
        json_string(s->instrument).c_str(), static_cast<int>(s->action), s->quantity, s->trigger_price,
        static_cast<long long>(s->created_ts_ns), static_cast<long long>(s->expires_ts_ns),
        static_cast<int>(s->order_type), s->limit_price, static_cast<int>(s->time_in_force),
        static_cast<long long>(s->good_till_ns));
    return 0;
  }
  if (type.value() == tp::proto::MsgType::cancel_request) {
    auto c = dec.decode_cancel_request(bytes);
    if (!c) return fail(c.error());
    std::printf(
        "{\"type\":\"cancel_request\",\"signal_id\":%s,\"strategy\":%s,\"instance\":%u,\"reason\":%s,"
        "\"created_ts_ns\":%lld}\n",
        json_string(c->signal_id).c_str(), json_string(c->strategy).c_str(), c->instance,
        json_string(c->reason).c_str(), static_cast<long long>(c->created_ts_ns));
    return 0;
  }
  std::printf("{\"error\":\"not a signal nor a cancel request\"}\n");
  return 0;
}

int encode(const std::string& dir) {
  tp::proto::SignalAck ack;
  ack.signal_id = "g.0.1000.2";
  ack.status = tp::proto::AckStatus::rejected;
  ack.reason = "order_final";
  ack.ts_ns = 1'700'000'000'000'000'007;
  ack.cancel = true;
  tp::proto::OrderEvent ev;
  ev.order_id = "SIM-000009";
  ev.client_order_id = "C-g.0.1000.3";
  ev.signal_id = "g.0.1000.3";
  ev.instrument = "EURUSD";
  ev.side = tp::proto::Side::sell;
  ev.status = tp::proto::OrderStatus::expired;
  ev.quantity = 1000;
  ev.filled_quantity = 250;
  ev.fill_price = 1.0851;
  ev.reason = "good till time passed";
  ev.created_ts_ns = 1;
  ev.event_ts_ns = 2;
  ev.causation_ts_ns = 3;
  for (const auto& [name, bytes] :
       {std::pair{std::string("ack_cancel.bin"), tp::proto::encode_to_string(ack)},
        std::pair{std::string("event_expired.bin"), tp::proto::encode_to_string(ev)}}) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out << bytes;
    if (!out) return 1;
  }
  return 0;
}

// A word of a metrics line: text as hex (any byte, spaces and newlines
// included), so that a line is split on spaces.
std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// Numbers come as C99 hex floats (exact) or decimal integers.
double hex_double(const std::string& word) { return std::strtod(word.c_str(), nullptr); }

std::vector<double> hex_doubles(const std::string& list) {
  std::vector<double> out;
  std::istringstream in(list);
  for (std::string w; std::getline(in, w, ',');) out.push_back(hex_double(w));
  return out;
}

tp::metrics::Labels hex_labels(const std::vector<std::string>& words, std::size_t from) {
  tp::metrics::Labels labels;
  for (std::size_t i = from; i + 1 < words.size(); i += 2)
    labels.emplace_back(unhex(words[i]), unhex(words[i + 1]));
  return labels;
}

// One call a line, names, helps and labels in hex:
//   common K V ...                          (first line) the common labels
//   counter u|d NAME HELP VALUE K V ...     u: std::uint64_t, d: double
//   gauge u|i|d|b NAME HELP VALUE K V ...   i: std::int64_t, b: bool (0/1)
//   counters NAME HELP LABEL KEY N ...      the bounded-map counters
//   histogram NAME HELP B,B.. C,C.. SUM COUNT K V ...
int metrics_text() {
  std::string line;
  std::vector<std::vector<std::string>> calls;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string word; in >> word;) w.push_back(word);
    if (!w.empty()) calls.push_back(std::move(w));
  }
  tp::metrics::Labels common;
  if (!calls.empty() && calls.front()[0] == "common") common = hex_labels(calls.front(), 1);
  tp::metrics::MetricsText m(common);
  for (const auto& w : calls) {
    if (w[0] == "counter" || w[0] == "gauge") {
      const auto name = unhex(w[2]), help = unhex(w[3]);
      const auto labels = hex_labels(w, 5);
      const char type = w[1][0];
      if (w[0] == "counter" && type == 'u') m.counter(name, help, std::uint64_t{std::stoull(w[4])}, labels);
      if (w[0] == "counter" && type == 'd') m.counter(name, help, hex_double(w[4]), labels);
      if (w[0] == "gauge" && type == 'u') m.gauge(name, help, std::uint64_t{std::stoull(w[4])}, labels);
      if (w[0] == "gauge" && type == 'i') m.gauge(name, help, std::int64_t{std::stoll(w[4])}, labels);
      if (w[0] == "gauge" && type == 'd') m.gauge(name, help, hex_double(w[4]), labels);
      if (w[0] == "gauge" && type == 'b') m.gauge(name, help, w[4] == "1", labels);
    } else if (w[0] == "counters") {
      std::map<std::string, std::uint64_t> by;
      for (std::size_t i = 4; i + 1 < w.size(); i += 2) by[unhex(w[i])] = std::stoull(w[i + 1]);
      m.counters(unhex(w[1]), unhex(w[2]), by, unhex(w[3]));
    } else if (w[0] == "histogram") {
      tp::metrics::HistogramSample h{hex_doubles(w[3]), {}, hex_double(w[5]), std::stoull(w[6])};
      for (double c : hex_doubles(w[4])) h.cumulative_counts.push_back(static_cast<std::uint64_t>(c));
      m.histogram(unhex(w[1]), unhex(w[2]), h, hex_labels(w, 7));
    }
  }
  std::cout << m.str();
  return 0;
}

int metrics_values() {
  for (std::string word; std::cin >> word;) std::cout << tp::metrics::format_value(hex_double(word)) << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() != 2) {
    std::fprintf(
        stderr,
        "usage: crosscheck write|read|compact <journal> | indicators <n> | decode <file> | encode <dir> | "
        "metrics text|values\n");
    return 2;
  }
  try {
    if (args[0] == "write") return write(args[1]);
    if (args[0] == "indicators") return indicators(std::stoul(args[1]));
    if (args[0] == "decode") return decode(args[1]);
    if (args[0] == "encode") return encode(args[1]);
    if (args[0] == "metrics") return args[1] == "text" ? metrics_text() : metrics_values();
    tp::strategy::SignalJournal j(args[1], tp::strategy::SignalJournal::default_compact_bytes,
                                  tp::strategy::SignalJournal::Mode::adopt);
    if (args[0] == "compact") {
      std::vector<std::string_view> payloads(j.replay().pending_payloads.begin(),
                                             j.replay().pending_payloads.end());
      if (!j.compact(j.replay().last_boot_ms, payloads)) return 1;
    }
    print_replay(j);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crosscheck: %s\n", e.what());
    return 1;
  }
}
