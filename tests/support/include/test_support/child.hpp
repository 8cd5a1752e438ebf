// A real program started by a test: spawned with its arguments, optional
// extra environment and its output sent to files; waited for with a bound;
// always reaped (SIGKILL at scope exit if it still runs), so no test leaves a
// process behind. One owner, one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

namespace tp::test {

struct ChildOptions {
  std::string stdout_path;       // empty: inherit the test's
  std::string stderr_path;       // empty: inherit; the same path as stdout: one file, both streams
  bool append = false;           // append to the files instead of truncating them
  std::vector<std::string> env;  // "NAME=value" added to (or replacing in) the test's environment
};

class Child {
 public:
  // args[0] is the program's path. started() is false when it cannot be spawned.
  explicit Child(std::vector<std::string> args, ChildOptions options = {});
  // Sends SIGKILL and reaps when still running.
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // True while it has not exited (reaps it when it has).
  bool running();
  void terminate() { signal(SIGTERM); }
  void kill() { signal(SIGKILL); }
  void signal(int sig);

  // The exit code once it has exited within `timeout`; -N when signal N
  // killed it; nullopt while it still runs. Waits on a pidfd, no polling.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

 private:
  bool reap(bool block);

  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace tp::test
