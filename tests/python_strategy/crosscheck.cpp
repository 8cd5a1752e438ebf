// The C++ side of the Python runtime's compatibility tests
// (test_python_strategy_unit.py): writes and replays signal journals with
// the C++ SignalJournal, and runs the C++ indicators over a series, so that
// the Python journal and indicators are checked against the real C++ code
// rather than against a description of it.
//   crosscheck write <journal>     B 1000; S x3; A #1; X #2 (ids g.0.1000.<n>)
//   crosscheck read <journal>      one JSON line: the C++ replay of the file
//   crosscheck compact <journal>   replays, then compacts to the pending signals
//   crosscheck indicators <n>      mids on stdin, one line per mid out:
//                                  sma ema rsi min max (%.17g; ready flags 0/1)
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

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

std::string json_string(const std::string& s) { return "\"" + s + "\""; }

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

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: crosscheck write|read|compact <journal> | indicators <n>\n");
    return 2;
  }
  try {
    if (args[0] == "write") return write(args[1]);
    if (args[0] == "indicators") return indicators(std::stoul(args[1]));
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
