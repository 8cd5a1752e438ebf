// The little of HTTP/1.x that serving GET /metrics needs: read a request's
// head, answer with one response and close. No keep-alive, no request body,
// no chunked coding, no TLS.
//
// Why not a library: Debian's cpp-httplib is a compiled library built with
// OpenSSL, zlib and brotli, and loading it added 5 MB of resident memory to
// every program, metrics on or off, against a 30 MB budget per program.
// These functions are pure (no socket); MetricsServer does the I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tp::http {

// Heads longer than this are refused with 431: a scraper's is a few hundred
// bytes.
inline constexpr std::size_t kMaxHeadBytes = 8192;

struct RequestHead {
  // 0 while the head is incomplete (no blank line yet); otherwise the
  // status to answer with when the head is bad (400, 405, 431, 505), or 200
  // when it is a well-formed GET or HEAD.
  int status = 0;
  std::string method;
  std::string path;  // the target without its query
};

// Reads the bytes received so far on a connection. A head ends with an empty
// line (CRLF CRLF, or LF LF as RFC 9112 allows a recipient to accept).
RequestHead parse_request_head(std::string_view received);

// A complete response with Content-Length and Connection: close; the body is
// left out for a HEAD request (its length is still announced).
std::string response(int status, std::string_view content_type, std::string_view body,
                     bool head_only = false);

}  // namespace tp::http
