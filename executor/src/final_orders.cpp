#include "executor/final_orders.hpp"

namespace tp::executor {

void FinalOrders::add(const OrderRecord& order) {
  if (ring_.empty()) return;
  std::string& slot = ring_[next_];
  // An id added twice has two slots: the older one's eviction only makes
  // the newer a miss (read from the store), never a wrong answer.
  if (!slot.empty()) by_id_.erase(slot);
  slot = order.client_order_id;
  by_id_.insert_or_assign(order.client_order_id, order);
  next_ = (next_ + 1) % ring_.size();
}

const OrderRecord* FinalOrders::find(std::string_view client_order_id) const {
  const auto it = by_id_.find(client_order_id);
  return it == by_id_.end() ? nullptr : &it->second;
}

void FinalOrders::forget(std::string_view client_order_id) {
  if (const auto it = by_id_.find(client_order_id); it != by_id_.end()) by_id_.erase(it);
}

}  // namespace tp::executor
