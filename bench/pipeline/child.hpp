// One program started by the driver: fork/exec in its own process group,
// with PR_SET_PDEATHSIG so that it never outlives the driver, its output
// appended to a log file. The destructor kills the group if it still runs.
// Not thread-safe; owned by the Deployment that started it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace tp::bench {

class Child {
 public:
  // `name` is "program" or "program:instance"; `cpu` < 0 leaves it unpinned.
  // Throws when fork fails.
  Child(const std::string& name, const std::vector<std::string>& argv, const std::filesystem::path& log,
        int cpu);
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  bool alive();            // reaps the child once it has exited
  long vm_hwm_kb() const;  // -1 once reaped
  long vm_rss_kb() const;
  // CPU time of all its threads so far (/proc/<pid>/task/*/schedstat), in
  // seconds; -1 once reaped. Threads that have exited are not counted.
  double cpu_s() const;
  // SIGTERM, then SIGKILL to the group after `grace_s`. Returns the wait status.
  int stop(double grace_s = 5.0);

 private:
  std::string name_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_status_ = 0;
};

}  // namespace tp::bench
