// The portfolio's arithmetic: marks, currency conversion, valuation, the UTC
// day and the messages built from a valuation.
#include "executor/portfolio.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

namespace tp::executor {
namespace {

constexpr std::int64_t ns_per_day = 86'400'000'000'000;

// Days since 1970-01-01, floored: -1 ns is 1969-12-31, not day 0.
std::int64_t epoch_day(std::int64_t ts_ns) noexcept {
  std::int64_t d = ts_ns / ns_per_day;
  if (ts_ns % ns_per_day < 0) --d;
  return d;
}

}  // namespace

std::optional<double> mark_of(const Marks& marks, std::string_view instrument) {
  auto it = marks.find(instrument);
  if (it == marks.end() || !std::isfinite(it->second) || !(it->second > 0)) return std::nullopt;
  return it->second;
}

CurrencyConverter::CurrencyConverter(const std::vector<Instrument>& instruments) {
  for (const auto& i : instruments) {
    Pair p{i.symbol, base_currency_of(i), quote_currency_of(i)};
    // A symbol with no base currency (an index, a stock) prices nothing in
    // another currency: it can value a line but never convert one.
    if (!p.base.empty() && !p.quote.empty()) pairs_.push_back(std::move(p));
  }
}

std::optional<double> CurrencyConverter::rate(std::string_view from, std::string_view to,
                                              const Marks& marks) const {
  if (from.empty() || to.empty()) return std::nullopt;
  if (from == to) return 1.0;
  for (const auto& p : pairs_)
    if (p.base == from && p.quote == to)
      if (auto mid = mark_of(marks, p.symbol)) return *mid;
  for (const auto& p : pairs_)
    if (p.base == to && p.quote == from)
      if (auto mid = mark_of(marks, p.symbol)) {
        // A denormal mid would give an infinite rate: no usable conversion.
        const double inverse = 1.0 / *mid;
        if (std::isfinite(inverse)) return inverse;
      }
  return std::nullopt;
}

Valuation value(const PositionBook& book, const Marks& marks, const Config& config) {
  const CurrencyConverter converter(config.instruments);
  const std::string& account = config.portfolio.account_currency;
  Valuation v;
  std::set<std::string, std::less<>> listed;

  auto add_line = [&](const std::string& symbol, std::string quote) {
    if (!listed.insert(symbol).second) return;  // an instrument configured twice: one line
    InstrumentValue line;
    line.instrument = symbol;
    line.quote_currency = std::move(quote);
    if (const Position* p = book.find(symbol)) {
      line.position = p->position;
      line.avg_price = p->avg_price;
      line.realized_pnl = p->realized_pnl;
    }
    if (auto mark = mark_of(marks, symbol)) {
      line.mark_price = *mark;
      if (line.position != 0 && line.avg_price != 0)
        line.unrealized_pnl = (line.mark_price - line.avg_price) * line.position;
    }
    if (auto rate = converter.rate(line.quote_currency, account, marks)) {
      line.converted = true;
      line.rate_to_account = *rate;
      line.realized_account = line.realized_pnl * *rate;
      line.unrealized_account = line.unrealized_pnl * *rate;
      v.realized_pnl += line.realized_account;
      v.unrealized_pnl += line.unrealized_account;
    } else if (line.realized_pnl != 0 || line.unrealized_pnl != 0) {
      v.complete = false;
    }
    v.instruments.push_back(std::move(line));
  };

  for (const auto& i : config.instruments) add_line(i.symbol, quote_currency_of(i));
  // Held but no longer configured (a position from an older deployment): its
  // currencies only from its symbol's shape.
  for (const auto& [symbol, position] : book.all()) {
    Instrument held;
    held.symbol = symbol;
    add_line(symbol, quote_currency_of(held));
  }

  v.equity = config.portfolio.capital + v.realized_pnl + v.unrealized_pnl;
  return v;
}

std::string utc_day(std::int64_t ts_ns) {
  using namespace std::chrono;
  const year_month_day ymd{sys_days{days{epoch_day(ts_ns)}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

std::int64_t utc_day_start_ns(std::int64_t ts_ns) {
  std::int64_t start = 0;
  // The first day int64 nanoseconds reach (1677-09-21) starts before their
  // range: its start is the earliest representable instant.
  if (__builtin_mul_overflow(epoch_day(ts_ns), ns_per_day, &start))
    return std::numeric_limits<std::int64_t>::min();
  return start;
}

bool daily_loss_breached(double daily_pnl, double max_daily_loss) noexcept {
  return max_daily_loss > 0 && daily_pnl < -max_daily_loss;
}

std::vector<proto::InstrumentPnl> pnl_messages(const Valuation& v, std::int64_t ts_ns) {
  std::vector<proto::InstrumentPnl> out;
  out.reserve(v.instruments.size());
  for (const auto& line : v.instruments) {
    proto::InstrumentPnl m;
    m.instrument = line.instrument;
    m.quote_currency = line.quote_currency;
    m.position = line.position;
    m.avg_price = line.avg_price;
    m.mark_price = line.mark_price;
    m.realized_pnl = line.realized_pnl;
    m.unrealized_pnl = line.unrealized_pnl;
    m.rate_to_account = line.rate_to_account;
    m.realized_account = line.realized_account;
    m.unrealized_account = line.unrealized_account;
    m.ts_ns = ts_ns;
    out.push_back(std::move(m));
  }
  return out;
}

proto::PortfolioEvent portfolio_event(const Valuation& v, const Config& config, double daily_pnl,
                                      std::int64_t day_start_ns, proto::TradingState state,
                                      std::uint32_t open_orders, std::int64_t ts_ns) {
  proto::PortfolioEvent e;
  e.account_currency = config.portfolio.account_currency;
  e.equity = v.equity;
  e.realized_pnl = v.realized_pnl;
  e.unrealized_pnl = v.unrealized_pnl;
  e.daily_pnl = daily_pnl;
  e.day_start_ns = day_start_ns;
  e.complete = v.complete;
  e.state = state;
  e.open_orders = open_orders;
  e.ts_ns = ts_ns;
  return e;
}

}  // namespace tp::executor
