// The dead-letter JSON-lines file: appends whole lines only, rotates by size
// and keeps a bounded number of files, and repairs a torn last line left by
// a kill -9 mid-write. Disk use is at most max_files * max_file_bytes, plus
// one torn record set aside in <path>.torn.
//
// Files: <path> is the live one; on rotation it becomes <path>.1, .1 becomes
// .2, ... and the oldest beyond max_files - 1 rotated files is removed.
// Lines are buffered in memory (whole lines only, at most flush_bytes) and
// written with write(2); a failed or short write is cut back to the last
// whole line, so the file never holds half a record this process wrote.
// A failed write (a full disk) never stops the file: the lines it held are
// counted in lines_lost() and the next flush writes whole lines again; a live
// file that cannot be reopened after a rotation (no descriptors left) is
// tried again at every flush, its lines counted lost meanwhile.
// Single-threaded; owns the file descriptor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace tp::dead_letter {

struct LetterFileOptions {
  std::uint64_t max_file_bytes = 64ull << 20;  // a line that would pass it goes to a new file
  int max_files = 4;                           // live file included; >= 2
  std::size_t flush_bytes = 256 << 10;         // buffered lines written at this size
};

struct TornRecord {
  std::uint64_t bytes = 0;  // 0: the file ended with a whole line
  std::string side_path;    // where those bytes were moved
};

class LetterFile {
 public:
  // Opens (creates) `path` for appending. A last line without its newline is
  // moved to <path>.torn (replacing an older one) and cut from the file;
  // torn() says so. Throws std::runtime_error when the file cannot be opened.
  LetterFile(std::string path, LetterFileOptions opts);
  ~LetterFile();
  LetterFile(const LetterFile&) = delete;
  LetterFile& operator=(const LetterFile&) = delete;

  // Appends one line (`line` without its newline). Returns false when a write
  // failed (the line, and what was buffered with it, is lost and counted).
  bool append(std::string_view line);
  // Writes the buffered lines; false on a write error.
  bool flush();

  // Called at each rotation before the oldest file is removed (the sink
  // saves the keys read from it).
  void on_rotation(std::function<void()> before) { before_rotation_ = std::move(before); }

  const TornRecord& torn() const noexcept { return torn_; }
  const std::string& path() const noexcept { return path_; }
  std::uint64_t size() const noexcept { return size_ + buf_.size(); }
  std::uint64_t rotations() const noexcept { return rotations_; }
  std::uint64_t files_removed() const noexcept { return files_removed_; }
  std::uint64_t lines_lost() const noexcept { return lines_lost_; }
  std::uint64_t write_errors() const noexcept { return write_errors_; }
  const std::string& last_error() const noexcept { return last_error_; }
  // errno of the last failure (0 when none yet).
  int last_errno() const noexcept { return last_errno_; }
  // Bytes written by flushes so far (whole lines).
  std::uint64_t bytes_written() const noexcept { return bytes_written_; }

 private:
  // Opens the live file; false (error recorded) when it cannot.
  bool open_live();
  void failed(std::string what, int err);
  void repair_torn_tail();
  bool rotate();

  std::string path_;
  LetterFileOptions opts_;
  std::function<void()> before_rotation_;
  int fd_ = -1;
  std::uint64_t size_ = 0;  // bytes in the live file, whole lines only
  std::string buf_;
  std::uint64_t buffered_lines_ = 0;
  TornRecord torn_;
  std::uint64_t rotations_ = 0;
  std::uint64_t files_removed_ = 0;
  std::uint64_t lines_lost_ = 0;
  std::uint64_t write_errors_ = 0;
  std::string last_error_;
  int last_errno_ = 0;
  std::uint64_t bytes_written_ = 0;
};

}  // namespace tp::dead_letter
