#include "common/endpoints.hpp"

#include <charconv>
#include <stdexcept>

namespace tp {

std::string derived_reports_endpoint(std::string_view orders) {
  if (orders.starts_with("tcp://")) {
    const auto colon = orders.rfind(':');
    unsigned port = 0;
    const auto digits = orders.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (colon < 6 || ec != std::errc() || end != digits.data() + digits.size() || port + 2 > 65535)
      throw std::runtime_error("endpoints.reports: cannot derive it from orders = '" + std::string(orders) +
                               "' (no numeric port): set it");
    return std::string(orders.substr(0, colon + 1)) + std::to_string(port + 2);
  }
  return std::string(orders) + ".reports";
}

}  // namespace tp
