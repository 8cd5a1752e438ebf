// A temporary directory for one test, removed with everything in it when the
// object goes. Not thread-safe to remove while another thread writes in it.
#pragma once

#include <filesystem>
#include <string>

namespace tp::test {

class TempDir {
 public:
  // Creates /tmp/<prefix>XXXXXX; throws std::runtime_error when it cannot.
  explicit TempDir(const std::string& prefix = "tp-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // An ipc:// endpoint in the directory: no port to choose, none to collide.
  std::string ipc(const std::string& name) const { return "ipc://" + file(name); }

 private:
  std::filesystem::path path_;
};

}  // namespace tp::test
