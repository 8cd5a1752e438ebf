#include "test_support/child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

extern char** environ;

namespace tp::test {

namespace {

// The test's environment with `extra` laid over it (same name: replaced).
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> by_name;
  std::vector<std::string> order;
  auto put = [&](const std::string& kv) {
    const auto name = kv.substr(0, kv.find('='));
    if (by_name.find(name) == by_name.end()) order.push_back(name);
    by_name[name] = kv;
  };
  for (char** e = environ; *e != nullptr; ++e) put(*e);
  for (const auto& kv : extra) put(kv);
  std::vector<std::string> out;
  out.reserve(order.size());
  for (const auto& name : order) out.push_back(by_name[name]);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Child::Child(std::vector<std::string> args, ChildOptions options) {
  auto argv = c_strings(args);
  auto env_strings = merged_env(options.env);
  auto envp = c_strings(env_strings);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const int flags = O_WRONLY | O_CREAT | (options.append ? O_APPEND : O_TRUNC);
  if (!options.stdout_path.empty())
    posix_spawn_file_actions_addopen(&fa, 1, options.stdout_path.c_str(), flags, 0644);
  if (!options.stderr_path.empty()) {
    if (options.stderr_path == options.stdout_path)
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else
      posix_spawn_file_actions_addopen(&fa, 2, options.stderr_path.c_str(), flags, 0644);
  }
  const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) pid_ = -1;
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

void Child::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool Child::reap(bool block) {
  if (status_) return true;
  int st = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? -WTERMSIG(st) : -1);
  return true;
}

bool Child::running() { return pid_ > 0 && !reap(false); }

std::optional<int> Child::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (reap(false)) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  while (!reap(false)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
    } else {
      // No pidfd (kernel < 5.3): the exit is only seen by asking again.
      pollfd none{-1, 0, 0};
      ::poll(&none, 1, static_cast<int>(std::min<long long>(left.count(), 10)));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  return status_;
}

}  // namespace tp::test
