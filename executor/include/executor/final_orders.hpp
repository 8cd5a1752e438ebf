// The orders this executor has recently recorded as final (state DONE): what
// a report is judged against. A final order takes no change (proto::classify:
// from a final status nothing applies), so an execution report about one of
// them is judged against these few figures instead of a read of the store:
// dll_gateway sends a report for every answer, and the usual report repeats
// an answer just recorded. Holds the newest `capacity` orders; older ones are
// read from the store. Not thread-safe (the loop's thread).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/messages.hpp"

namespace tp::executor {

// What ExecutionDesk::judge reads of a final order, as recorded.
struct FinalOrder {
  proto::OrderStatus status = proto::OrderStatus::filled;
  double quantity = 0;
  double filled_quantity = 0;
};

class FinalOrders {
 public:
  explicit FinalOrders(std::size_t capacity = 4096) : ring_(capacity, nullptr) {}

  // Remembers the order, which must be recorded DONE (committed); the oldest
  // one goes when full.
  void add(std::string_view client_order_id, const FinalOrder& order);
  // The order as recorded, or nullptr when not among the newest.
  const FinalOrder* find(std::string_view client_order_id) const;
  void forget(std::string_view client_order_id);
  std::size_t size() const noexcept { return by_id_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    FinalOrder order;
    std::size_t slot = 0;  // its place in ring_
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> by_id_;
  // Each entry's key, in the order added (a node's key stays where it is);
  // ring_[next_] is the oldest once full, nullptr where none.
  std::vector<const std::string*> ring_;
  std::size_t next_ = 0;
};

}  // namespace tp::executor
