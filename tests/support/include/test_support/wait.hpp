// Bounded waits for a condition another process or thread makes true (a
// counter in a stats file, a file appearing): the test awaits the state it
// needs instead of sleeping a guessed time. Header only.
#pragma once

#include <chrono>
#include <thread>

namespace tp::test {

// Calls `done()` until it returns true (then true) or `timeout` passes (then
// false), resting `every` between calls.
template <class F>
bool wait_until(F&& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);  // the rest between two looks, not the synchronisation
  }
  return true;
}

}  // namespace tp::test
