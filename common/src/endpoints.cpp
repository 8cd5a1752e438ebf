#include "common/endpoints.hpp"

#include <charconv>
#include <stdexcept>

namespace tp {

namespace {

// tcp: the same host, `offset` ports up; ipc and inproc: a suffix.
std::string derived(std::string_view orders, unsigned offset, std::string_view name) {
  if (orders.starts_with("tcp://")) {
    const auto colon = orders.rfind(':');
    unsigned port = 0;
    const auto digits = orders.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (colon < 6 || ec != std::errc() || end != digits.data() + digits.size() || port + offset > 65535)
      throw std::runtime_error("endpoints." + std::string(name) + ": cannot derive it from orders = '" +
                               std::string(orders) + "' (no numeric port): set it");
    return std::string(orders.substr(0, colon + 1)) + std::to_string(port + offset);
  }
  return std::string(orders) + "." + std::string(name);
}

}  // namespace

std::string derived_reports_endpoint(std::string_view orders) { return derived(orders, 2, "reports"); }

std::string derived_control_endpoint(std::string_view orders) { return derived(orders, 3, "control"); }

}  // namespace tp
