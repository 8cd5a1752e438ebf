// Fuzz target for the gateway's CSV tick reader: any bytes give rows or
// errors, never a crash; every row it accepts is a tick the codec accepts.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "gateway/csv_tick_reader.hpp"
#include "proto/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = std::make_unique<std::istringstream>(std::string(reinterpret_cast<const char*>(data), size));
  try {
    tp::gateway::CsvTickReader reader(std::move(in), "EURUSD_fuzz.csv", "", {"EURUSD", "GBPUSD", "USDJPY"});
    while (auto row = reader.next()) {
      if (!row->ok()) {
        if (row->error.empty()) std::abort();
        continue;
      }
      auto tick = *row->tick;
      tick.seq = 1;  // stamped by the gateway, not the reader
      if (tp::proto::validate(tick)) std::abort();
    }
  } catch (const std::runtime_error&) {
    // No usable header: the gateway refuses the file at start.
  }
  return 0;
}
