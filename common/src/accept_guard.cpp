// Keeps libzmq 4.3's ipc:// listener from aborting the process when the
// descriptors run out. Its accept path (src/ipc_listener.cpp) errno_asserts
// on any failure but a short list that has ENFILE and not EMFILE, so one
// connection too many on an ipc:// endpoint ends the program with "Too many
// open files (src/ipc_listener.cpp:325)"; the tcp:// listener already
// tolerates EMFILE. These definitions, linked into the executable, interpose
// the C library's accept/accept4 for libzmq (the executable's symbols come
// first in dynamic binding) and report EMFILE as ENFILE, the same condition
// for the caller: libzmq then drops that attempt, emits
// ZMQ_EVENT_ACCEPT_FAILED (counted as accept_failed by tp::SocketMonitor)
// and keeps listening. Nothing else in these programs calls accept.
//
// An OBJECT library (tp::accept_guard) linked into every program: in a
// static library nothing would pull this file into the executable.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace {

int accepted(long rc) {
  if (rc < 0 && errno == EMFILE) errno = ENFILE;
  return static_cast<int>(rc);
}

}  // namespace

extern "C" int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return accepted(::syscall(SYS_accept4, fd, addr, len, flags));
}

extern "C" int accept(int fd, struct sockaddr* addr, socklen_t* len) {
  return accepted(::syscall(SYS_accept4, fd, addr, len, 0));
}
