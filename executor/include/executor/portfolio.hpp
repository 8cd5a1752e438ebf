// The portfolio in one currency: values a PositionBook at the latest mids,
// converts each instrument's PnL from its quote currency into the account
// currency, and builds the PNL.<instrument> / PORTFOLIO messages. Pure
// functions and plain values (no socket, store or clock read): the executor's
// loop owns the book and the marks and calls these. Safe from any thread on
// values nobody changes during the call.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "executor/position_book.hpp"
#include "proto/messages.hpp"

namespace tp::executor {

// Latest mid price per instrument (from the tick feed).
using Marks = std::map<std::string, double, std::less<>>;

// The instrument's mark when it is usable: present, finite and > 0.
std::optional<double> mark_of(const Marks& marks, std::string_view instrument);

// Converts amounts between currencies with the latest mids of the configured
// instruments: Q -> A is 1 when Q == A; else the first instrument with base Q
// and quote A that has a mark, at its mid; else the first with base A and
// quote Q that has one, at 1 / mid; else unknown. One step only (no chain
// through a third currency). Currencies come from base_currency_of /
// quote_currency_of (common/config.hpp).
class CurrencyConverter {
 public:
  explicit CurrencyConverter(const std::vector<Instrument>& instruments);

  // How many units of `to` one unit of `from` is worth; std::nullopt when no
  // path is known (or either currency is empty). A mark <= 0 or not finite
  // counts as no mark.
  std::optional<double> rate(std::string_view from, std::string_view to, const Marks& marks) const;

 private:
  struct Pair {
    std::string symbol;
    std::string base;
    std::string quote;
  };
  std::vector<Pair> pairs_;  // config order: the first usable one wins
};

// One instrument's share of the portfolio. position .. unrealized_pnl in the
// quote currency; *_account in the account currency (0 unless converted).
struct InstrumentValue {
  std::string instrument;
  std::string quote_currency;
  double position = 0;
  double avg_price = 0;
  double mark_price = 0;  // 0 = no usable mark
  double realized_pnl = 0;
  double unrealized_pnl = 0;   // (mark - avg_price) x position; 0 without a mark
  double rate_to_account = 0;  // 0 = no conversion known
  double realized_account = 0;
  double unrealized_account = 0;
  bool converted = false;  // the rate is known and the account figures are set
  bool operator==(const InstrumentValue&) const = default;
};

// The whole book in the account currency.
struct Valuation {
  std::vector<InstrumentValue> instruments;
  double realized_pnl = 0;    // account currency, converted lines only
  double unrealized_pnl = 0;  // account currency, converted lines only
  double equity = 0;          // config.portfolio.capital + realized_pnl + unrealized_pnl
  bool complete = true;       // false: a line with PnL could not be converted (left out)
};

// Values the book: one line per configured instrument (config order), then
// every other instrument the book holds (name order; its quote currency from
// a 6-letter symbol, else unknown). Unrealised = (mark - avg_price) x
// position in the quote currency: 0 without a mark, for a flat position, and
// for a position with no entry price (avg_price 0: one adopted from the
// broker while flat, whose cost is not known; valuing it from 0 would show
// its whole notional as profit). Account figures at the
// quote -> account rate; a line whose rate is unknown is left out of the
// totals and makes complete false, unless its PnL is all zero (nothing is
// missing then).
Valuation value(const PositionBook& book, const Marks& marks, const Config& config);

// The UTC day an instant belongs to, "YYYY-MM-DD" (floored: an instant
// before 1970 belongs to the day it falls in, not to the day after).
std::string utc_day(std::int64_t ts_ns);
// The first nanosecond of that UTC day.
std::int64_t utc_day_start_ns(std::int64_t ts_ns);

// The daily loss limit: true when daily_pnl < -max_daily_loss and the limit
// is on (max_daily_loss > 0); a NaN on either side never breaches.
bool daily_loss_breached(double daily_pnl, double max_daily_loss) noexcept;

// One InstrumentPnl per line of the valuation, in its order, stamped ts_ns.
std::vector<proto::InstrumentPnl> pnl_messages(const Valuation& v, std::int64_t ts_ns);

// The totals as a PortfolioEvent; the daily figures, the trading state and
// the open-order count are the caller's.
proto::PortfolioEvent portfolio_event(const Valuation& v, const Config& config, double daily_pnl,
                                      std::int64_t day_start_ns, proto::TradingState state,
                                      std::uint32_t open_orders, std::int64_t ts_ns);

}  // namespace tp::executor
