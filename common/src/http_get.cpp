#include "common/http_get.hpp"

#include <algorithm>

namespace tp::http {
namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

RequestHead parse_request_head(std::string_view received) {
  RequestHead head;
  auto end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) end = received.find("\n\n");
  if (end == std::string_view::npos) {
    if (received.size() > kMaxHeadBytes) head.status = 431;
    return head;
  }
  if (end > kMaxHeadBytes) {
    head.status = 431;
    return head;
  }
  // The request line: METHOD SP TARGET SP HTTP/1.x
  std::string_view line = received.substr(0, received.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    head.status = 400;
    return head;
  }
  const auto method = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (!std::all_of(method.begin(), method.end(), is_token_char) || target.front() != '/') {
    head.status = 400;
    return head;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9') {
    head.status = 400;
    return head;
  }
  head.method = std::string(method);
  head.path = std::string(target.substr(0, target.find('?')));
  if (version[5] != '1')
    head.status = 505;
  else if (method != "GET" && method != "HEAD")
    head.status = 405;
  else
    head.status = 200;
  return head;
}

std::string response(int status, std::string_view content_type, std::string_view body, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + ' ' + reason(status) + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

}  // namespace tp::http
