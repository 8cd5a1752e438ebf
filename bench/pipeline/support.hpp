// pipeline_bench's small shared helpers: the interrupt flag (the driver's one
// mutable global, set by SIGINT/SIGTERM), clocks and waits, the stats-file
// reader, free ports, /proc figures, CPU pinning and percentiles. Everything
// here is safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tp::bench {

// Set by SIGINT/SIGTERM, and by a raw run whose threads can never sync (to
// unblock them); every wait below ends with Interrupted once it is set.
extern std::atomic<bool> g_interrupted;
extern "C" void on_interrupt_signal(int);

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

// Throws Interrupted once g_interrupted is set.
void check_interrupt();

double now_s();  // monotonic seconds
void sleep_ms(int ms);

// Polls `pred` every `interval_ms` until it is true (true) or `timeout_s`
// passes (false); throws Interrupted.
bool wait_until(const std::function<bool()>& pred, double timeout_s, int interval_ms = 10);

// The whole file, or "" when it cannot be read (a stats file not written yet).
std::string read_file(const std::filesystem::path& p);

// The number after "key": in a stats file (flat enough for this), searching
// from `from` (the position of an enclosing object's key for nested ones).
std::optional<double> json_number(const std::string& text, std::string_view key, std::size_t from = 0);
std::optional<double> json_nested(const std::string& text, std::string_view object, std::string_view key);

// A port P such that P .. P+count-1 are all free on 127.0.0.1 now, below the
// kernel's ephemeral range (32768 on): a program's own outgoing connection
// cannot take one of them between the pick and the bind, as it could an
// ephemeral port (tests/support/ports.py picks its ports the same way).
// Throws when no such run is found.
int free_tcp_port_base(int count);

// A "VmHWM"-style field of /proc/PID/status in kB, -1 when absent.
long proc_status_kb(pid_t pid, const char* field);

// Pins the calling thread to `cpu`; a negative cpu leaves it unpinned.
void pin_this_thread(int cpu);

// The machine's CPUs, at least 1 (the report's header and the burst's floor).
unsigned cpus();

// Nearest-rank percentile (q in [0, 1]); 0 for no samples.
double percentile(std::vector<double> v, double q);
double median(std::vector<double> v);

}  // namespace tp::bench
