// What the raw libzmq baselines send and how fast: real encoded payloads of
// the programs' sizes, a pacer that batches like the gateway's, and CURVE
// key pairs. Thread-safe except RawPacer, which belongs to one sender.
#pragma once

#include <cstdint>
#include <string>

namespace tp::bench {

// An encoded TickEvent for `symbol`, stamped now.
std::string tick_payload(const std::string& symbol, std::uint64_t seq);

// Steady pacing like the gateway's Pacer: everything due is sent in one batch
// (at most 1024), then the sender sleeps until the next one is due.
class RawPacer {
 public:
  explicit RawPacer(double rate);  // rate <= 0: flat out
  // How many may go now, given `sent` so far (flat out: a batch); sleeps
  // until the next one is due when none may.
  std::uint64_t due(std::uint64_t sent);

 private:
  double rate_;
  std::int64_t start_;
};

struct CurveKeys {
  std::string server_public, server_secret, client_public, client_secret;
  // Throws when libzmq has no CURVE.
  static CurveKeys make();
};

}  // namespace tp::bench
