#include "raw_traffic.hpp"

#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "common/clock.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"

namespace tp::bench {

std::string tick_payload(const std::string& symbol, std::uint64_t seq) {
  proto::TickEvent t{symbol, 1.08501, 1.08512, 1'500'000, 2'300'000, tp::wall_ns(), seq, tp::wall_ns()};
  return proto::encode_to_string(t);
}

RawPacer::RawPacer(double rate) : rate_(rate), start_(tp::monotonic_ns()) {}

std::uint64_t RawPacer::due(std::uint64_t sent) {
  if (rate_ <= 0) return 1024;
  const double elapsed = static_cast<double>(tp::monotonic_ns() - start_) / 1e9;
  const auto target = static_cast<std::uint64_t>(elapsed * rate_) + 1;
  const std::uint64_t n = target > sent ? target - sent : 0;
  if (n == 0) {
    const auto next_ns = start_ + static_cast<std::int64_t>(static_cast<double>(sent) / rate_ * 1e9);
    const auto wait = next_ns - tp::monotonic_ns();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
  }
  return std::min<std::uint64_t>(n, 1024);
}

CurveKeys CurveKeys::make() {
  char sp[41], ss[41], cp[41], cs[41];
  if (zmq_curve_keypair(sp, ss) != 0 || zmq_curve_keypair(cp, cs) != 0)
    throw std::runtime_error("zmq_curve_keypair failed (libzmq without CURVE?)");
  return {sp, ss, cp, cs};
}

}  // namespace tp::bench
