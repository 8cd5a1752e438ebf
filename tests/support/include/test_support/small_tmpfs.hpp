// A small tmpfs mounted for one test (a filesystem the test can fill), and
// removed again. Needs root (CAP_SYS_ADMIN): ok() is false otherwise and the
// test skips with the reason.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace tp::test {

class SmallTmpfs {
 public:
  explicit SmallTmpfs(std::size_t bytes) {
    char tmpl[] = "/tmp/tp-tmpfs-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      why_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    dir_ = tmpl;
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      why_ = std::string("cannot mount a tmpfs (root needed): ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;

  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  // Writes a filler file until the filesystem is full; returns its path.
  std::string fill(const std::string& name = "filler") const {
    const std::string path = file(name);
    std::ofstream out(path, std::ios::binary);
    const std::string block(4096, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
    return path;
  }
  // Frees the space a filler took.
  void free(const std::string& name = "filler") const {
    std::error_code ec;
    std::filesystem::remove(file(name), ec);
  }

 private:
  std::string dir_;
  std::string why_;
  bool mounted_ = false;
};

}  // namespace tp::test
