#include "support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/clock.hpp"

namespace tp::bench {

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt_signal(int) { g_interrupted.store(true); }

void check_interrupt() {
  if (g_interrupted.load()) throw Interrupted();
}

double now_s() { return static_cast<double>(tp::monotonic_ns()) / 1e9; }

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

bool wait_until(const std::function<bool()>& pred, double timeout_s, int interval_ms) {
  const double deadline = now_s() + timeout_s;
  while (true) {
    check_interrupt();
    if (pred()) return true;
    if (now_s() > deadline) return false;
    sleep_ms(interval_ms);
  }
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<double> json_number(const std::string& text, std::string_view key, std::size_t from) {
  const std::string needle = "\"" + std::string(key) + "\":";
  auto pos = text.find(needle, from);
  if (pos == std::string::npos) return std::nullopt;
  const char* start = text.c_str() + pos + needle.size();
  char* end = nullptr;
  double v = std::strtod(start, &end);
  if (end == start) return std::nullopt;
  return v;
}

std::optional<double> json_nested(const std::string& text, std::string_view object, std::string_view key) {
  auto pos = text.find("\"" + std::string(object) + "\":");
  if (pos == std::string::npos) return std::nullopt;
  return json_number(text, key, pos);
}

namespace {

bool listenable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int free_tcp_port_base(int count) {
  constexpr int low = 20000, high = 32000;
  std::mt19937 pick(std::random_device{}());
  std::uniform_int_distribution<int> base_of(low, high - count);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int base = base_of(pick);
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = listenable(base + i);
    if (free) return base;
  }
  throw std::runtime_error("no " + std::to_string(count) + " free ports in a row in " + std::to_string(low) +
                           ".." + std::to_string(high));
}

long proc_status_kb(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return -1;
}

unsigned cpus() { return std::max(1u, std::thread::hardware_concurrency()); }

void pin_this_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);  // 0 = the calling thread
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - (q > 0 ? 1 : 0);
  return v[std::min(idx, v.size() - 1)];
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

}  // namespace tp::bench
