// ema_trend: an example C++ strategy plugin. It follows the trend of each
// instrument with two exponential moving averages of the mid price and holds
// a target position: +lot while the fast average is above the slow one by
// more than a band, -lot while it is below by more than the band, unchanged
// in between (the band keeps a flat market from flipping it on every tick).
//
// What it shows of the API (tp/strategy.hpp): parameters read and checked in
// on_start, per-instrument state for the instruments of this shard, the
// group's position from the runtime (rebuilt after a restart) instead of a
// count of its own, one signal in flight per instrument, fills and refusals
// from on_order, a cancel of an order the trend has turned against (when the
// group trades resting limit orders: order_type = "limit", time_in_force =
// "gtc"), feed events, a summary logged by a timer.
//
// Build it against the installed SDK: see README.md beside this file.
#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>

#include "tp/indicators.hpp"
#include "tp/strategy.hpp"

namespace {

class EmaTrend final : public tp::Strategy {
 public:
  void on_start() override {
    const auto& params = ctx().params();
    fast_ = params.integer("fast", 8);
    slow_ = params.integer("slow", 21);
    band_bps_ = params.number("band_bps", 0.5);
    lot_ = params.number("lot", 1000);
    const auto summary_ms = params.integer("summary_ms", 10'000);
    params.require(fast_ >= 1, "fast", "at least 1");
    params.require(slow_ > fast_, "slow", "greater than fast");
    params.require(band_bps_ >= 0, "band_bps", "0 or more");
    params.require(lot_ > 0, "lot", "greater than 0");
    params.require(summary_ms >= 100, "summary_ms", "at least 100");

    for (const auto& instrument : ctx().instruments()) books_.emplace(instrument, fresh_book());
    ctx().every(summary_ms, [this] { log_summary(); });
    std::ostringstream s;
    s << "ema_trend: EMA(" << fast_ << ") vs EMA(" << slow_ << "), band " << band_bps_ << " bp, lot " << lot_
      << ", " << books_.size() << " instrument(s)";
    ctx().log(tp::LogLevel::info, s.str());
  }

  void on_tick(const tp::Tick& tick) override {
    auto it = books_.find(tick.instrument);
    if (it == books_.end()) return;  // not one of this shard's
    Book& book = it->second;
    ++ticks_;
    const double mid = tick.mid();
    book.fast.update(mid);
    book.slow.update(mid);
    if (!book.slow.ready()) return;

    const double gap_bps = (book.fast.value() - book.slow.value()) / book.slow.value() * 1e4;
    if (gap_bps > band_bps_) book.trend = +1;
    if (gap_bps < -band_bps_) book.trend = -1;
    if (book.trend == 0) return;
    // A resting order bought into a trend that has turned is cancelled; its
    // CANCELED update (or the fill that came first) ends it as usual.
    if (!book.in_flight.empty() && !book.cancel_asked && book.in_flight_side != side_of(book.trend))
      book.cancel_asked = ctx().cancel(book.in_flight, "ema_trend: trend turned");
    trade_towards(tick.instrument, book, book.trend * lot_);
  }

  void on_order(const tp::OrderUpdate& update) override {
    auto it = books_.find(update.instrument);
    if (it == books_.end()) return;
    Book& book = it->second;
    if (update.status == tp::OrderStatus::filled || update.status == tp::OrderStatus::partially_filled) {
      ++fills_;
      std::ostringstream s;
      s << "ema_trend: " << (update.side == tp::Side::buy ? "bought " : "sold ") << update.filled_quantity
        << " " << update.instrument << " at " << update.fill_price << ", position now "
        << ctx().position(update.instrument);
      ctx().log(tp::LogLevel::info, s.str());
    }
    if (update.refused) {
      ++refused_;
      ctx().log(tp::LogLevel::warn, "ema_trend: signal " + std::string(update.signal_id) +
                                        " refused: " + std::string(update.reason));
    }
    // Once the order is done, the position says where we stand: the next
    // tick may trade again.
    if (update.signal_id == book.in_flight && done(update)) book.in_flight.clear();
  }

  void on_feed(const tp::FeedEvent& event) override {
    switch (event.kind) {
      case tp::FeedEventKind::restarted:
        // The gateway's price series starts again: averages over the old
        // one would mix two series.
        for (auto& [instrument, book] : books_) book = fresh_book();
        ctx().log(tp::LogLevel::info, "ema_trend: feed restarted, averages reset");
        break;
      case tp::FeedEventKind::gap:
        // A few lost ticks move an EMA little; keep trading on it.
        ctx().log(tp::LogLevel::info, "ema_trend: " + std::to_string(event.missed) + " tick(s) of " +
                                          std::string(event.instrument) + " lost");
        break;
      case tp::FeedEventKind::dead:
        ctx().log(tp::LogLevel::warn, "ema_trend: feed dead, no signals until it is back");
        break;
      case tp::FeedEventKind::alive:
        ctx().log(tp::LogLevel::info, "ema_trend: feed alive");
        break;
    }
  }

  void on_stop() override { log_summary(); }

 private:
  struct Book {
    Book(std::size_t fast_n, std::size_t slow_n) : fast(fast_n), slow(slow_n) {}
    tp::Ema fast;
    tp::Ema slow;
    int trend = 0;                  // +1 up, -1 down, 0 not yet known
    std::string in_flight;          // the id of the signal not yet done, if any
    std::int64_t in_flight_ns = 0;  // when it was emitted
    tp::Side in_flight_side = tp::Side::buy;
    bool cancel_asked = false;  // for in_flight
  };

  static tp::Side side_of(int trend) { return trend > 0 ? tp::Side::buy : tp::Side::sell; }

  // A signal the runtime gave up on may never come back as an order update;
  // after this long the position is trusted again.
  static constexpr std::int64_t in_flight_timeout_ns = 30'000'000'000;

  // Refused, or final: FILLED, REJECTED, CANCELED, EXPIRED.
  static bool done(const tp::OrderUpdate& u) { return u.refused || tp::is_final(u.status); }

  Book fresh_book() const { return Book(static_cast<std::size_t>(fast_), static_cast<std::size_t>(slow_)); }

  void trade_towards(std::string_view instrument, Book& book, double target) {
    const auto now = ctx().now_ns();
    if (!book.in_flight.empty() && now - book.in_flight_ns < in_flight_timeout_ns) return;
    // Before the executor's first report after a (re)start the position is
    // not known: trading on 0 could double it.
    if (!ctx().position_known(instrument)) return;
    const double delta = target - ctx().position(instrument);
    if (std::abs(delta) < 1e-9 * lot_) return;

    tp::SignalRequest request;
    request.instrument = instrument;
    request.side = delta > 0 ? tp::Side::buy : tp::Side::sell;
    request.quantity = std::abs(delta);
    std::string id = ctx().emit(request);
    if (id.empty()) return;  // not sent (feed dead, ...): the next tick tries again
    ++signals_;
    book.in_flight = std::move(id);
    book.in_flight_ns = now;
    book.in_flight_side = request.side;
    book.cancel_asked = false;
  }

  void log_summary() {
    std::ostringstream s;
    s << "ema_trend: " << ticks_ << " ticks, " << signals_ << " signals, " << fills_ << " fills, " << refused_
      << " refused; positions";
    for (const auto& [instrument, book] : books_) {
      s << " " << instrument << "=";
      if (ctx().position_known(instrument))
        s << ctx().position(instrument);
      else
        s << "?";
    }
    ctx().log(tp::LogLevel::info, s.str());
  }

  std::int64_t fast_ = 0;
  std::int64_t slow_ = 0;
  double band_bps_ = 0;
  double lot_ = 0;
  std::map<std::string, Book, std::less<>> books_;
  std::uint64_t ticks_ = 0;
  std::uint64_t signals_ = 0;
  std::uint64_t fills_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace

TP_STRATEGY_PLUGIN(EmaTrend, "ema_trend")
