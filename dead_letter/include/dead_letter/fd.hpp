// A file descriptor closed when it goes out of scope (the sink's files are
// read and repaired with plain POSIX calls).
#pragma once

#include <unistd.h>

namespace tp::dead_letter {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace tp::dead_letter
