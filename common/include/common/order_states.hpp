// One order's state in the two durable stores, side by side: the words each
// store writes in its orders.state column, what each means, and how a row in
// one relates to the row for the same client order id in the other. This is
// the one place that maps them; tests/common/test_order_states.cpp checks
// that both stores write exactly these words. The words are on disk in
// existing files: changing one is a schema change that needs a migration.
// Header only, values only.
//
// Three vocabularies meet here, each for a different question:
//   - executor.db orders.state: where the executor's copy of the order is on
//     its way to the broker and back (the executor's OrderState,
//     executor/order_record.hpp);
//   - dll_gateway.db orders.state: whether the broker's answer is stored
//     (dll_gateway's OrderState, dll_gateway/order_store.hpp);
//   - proto::OrderStatus: what the broker said about the order (new_order,
//     accepted, filled...). Both files store it beside the state:
//     executor.db by its name (proto::to_string), dll_gateway.db by its
//     number.
//
// executor.db   meaning                               dll_gateway.db row for the id
// -----------   -----------------------------------   ---------------------------------
// HELD          recorded while the breaker was open;   none: the order never left the
//               never handed to the order socket, so   executor
//               it may be given up without asking
// INTENT        recorded before the send; may or may   none, PENDING or DONE: the send
//               not have been sent                     may have happened (a crash, a
//                                                      lost reply); reconciliation asks
// UNKNOWN       sent, no answer came (a timeout);      none, PENDING or DONE, as for
//               reconciliation asks again, same id     INTENT
// SENT          answered with a status that is not     DONE with that status (accepted);
//               final: accepted, or unknown when       PENDING or none after an unknown
//               dll_gateway could not tell; asked      answer
//               again by reconciliation
// DONE          a final status (proto::is_final)       DONE with that status, or none
//               is recorded                            when the executor gave up a
//                                                      HELD order itself
//
// dll_gateway.db   meaning
// --------------   ---------------------------------------------------------
// PENDING          written just before the broker call; its answer is not
//                  stored (yet): a request or query for the id asks the
//                  broker before anything is submitted again
// DONE             the broker's answer is stored, whatever its status: the
//                  same id is never submitted again
#pragma once

#include <array>
#include <string_view>

namespace tp::order_states {

// executor.db, orders.state.
namespace executor_db {
inline constexpr std::string_view held = "HELD";
inline constexpr std::string_view intent = "INTENT";
inline constexpr std::string_view unknown = "UNKNOWN";
inline constexpr std::string_view sent = "SENT";
inline constexpr std::string_view done = "DONE";
inline constexpr std::array<std::string_view, 5> all = {held, intent, unknown, sent, done};
}  // namespace executor_db

// dll_gateway.db, orders.state (its schema CHECKs these two).
namespace dll_gateway_db {
inline constexpr std::string_view pending = "PENDING";
inline constexpr std::string_view done = "DONE";
inline constexpr std::array<std::string_view, 2> all = {pending, done};
}  // namespace dll_gateway_db

}  // namespace tp::order_states
