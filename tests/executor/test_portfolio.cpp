// The portfolio's pure parts: currency conversion, valuation of a position
// book in the account currency, the UTC day, the daily loss limit and the
// messages built from a valuation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/config.hpp"
#include "executor/portfolio.hpp"
#include "executor/position_book.hpp"

using namespace tp::executor;
using tp::proto::Side;

namespace {

constexpr std::int64_t day_ns = 86'400'000'000'000;
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

tp::Instrument instrument(std::string symbol) {
  tp::Instrument i;
  i.symbol = std::move(symbol);
  return i;
}

tp::Config config_of(std::vector<std::string> symbols, std::string account = "USD",
                     double capital = 1000000) {
  tp::Config c;
  c.instruments.clear();
  for (auto& s : symbols) c.instruments.push_back(instrument(std::move(s)));
  c.portfolio.account_currency = std::move(account);
  c.portfolio.capital = capital;
  return c;
}

const InstrumentValue& line_of(const Valuation& v, std::string_view symbol) {
  for (const auto& line : v.instruments)
    if (line.instrument == symbol) return line;
  ADD_FAILURE() << "no line for " << symbol;
  static const InstrumentValue none;
  return none;
}

}  // namespace

// ------------------------------------------------------------------ conversion

TEST(CurrencyConverter, SameCurrencyIsOneWithoutAnyMark) {
  CurrencyConverter c({});
  EXPECT_EQ(c.rate("USD", "USD", {}), 1.0);
}

TEST(CurrencyConverter, DirectPairAtItsMidInversePairAtOneOverMid) {
  CurrencyConverter c({instrument("EURUSD"), instrument("USDJPY")});
  const Marks marks{{"EURUSD", 1.08}, {"USDJPY", 150.0}};
  EXPECT_DOUBLE_EQ(*c.rate("EUR", "USD", marks), 1.08);
  EXPECT_DOUBLE_EQ(*c.rate("USD", "EUR", marks), 1.0 / 1.08);
  EXPECT_DOUBLE_EQ(*c.rate("JPY", "USD", marks), 1.0 / 150.0);
  EXPECT_DOUBLE_EQ(*c.rate("USD", "JPY", marks), 150.0);
}

TEST(CurrencyConverter, UnknownWithoutAPairOrItsMark) {
  CurrencyConverter c({instrument("EURUSD"), instrument("USDJPY")});
  const Marks marks{{"EURUSD", 1.08}};
  EXPECT_FALSE(c.rate("JPY", "USD", marks)) << "USDJPY has no mark";
  EXPECT_FALSE(c.rate("EUR", "JPY", marks)) << "no chain through a third currency";
  EXPECT_FALSE(c.rate("GBP", "USD", marks));
  EXPECT_FALSE(c.rate("", "USD", marks));
  EXPECT_FALSE(c.rate("", "", marks)) << "an unknown currency is not the account's";
}

TEST(CurrencyConverter, AMarkNotPositiveOrNotFiniteIsNoMark) {
  CurrencyConverter c({instrument("EURUSD")});
  for (double bad : {0.0, -1.08, not_a_number, inf, -inf}) {
    EXPECT_FALSE(c.rate("EUR", "USD", Marks{{"EURUSD", bad}})) << bad;
    EXPECT_FALSE(c.rate("USD", "EUR", Marks{{"EURUSD", bad}})) << bad;
  }
  // A denormal mid would make the inverse infinite.
  EXPECT_FALSE(c.rate("USD", "EUR", Marks{{"EURUSD", std::numeric_limits<double>::denorm_min()}}));
}

TEST(CurrencyConverter, FallsBackToTheInversePairWhenTheDirectOneHasNoMark) {
  // Two routes for GBP -> USD: the direct one without a mark, the inverse with one.
  tp::Instrument inverse = instrument("USD_GBP");
  inverse.base_currency = "USD";
  inverse.quote_currency = "GBP";
  CurrencyConverter c({instrument("GBPUSD"), inverse});
  EXPECT_DOUBLE_EQ(*c.rate("GBP", "USD", Marks{{"USD_GBP", 0.8}}), 1.25);
  EXPECT_DOUBLE_EQ(*c.rate("GBP", "USD", Marks{{"USD_GBP", 0.8}, {"GBPUSD", 1.3}}), 1.3) << "direct first";
}

TEST(CurrencyConverter, ConfiguredCurrenciesOverTheSymbol) {
  tp::Instrument gold = instrument("GOLD");
  gold.base_currency = "XAU";
  gold.quote_currency = "USD";
  tp::Instrument index = instrument("SPX500");  // no base currency: prices nothing
  index.quote_currency = "USD";
  CurrencyConverter c({gold, index});
  EXPECT_DOUBLE_EQ(*c.rate("XAU", "USD", Marks{{"GOLD", 2000.0}}), 2000.0);
  EXPECT_FALSE(c.rate("", "USD", Marks{{"SPX500", 5000.0}}));
}

// ------------------------------------------------------------------ valuation

TEST(Portfolio, UsdAccountEurUsdLongUnrealisedTenDollars) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  const auto v = value(book, Marks{{"EURUSD", 1.09}}, config_of({"EURUSD"}));
  ASSERT_EQ(v.instruments.size(), 1u);
  const auto& l = v.instruments[0];
  EXPECT_EQ(l.quote_currency, "USD");
  EXPECT_DOUBLE_EQ(l.position, 1000);
  EXPECT_DOUBLE_EQ(l.avg_price, 1.08);
  EXPECT_DOUBLE_EQ(l.mark_price, 1.09);
  EXPECT_NEAR(l.unrealized_pnl, 10.0, 1e-9);
  EXPECT_TRUE(l.converted);
  EXPECT_EQ(l.rate_to_account, 1.0);
  EXPECT_NEAR(l.unrealized_account, 10.0, 1e-9);
  EXPECT_NEAR(v.unrealized_pnl, 10.0, 1e-9);
  EXPECT_EQ(v.realized_pnl, 0);
  EXPECT_TRUE(v.complete);
}

TEST(Portfolio, ShortPositionGainsWhenTheMarkFalls) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::sell, 1000, 1.09);
  const auto v = value(book, Marks{{"EURUSD", 1.08}}, config_of({"EURUSD"}));
  EXPECT_NEAR(v.unrealized_pnl, 10.0, 1e-9);
}

TEST(Portfolio, UsdJpyPnlInYenConvertedAtOneOverMid) {
  PositionBook book;
  book.apply_fill("USDJPY", Side::buy, 1000, 150.0);
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  const Marks marks{{"USDJPY", 151.0}, {"EURUSD", 1.09}};
  const auto v = value(book, marks, config_of({"EURUSD", "USDJPY"}));
  const auto& jpy = line_of(v, "USDJPY");
  EXPECT_EQ(jpy.quote_currency, "JPY");
  EXPECT_NEAR(jpy.unrealized_pnl, 1000.0, 1e-6) << "yen";
  EXPECT_DOUBLE_EQ(jpy.rate_to_account, 1.0 / 151.0);
  EXPECT_NEAR(jpy.unrealized_account, 1000.0 / 151.0, 1e-9) << "dollars";
  // Dollars added to dollars, not yen beside dollars.
  EXPECT_NEAR(v.unrealized_pnl, 10.0 + 1000.0 / 151.0, 1e-9);
  EXPECT_TRUE(v.complete);
}

TEST(Portfolio, CrossPairConvertedThroughItsQuoteCurrencysPair) {
  // EURGBP's PnL is in pounds; the USD account converts them with GBPUSD.
  PositionBook book;
  book.apply_fill("EURGBP", Side::buy, 1000, 0.85);
  const Marks marks{{"EURGBP", 0.86}, {"GBPUSD", 1.25}};
  const auto v = value(book, marks, config_of({"EURGBP", "GBPUSD"}));
  const auto& l = line_of(v, "EURGBP");
  EXPECT_EQ(l.quote_currency, "GBP");
  EXPECT_NEAR(l.unrealized_pnl, 10.0, 1e-9);
  EXPECT_DOUBLE_EQ(l.rate_to_account, 1.25);
  EXPECT_NEAR(l.unrealized_account, 12.5, 1e-9);
  EXPECT_NEAR(v.unrealized_pnl, 12.5, 1e-9);
  EXPECT_TRUE(v.complete);
}

TEST(Portfolio, CurrencyWithNoPathLeftOutOfTheTotalsTheRestStillSummed) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  book.apply_fill("CHFSEK", Side::buy, 1000, 11.0);
  const Marks marks{{"EURUSD", 1.09}, {"CHFSEK", 11.5}};
  const auto v = value(book, marks, config_of({"EURUSD", "CHFSEK"}, "USD", 500));
  const auto& sek = line_of(v, "CHFSEK");
  EXPECT_NEAR(sek.unrealized_pnl, 500.0, 1e-9) << "still valued in its own currency";
  EXPECT_FALSE(sek.converted);
  EXPECT_EQ(sek.rate_to_account, 0);
  EXPECT_EQ(sek.unrealized_account, 0);
  EXPECT_EQ(sek.realized_account, 0);
  EXPECT_FALSE(v.complete);
  EXPECT_NEAR(v.unrealized_pnl, 10.0, 1e-9) << "the EURUSD line alone";
  EXPECT_NEAR(v.equity, 510.0, 1e-9);
}

TEST(Portfolio, UnconvertibleLineWithNoPnlKeepsTheValuationComplete) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  // CHFSEK configured, never traded, marked: nothing of it is missing.
  const auto v = value(book, Marks{{"EURUSD", 1.09}, {"CHFSEK", 11.5}}, config_of({"EURUSD", "CHFSEK"}));
  EXPECT_FALSE(line_of(v, "CHFSEK").converted);
  EXPECT_TRUE(v.complete);
}

TEST(Portfolio, RealisedFromTheBookAfterARoundTrip) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  book.apply_fill("EURUSD", Side::sell, 400, 1.10);  // realises 8, 600 left
  const auto v = value(book, Marks{{"EURUSD", 1.09}}, config_of({"EURUSD"}));
  const auto& l = v.instruments.at(0);
  EXPECT_DOUBLE_EQ(l.position, 600);
  EXPECT_NEAR(l.realized_pnl, 8.0, 1e-9);
  EXPECT_NEAR(l.unrealized_pnl, 6.0, 1e-9);
  EXPECT_NEAR(v.realized_pnl, 8.0, 1e-9);
  EXPECT_NEAR(v.unrealized_pnl, 6.0, 1e-9);
}

TEST(Portfolio, FlatPositionHasRealisedOnly) {
  PositionBook book;
  book.apply_fill("USDJPY", Side::buy, 1000, 150.0);
  book.apply_fill("USDJPY", Side::sell, 1000, 152.0);  // +2000 yen
  const auto v = value(book, Marks{{"USDJPY", 160.0}}, config_of({"USDJPY"}));
  const auto& l = v.instruments.at(0);
  EXPECT_EQ(l.position, 0);
  EXPECT_EQ(l.avg_price, 0);
  EXPECT_EQ(l.unrealized_pnl, 0) << "a flat position has nothing to mark";
  EXPECT_NEAR(l.realized_pnl, 2000.0, 1e-9);
  EXPECT_NEAR(l.realized_account, 2000.0 / 160.0, 1e-9);
  EXPECT_NEAR(v.realized_pnl, 12.5, 1e-9);
  EXPECT_EQ(v.unrealized_pnl, 0);
}

TEST(Portfolio, MissingOrBadMarkGivesNoUnrealised) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  for (const Marks& marks :
       {Marks{}, Marks{{"EURUSD", not_a_number}}, Marks{{"EURUSD", 0.0}}, Marks{{"EURUSD", -1.0}}}) {
    const auto v = value(book, marks, config_of({"EURUSD"}));
    const auto& l = v.instruments.at(0);
    EXPECT_EQ(l.mark_price, 0);
    EXPECT_EQ(l.unrealized_pnl, 0);
    EXPECT_TRUE(l.converted) << "USD to USD needs no mark";
    EXPECT_EQ(v.unrealized_pnl, 0);
    EXPECT_TRUE(v.complete);
  }
}

TEST(Portfolio, AdoptedPositionWithoutEntryPriceHasNoUnrealised) {
  PositionBook book;
  book.adopt("EURUSD", 1000);  // the broker's figure taken while flat: cost unknown
  const auto v = value(book, Marks{{"EURUSD", 1.09}}, config_of({"EURUSD"}));
  EXPECT_EQ(v.instruments.at(0).unrealized_pnl, 0) << "not 1090 of invented profit";
}

TEST(Portfolio, EquityIsCapitalPlusRealisedPlusUnrealised) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  book.apply_fill("EURUSD", Side::sell, 500, 1.06);  // realises -10, 500 left
  const auto v = value(book, Marks{{"EURUSD", 1.12}}, config_of({"EURUSD"}, "USD", 25000));
  EXPECT_NEAR(v.realized_pnl, -10.0, 1e-9);
  EXPECT_NEAR(v.unrealized_pnl, 20.0, 1e-9);
  EXPECT_NEAR(v.equity, 25010.0, 1e-9);
  EXPECT_DOUBLE_EQ(value(PositionBook{}, {}, config_of({"EURUSD"}, "USD", 25000)).equity, 25000.0);
}

TEST(Portfolio, AccountCurrencyOtherThanUsd) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  const auto v = value(book, Marks{{"EURUSD", 1.10}}, config_of({"EURUSD"}, "EUR"));
  EXPECT_NEAR(v.unrealized_pnl, 20.0 / 1.10, 1e-9) << "dollars into euros at 1 / EURUSD";
}

TEST(Portfolio, ConfiguredLinesInConfigOrderThenOtherHeldInstruments) {
  PositionBook book;
  book.apply_fill("AUDUSD", Side::buy, 100, 0.65);  // held, no longer configured
  book.apply_fill("USDJPY", Side::buy, 100, 150.0);
  const auto v = value(book, Marks{{"AUDUSD", 0.66}}, config_of({"USDJPY", "EURUSD", "USDJPY"}));
  ASSERT_EQ(v.instruments.size(), 3u);
  EXPECT_EQ(v.instruments[0].instrument, "USDJPY");
  EXPECT_EQ(v.instruments[1].instrument, "EURUSD");
  EXPECT_EQ(v.instruments[2].instrument, "AUDUSD");
  EXPECT_EQ(v.instruments[2].quote_currency, "USD") << "from the symbol's shape";
  EXPECT_NEAR(v.unrealized_pnl, 1.0, 1e-9);
  EXPECT_EQ(v.instruments[1].position, 0) << "configured, never traded: a line of zeros";
}

TEST(Portfolio, HeldInstrumentOfUnknownCurrencyMakesItIncomplete) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  book.apply_fill("EURUSD", Side::sell, 1000, 1.09);
  book.apply_fill("OLDTHING", Side::buy, 10, 5.0);
  book.apply_fill("OLDTHING", Side::sell, 10, 6.0);
  const auto v = value(book, {}, config_of({"EURUSD"}));
  EXPECT_EQ(line_of(v, "OLDTHING").quote_currency, "");
  EXPECT_FALSE(line_of(v, "OLDTHING").converted);
  EXPECT_FALSE(v.complete);
  EXPECT_NEAR(v.realized_pnl, 10.0, 1e-9);
}

// ------------------------------------------------------------------ UTC day

TEST(UtcDay, EpochAndTheNanosecondBefore) {
  EXPECT_EQ(utc_day(0), "1970-01-01");
  EXPECT_EQ(utc_day_start_ns(0), 0);
  EXPECT_EQ(utc_day(-1), "1969-12-31");
  EXPECT_EQ(utc_day_start_ns(-1), -day_ns);
  EXPECT_EQ(utc_day(-day_ns), "1969-12-31");
  EXPECT_EQ(utc_day_start_ns(-day_ns), -day_ns);
  EXPECT_EQ(utc_day(-day_ns - 1), "1969-12-30");
}

TEST(UtcDay, LastNanosecondOfADayAndMidnight) {
  const std::int64_t midnight = 1795737600000000000;  // 2026-11-27T00:00:00Z
  EXPECT_EQ(utc_day(midnight - 1), "2026-11-26");     // 23:59:59.999999999
  EXPECT_EQ(utc_day_start_ns(midnight - 1), midnight - day_ns);
  EXPECT_EQ(utc_day(midnight), "2026-11-27");
  EXPECT_EQ(utc_day_start_ns(midnight), midnight);
  EXPECT_EQ(utc_day_start_ns(midnight + 12 * 3600 * 1'000'000'000LL), midnight);
}

TEST(UtcDay, LeapDay) {
  const std::int64_t feb29 = 1709164800000000000;  // 2024-02-29T00:00:00Z
  EXPECT_EQ(utc_day(feb29 - 1), "2024-02-28");
  EXPECT_EQ(utc_day(feb29), "2024-02-29");
  EXPECT_EQ(utc_day(feb29 + day_ns), "2024-03-01");
}

TEST(UtcDay, EndsOfTheRange) {
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(utc_day(lo), "1677-09-21");
  EXPECT_EQ(utc_day_start_ns(lo), lo) << "the day starts before the range: clamped";
  EXPECT_EQ(utc_day(hi), "2262-04-11");
  EXPECT_LE(utc_day_start_ns(hi), hi);
  EXPECT_GT(utc_day_start_ns(hi), hi - day_ns);
}

// ------------------------------------------------------------------ loss limit

TEST(DailyLossLimit, BreachedOnlyStrictlyBelowMinusTheLimit) {
  EXPECT_FALSE(daily_loss_breached(-100.0, 100.0)) << "at the limit";
  EXPECT_TRUE(daily_loss_breached(-100.01, 100.0));
  EXPECT_FALSE(daily_loss_breached(-99.99, 100.0));
  EXPECT_FALSE(daily_loss_breached(1e9, 100.0));
}

TEST(DailyLossLimit, ZeroOrNegativeLimitIsOff) {
  EXPECT_FALSE(daily_loss_breached(-1e12, 0.0));
  EXPECT_FALSE(daily_loss_breached(-1e12, -5.0));
  EXPECT_FALSE(daily_loss_breached(-inf, 0.0));
}

TEST(DailyLossLimit, NanNeverBreaches) {
  EXPECT_FALSE(daily_loss_breached(not_a_number, 100.0));
  EXPECT_FALSE(daily_loss_breached(-1e12, not_a_number));
  EXPECT_TRUE(daily_loss_breached(-inf, 100.0));
}

// ------------------------------------------------------------------ messages

TEST(PortfolioMessages, OneInstrumentPnlPerLineInOrder) {
  PositionBook book;
  book.apply_fill("USDJPY", Side::buy, 1000, 150.0);
  book.apply_fill("USDJPY", Side::sell, 500, 151.0);
  const auto v = value(book, Marks{{"USDJPY", 152.0}}, config_of({"EURUSD", "USDJPY"}));
  const auto msgs = pnl_messages(v, 42);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].instrument, "EURUSD");
  const auto& m = msgs[1];
  const auto& l = v.instruments[1];
  EXPECT_EQ(m.instrument, "USDJPY");
  EXPECT_EQ(m.quote_currency, "JPY");
  EXPECT_EQ(m.position, 500);
  EXPECT_EQ(m.avg_price, 150.0);
  EXPECT_EQ(m.mark_price, 152.0);
  EXPECT_EQ(m.realized_pnl, l.realized_pnl);
  EXPECT_NEAR(m.realized_pnl, 500.0, 1e-9);
  EXPECT_NEAR(m.unrealized_pnl, 1000.0, 1e-9);
  EXPECT_EQ(m.rate_to_account, 1.0 / 152.0);
  EXPECT_EQ(m.realized_account, l.realized_account);
  EXPECT_EQ(m.unrealized_account, l.unrealized_account);
  EXPECT_EQ(m.ts_ns, 42);
}

TEST(PortfolioMessages, PortfolioEventCarriesTheTotalsAndTheCallersFigures) {
  PositionBook book;
  book.apply_fill("EURUSD", Side::buy, 1000, 1.08);
  book.apply_fill("CHFSEK", Side::buy, 1000, 11.0);
  const auto v =
      value(book, Marks{{"EURUSD", 1.09}, {"CHFSEK", 11.5}}, config_of({"EURUSD", "CHFSEK"}, "USD", 100));
  const auto e = portfolio_event(v, config_of({}, "USD"), -3.5, 1795737600000000000,
                                 tp::proto::TradingState::reducing, 7, 1795737600000000123);
  EXPECT_EQ(e.account_currency, "USD");
  EXPECT_EQ(e.equity, v.equity);
  EXPECT_NEAR(e.equity, 110.0, 1e-9);
  EXPECT_EQ(e.realized_pnl, v.realized_pnl);
  EXPECT_EQ(e.unrealized_pnl, v.unrealized_pnl);
  EXPECT_EQ(e.daily_pnl, -3.5);
  EXPECT_EQ(e.day_start_ns, 1795737600000000000);
  EXPECT_FALSE(e.complete);
  EXPECT_EQ(e.state, tp::proto::TradingState::reducing);
  EXPECT_EQ(e.open_orders, 7u);
  EXPECT_EQ(e.ts_ns, 1795737600000000123);
}
