// The orders this executor has recently recorded as final (state DONE), as
// recorded. A final order takes no change (proto::classify: from a final
// status nothing applies), so an execution report about one of them is
// judged against this copy instead of a read of the store: dll_gateway sends
// a report for every answer, and the usual report repeats an answer just
// recorded. Holds the newest `capacity` orders; older ones are read from the
// store. Not thread-safe (the loop's thread).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "executor/order_record.hpp"

namespace tp::executor {

class FinalOrders {
 public:
  explicit FinalOrders(std::size_t capacity = 4096) : ring_(capacity) {}

  // Remembers `order`, which must be recorded DONE (committed); the oldest
  // one goes when full.
  void add(const OrderRecord& order);
  // The order as recorded, or nullptr when not among the newest.
  const OrderRecord* find(std::string_view client_order_id) const;
  void forget(std::string_view client_order_id);
  std::size_t size() const noexcept { return by_id_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, OrderRecord, Hash, std::equal_to<>> by_id_;
  std::vector<std::string> ring_;  // ids in the order added; ring_[next_] is the oldest once full
  std::size_t next_ = 0;
};

}  // namespace tp::executor
