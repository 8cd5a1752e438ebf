// Endpoints one program derives from another's, so that a deployment file
// written before a link existed still names a place for it.
#pragma once

#include <string>
#include <string_view>

namespace tp {

// dll_gateway's execution-report PUB, when [endpoints] reports is not set:
// beside the orders endpoint. ipc://P -> ipc://P.reports, inproc://N ->
// inproc://N.reports, tcp://H:N -> tcp://H:(N+2) (7104 -> 7106, the
// default). Throws std::runtime_error for a tcp endpoint without a numeric port.
std::string derived_reports_endpoint(std::string_view orders);

// `reports` when set, else derived from `orders` (a Config built in code
// rather than read from a file leaves it empty).
inline std::string reports_endpoint(const std::string& reports, const std::string& orders) {
  return reports.empty() ? derived_reports_endpoint(orders) : reports;
}

// The executor's control REP (tpctl's trading commands), when [endpoints]
// control is not set: ipc://P -> ipc://P.control, tcp://H:N -> tcp://H:(N+3)
// (7104 -> 7107). Throws as derived_reports_endpoint.
std::string derived_control_endpoint(std::string_view orders);

inline std::string control_endpoint(const std::string& control, const std::string& orders) {
  return control.empty() ? derived_control_endpoint(orders) : control;
}

}  // namespace tp
