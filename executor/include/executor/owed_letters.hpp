// The outcome letters the dead-letter sender could not queue (its queue
// full: the sink stalled or stopped, or the queue filled by the stored
// letters sent again at start): kept in memory, within a bound, and sent
// again, oldest first, once there is room. Without this a letter dropped so
// waited for the next start or the sink's next reconnection, and one made
// while the sink was stopped just after a start was never written. Pure
// logic: the sending is the caller's. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>

#include "executor/store.hpp"

namespace tp::executor {

class OwedLetters {
 public:
  static constexpr std::size_t max_letters = 2048;
  static constexpr std::size_t max_bytes = 4u << 20;

  // Keeps `letter` (one with a key: it is stored, and the sink writes a key
  // once); past either bound the oldest owed letter is given up (it stays
  // in executor.db, sent again at the next start or reconnection).
  void owe(const OutcomeLetter& letter);
  // Offers the owed letters oldest first to `send` (false: not queued) and
  // forgets each it takes, until one is refused. Returns how many it took.
  std::size_t pay(const std::function<bool(const OutcomeLetter&)>& send);

  bool empty() const noexcept { return letters_.empty(); }
  std::size_t size() const noexcept { return letters_.size(); }
  std::uint64_t given_up() const noexcept { return given_up_; }

 private:
  static std::size_t bytes_of(const OutcomeLetter& l) noexcept {
    return l.reason.size() + l.detail.size() + l.original.size() + l.key.size();
  }
  std::deque<OutcomeLetter> letters_;
  std::size_t bytes_ = 0;
  std::uint64_t given_up_ = 0;
};

}  // namespace tp::executor
