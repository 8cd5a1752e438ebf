#include "dead_letter/letter_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "dead_letter/fd.hpp"

namespace tp::dead_letter {
namespace {

std::string rotated(const std::string& path, int k) { return path + "." + std::to_string(k); }

// write(2) until all of `data` is out; false with errno set on an error.
bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    auto w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

LetterFile::LetterFile(std::string path, LetterFileOptions opts) : path_(std::move(path)), opts_(opts) {
  if (opts_.max_files < 2) opts_.max_files = 2;
  repair_torn_tail();
  if (!open_live())
    throw std::runtime_error("dead_letter.path: cannot open " + path_ + " for appending: " + last_error_);
}

LetterFile::~LetterFile() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

bool LetterFile::open_live() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    failed("open", errno);
    return false;
  }
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  return true;
}

void LetterFile::failed(std::string what, int err) {
  last_errno_ = err;
  last_error_ = std::move(what) + ": " + std::strerror(err);
}

// A kill -9 in the middle of a write can leave the last line without its
// newline; appending after it would glue the next record to it and make one
// unparsable line. The piece is moved aside, byte for byte, and cut off.
void LetterFile::repair_torn_tail() {
  Fd fd(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return;  // no file yet (or unreadable: open_live reports it)
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_size == 0) return;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  char last = 0;
  if (::pread(fd.get(), &last, 1, static_cast<off_t>(size - 1)) != 1 || last == '\n') return;

  // Back to the last newline, a chunk at a time.
  std::vector<char> chunk(64 << 10);
  std::uint64_t cut = 0;
  for (std::uint64_t end = size; end > 0 && cut == 0;) {
    auto begin = end > chunk.size() ? end - chunk.size() : 0;
    auto got = ::pread(fd.get(), chunk.data(), end - begin, static_cast<off_t>(begin));
    if (got != static_cast<ssize_t>(end - begin)) return;  // leave it as it is rather than guess
    for (auto i = end - begin; i > 0; --i) {
      if (chunk[i - 1] == '\n') {
        cut = begin + i;
        break;
      }
    }
    end = begin;
  }

  torn_.side_path = path_ + ".torn";
  Fd side(::open(torn_.side_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (side.get() < 0)
    throw std::runtime_error("dead_letter.path: cannot write " + torn_.side_path + ": " +
                             std::strerror(errno));
  for (auto pos = cut; pos < size;) {
    auto n = std::min<std::uint64_t>(chunk.size(), size - pos);
    auto got = ::pread(fd.get(), chunk.data(), n, static_cast<off_t>(pos));
    if (got <= 0 || !write_all(side.get(), chunk.data(), static_cast<std::size_t>(got)))
      throw std::runtime_error("dead_letter.path: cannot move the torn tail of " + path_ + " aside");
    pos += static_cast<std::uint64_t>(got);
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(cut)) != 0)
    throw std::runtime_error("dead_letter.path: cannot cut the torn tail of " + path_ + ": " +
                             std::strerror(errno));
  torn_.bytes = size - cut;
}

bool LetterFile::append(std::string_view line) {
  const auto n = line.size() + 1;
  bool ok = true;
  if (size() > 0 && size() + n > opts_.max_file_bytes) ok = rotate();
  buf_.append(line);
  buf_ += '\n';
  ++buffered_lines_;
  if (buf_.size() >= opts_.flush_bytes) ok = flush() && ok;
  return ok;
}

bool LetterFile::flush() {
  if (buf_.empty()) return true;
  // After a failed reopen (descriptors exhausted), try again: the lines are
  // counted lost only when it still fails.
  bool ok = fd_ >= 0 || open_live();
  if (ok && !write_all(fd_, buf_.data(), buf_.size())) {
    ok = false;
    failed("write", errno);
    // A short write (a full disk) may have left part of a line: cut back to
    // the last whole one so that the next line starts on its own.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) last_error_ += "; and cannot cut back";
  }
  if (ok) {
    size_ += buf_.size();
    bytes_written_ += buf_.size();
  } else {
    ++write_errors_;
    lines_lost_ += buffered_lines_;
  }
  buf_.clear();
  buffered_lines_ = 0;
  return ok;
}

bool LetterFile::rotate() {
  bool ok = flush();
  if (before_rotation_) before_rotation_();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  size_ = 0;                             // the live file is a new one from here
  const int keep = opts_.max_files - 1;  // rotated files kept
  if (::unlink(rotated(path_, keep).c_str()) == 0) ++files_removed_;
  for (int k = keep - 1; k >= 1; --k) std::rename(rotated(path_, k).c_str(), rotated(path_, k + 1).c_str());
  if (std::rename(path_.c_str(), rotated(path_, 1).c_str()) != 0) {
    // Cannot rotate: start the live file over rather than grow past the cap.
    failed("rotate", errno);
    ++write_errors_;
    ok = false;
    if (::truncate(path_.c_str(), 0) == 0) ++files_removed_;
  }
  ++rotations_;
  // A live file that cannot be opened now is retried by the next flush.
  return open_live() && ok;
}

}  // namespace tp::dead_letter
