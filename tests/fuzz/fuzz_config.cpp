// Fuzz target for the deployment config parser: any text either parses or
// throws ConfigError; nothing else may escape.
#include <cstdint>
#include <string>

#include "common/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto cfg = tp::parse_config(text, {}, "fuzz.toml");
    (void)cfg;
  } catch (const tp::ConfigError&) {
  }
  return 0;
}
