#include "executor/final_orders.hpp"

namespace tp::executor {

void FinalOrders::add(std::string_view client_order_id, const FinalOrder& order) {
  if (ring_.empty()) return;
  if (const std::string* oldest = ring_[next_]) by_id_.erase(by_id_.find(*oldest));
  auto it = by_id_.find(client_order_id);
  if (it == by_id_.end()) {
    it = by_id_.emplace(std::string(client_order_id), Entry{}).first;
  } else {
    ring_[it->second.slot] = nullptr;  // added again: one slot per entry, the newest
  }
  it->second = Entry{order, next_};
  ring_[next_] = &it->first;
  next_ = (next_ + 1) % ring_.size();
}

const FinalOrder* FinalOrders::find(std::string_view client_order_id) const {
  const auto it = by_id_.find(client_order_id);
  return it == by_id_.end() ? nullptr : &it->second.order;
}

void FinalOrders::forget(std::string_view client_order_id) {
  if (const auto it = by_id_.find(client_order_id); it != by_id_.end()) {
    ring_[it->second.slot] = nullptr;
    by_id_.erase(it);
  }
}

}  // namespace tp::executor
