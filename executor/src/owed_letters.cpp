#include "executor/owed_letters.hpp"

namespace tp::executor {

void OwedLetters::owe(const OutcomeLetter& letter) {
  letters_.push_back(letter);
  bytes_ += bytes_of(letter);
  while (letters_.size() > max_letters || (bytes_ > max_bytes && letters_.size() > 1)) {
    bytes_ -= bytes_of(letters_.front());
    letters_.pop_front();
    ++given_up_;
  }
}

std::size_t OwedLetters::pay(const std::function<bool(const OutcomeLetter&)>& send) {
  std::size_t paid = 0;
  while (!letters_.empty() && send(letters_.front())) {
    bytes_ -= bytes_of(letters_.front());
    letters_.pop_front();
    ++paid;
  }
  return paid;
}

}  // namespace tp::executor
