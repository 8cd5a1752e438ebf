// Fuzz target for one message decoder, chosen at build time with
// TP_FUZZ_DECODER (e.g. decode_tick). Beyond "no crash, no leak, no UB": a
// payload that decodes must re-encode to something that decodes to the same
// value, and must pass validate().
#include <cstdint>
#include <cstdlib>

#include "proto/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static tp::proto::Decoder decoder;
  tp::proto::Bytes bytes{reinterpret_cast<const std::byte*>(data), size};
  (void)decoder.peek_type(bytes);
  auto r = decoder.TP_FUZZ_DECODER(bytes);
  if (!r.ok()) {
    if (r.error().detail.empty() && r.error().code != tp::proto::ErrorCode::malformed) std::abort();
    return 0;
  }
  if (tp::proto::validate(r.value())) std::abort();
  tp::proto::Encoder encoder;
  auto again = decoder.TP_FUZZ_DECODER(tp::proto::as_bytes(encoder.encode(r.value())));
  if (!again.ok() || !(again.value() == r.value())) std::abort();
  return 0;
}
