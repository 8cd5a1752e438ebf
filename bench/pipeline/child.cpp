#include "child.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "support.hpp"

namespace tp::bench {

Child::Child(const std::string& name, const std::vector<std::string>& argv, const std::filesystem::path& log,
             int cpu)
    : name_(name) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string log_s = log.string();
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      ::sched_setaffinity(0, sizeof set, &set);
    }
    int fd = ::open(log_s.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

bool Child::alive() {
  if (reaped_) return false;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    reaped_ = true;
    exit_status_ = st;
    return false;
  }
  return true;
}

long Child::vm_hwm_kb() const { return reaped_ ? -1 : proc_status_kb(pid_, "VmHWM"); }
long Child::vm_rss_kb() const { return reaped_ ? -1 : proc_status_kb(pid_, "VmRSS"); }

double Child::cpu_s() const {
  if (reaped_) return -1;
  // schedstat's first field is the thread's time on a CPU in ns: finer than
  // /proc/<pid>/stat's clock ticks (10 ms), which a burst of orders is not
  // much longer than.
  double ns = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    double run_ns = 0;
    if (in >> run_ns) ns += run_ns;
  }
  return ns / 1e9;
}

int Child::stop(double grace_s) {
  if (!alive()) return exit_status_;
  ::kill(pid_, SIGTERM);
  const double deadline = now_s() + grace_s;
  while (alive() && now_s() < deadline) sleep_ms(10);
  if (alive()) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    exit_status_ = st;
  }
  return exit_status_;
}

}  // namespace tp::bench
