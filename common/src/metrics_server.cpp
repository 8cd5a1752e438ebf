// MetricsServer's sockets: a listening socket shared by two worker threads,
// each serving one connection at a time (common/http_get.hpp reads the
// request and writes the response). A scrape is a few kilobytes once every
// few seconds; what matters is that no client can hold the program: every
// connection has a 2 s deadline, and stop() wakes both workers at once.
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/http_get.hpp"
#include "common/metrics.hpp"

namespace tp::metrics {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kConnectionDeadline = std::chrono::seconds(2);
constexpr int kWorkers = 2;

// Without SO_REUSEPORT: with it a second program configured with the same
// port would share the port silently and get half the scrapes; without it
// that program fails at start.
int listen_on(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (const addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

// Waits until `fd` is ready for `events`; false at the deadline, on stop, or
// on an error of the connection.
bool wait_ready(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents) return false;
    if (fds[0].revents & events) return true;
    if (fds[0].revents) return false;  // POLLERR, POLLHUP
  }
}

void send_all(int fd, std::string_view out, int stop_fd, Clock::time_point deadline) {
  while (!out.empty()) {
    const auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (!(n < 0 && errno == EAGAIN) || !wait_ready(fd, POLLOUT, stop_fd, deadline)) {
      return;
    }
  }
}

}  // namespace

MetricsServer::MetricsServer(const std::string& host, int port, Labels common)
    : host_(host), common_(std::move(common)) {
  listen_fd_ = listen_on(host, port);
  if (listen_fd_ < 0) {
    if (port == 0) throw MetricsBindError("metrics: cannot listen on " + host + " (any port)");
    throw MetricsBindError("metrics: cannot listen on " + host + ":" + std::to_string(port) +
                           " (in use by another process, or not an address of this host); set "
                           "metrics.port to a free port, or 0 to turn metrics off");
  }
  port_ = port == 0 ? bound_port(listen_fd_) : port;
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    ::close(listen_fd_);
    throw std::runtime_error(std::string("metrics: eventfd: ") + std::strerror(errno));
  }
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { serve(); });
  spdlog::info("serving Prometheus metrics on http://{}:{}/metrics", host_, port_);
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  if (workers_.empty()) return;
  // Never read: the eventfd stays readable, so every worker's poll sees it.
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
  for (auto& w : workers_) w.join();
  workers_.clear();
  ::close(listen_fd_);
  ::close(stop_fd_);
}

void MetricsServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      answer(fd);
      ::close(fd);
    } else if (errno == EMFILE || errno == ENFILE) {
      // The connection stays queued and the socket readable: wait before
      // trying again rather than spin (or for stop).
      pollfd stop{stop_fd_, POLLIN, 0};
      if (::poll(&stop, 1, 100) > 0) return;
    }  // EAGAIN: the other worker took it
  }
}

void MetricsServer::answer(int fd) {
  const auto deadline = Clock::now() + kConnectionDeadline;
  std::string received;
  http::RequestHead head;
  char buf[2048];
  while (head.status == 0) {
    if (!wait_ready(fd, POLLIN, stop_fd_, deadline)) return;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
    if (n > 0) received.append(buf, static_cast<std::size_t>(n));
    head = http::parse_request_head(received);
  }
  const auto plain = "text/plain; charset=utf-8";
  const bool head_only = head.method == "HEAD";
  std::string out;
  if (head.status != 200) {
    out = http::response(head.status, plain, "bad request\n");
  } else if (head.path != "/metrics") {
    out = http::response(404, plain, "not found: only /metrics is served\n", head_only);
  } else {
    scrapes_.fetch_add(1, std::memory_order_relaxed);
    const auto snap = snapshot_.load();
    out = snap ? http::response(200, "text/plain; version=0.0.4; charset=utf-8", render(*snap), head_only)
               : http::response(503, plain, "no metrics published yet\n", head_only);
  }
  send_all(fd, out, stop_fd_, deadline);
  ::shutdown(fd, SHUT_WR);
}

void MetricsServer::publish(std::string text, std::int64_t now_wall_ns) {
  snapshot_.store(std::make_shared<const Snapshot>(Snapshot{std::move(text), now_wall_ns}));
}

std::string MetricsServer::render(const Snapshot& snap) const {
  MetricsText tail(common_);
  add_process_metrics(tail, read_process_sample());
  tail.gauge("tp_metrics_snapshot_timestamp_seconds",
             "When the program's loop last published these metrics, since unix epoch in seconds.",
             static_cast<double>(snap.wall_ns) / 1e9);
  return snap.text + tail.str();
}

}  // namespace tp::metrics
