// The simulated broker: a broker_abi.h (revision 3) plugin that executes
// orders against the quotes it is given. It is the default plugin of
// dll_gateway and the reference for writing a real one.
//
// Matching. A MARKET order (always IOC) buys at the ask and sells at the bid,
// at most the displayed size (ask_volume for a buy, bid_volume for a sell;
// 0 = not known = no cap); the rest is CANCELED. A LIMIT buy is marketable
// when ask <= limit and fills at the ask (a sell when bid >= limit, at the
// bid): IOC fills what the displayed size allows and cancels the rest, GTC
// and GTD fill what they can and rest. Every later tick matches the resting
// orders of its instrument, oldest first, sharing that tick's displayed size;
// each such fill is a report naming the tick (quote_seq, quote_ts_ns). A GTD
// order expires at its good-till time, checked on every tick and every poll.
// The displayed size caps each order at submit; it is consumed only by the
// resting orders matched on one tick.
//
// Stale quotes: with max_quote_age_ms > 0, a quote older than that (now minus
// its ts_ns) is never filled against: a market order or an IOC limit is
// REJECTED ("stale quote: ..." or "no market data"), a GTC/GTD limit is
// accepted and rests without matching, and a tick that is already older than
// the bound (a backlog after a cut) matches nothing.
//
// Like a careless real broker it does NOT deduplicate client order ids: every
// submit is a new order, executed again. Keeping an id from reaching it twice
// is dll_gateway's job, and the journal lets tests count how often it
// happened. The one exception is an id that is still resting: a second order
// with it is REJECTED, as real venues refuse a live duplicate ClOrdID, so
// that later events, cancels and queries name one order unambiguously.
//
// Settings (all optional): latency_ms (per submit), reject_rate and
// partial_fill_rate (probabilities; a partial fill is an IOC order's, the
// rest CANCELED), seed, journal_path (the day book, see below),
// recent_orders (default 4096), max_quote_age_ms (default 2000, 0 = off),
// max_open_orders (default 10000; while that many rest, a GTC or GTD order
// is REJECTED).
//
// Journal (v2): one line per event, flushed per line:
//   ts kind id instrument side quantity status filled avg_price terms quote_seq reason
// kind ORDER is a submit received (exactly one per submit, with the state
// the submit answered), FILL, CANCEL and EXPIRE are later changes of a
// resting order (cumulative state after the change). terms is MARKET or
// LIMIT@<price>/<IOC|GTC|GTD>[@<good_till_ns>]. It is reloaded at create:
// positions from every fill, resting orders back into the book (they keep
// matching), queries answered for earlier orders. A revision-2 (v1) day book
// line ("ts id instrument side quantity status filled price reason") is
// still read, as a market ORDER. A line that cannot be written whole (a full
// disk) is cut off again and the change does not happen: a submit is refused,
// a fill waits for a later tick, an expiry for a later poll, a cancel is
// answered with the order still resting.
//
// Memory: resting orders are always in memory. Of the finished ones, with a
// journal only the last `recent_orders` are kept and an older one is looked
// up in the journal file (queries are rare: dll_gateway's own store answers
// repeats). Without a journal every order of the run is remembered
// (compactly, but without bound): give a journal_path to a long-running
// broker. Reports wait for dll_gateway's poll in a queue of at most
// max_queued_reports; while it is full, ticks match nothing and expiries
// wait (the "exchange" holds its fills), so nothing is dropped.
//
// Builds against broker_abi.h only (no pipeline code). One thread per
// instance, as the ABI promises; exceptions never cross the C boundary.
#include <dll_gateway/broker_abi.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// Reports held for dll_gateway's poll at most (see Memory above).
constexpr std::size_t max_queued_reports = 65536;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <std::size_t N>
void put(char (&dst)[N], const std::string& s) {
  std::size_t n = s.size() < N - 1 ? s.size() : N - 1;
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

template <std::size_t N>
std::string get(const char (&src)[N]) {
  return std::string(src, strnlen(src, N));
}

void put_error(char* error, std::size_t len, const std::string& msg) {
  if (!error || len == 0) return;
  std::size_t n = msg.size() < len - 1 ? msg.size() : len - 1;
  std::memcpy(error, msg.data(), n);
  error[n] = '\0';
}

// Journal fields are separated by spaces, so ids escape space, control
// characters and '%' as %XX.
std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c <= ' ' || c == '%' || c == 0x7f) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int hi = -1, lo = -1;
    if (s[i] == '%' && i + 2 < s.size()) {
      hi = hex_digit(s[i + 1]);
      lo = hex_digit(s[i + 2]);
    }
    if (hi >= 0 && lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

const char* status_name(int s) {
  switch (s) {
    case TP_BROKER_STATUS_NEW:
      return "NEW";
    case TP_BROKER_STATUS_ACCEPTED:
      return "ACCEPTED";
    case TP_BROKER_STATUS_PARTIALLY_FILLED:
      return "PARTIALLY_FILLED";
    case TP_BROKER_STATUS_FILLED:
      return "FILLED";
    case TP_BROKER_STATUS_REJECTED:
      return "REJECTED";
    case TP_BROKER_STATUS_CANCELED:
      return "CANCELED";
    case TP_BROKER_STATUS_EXPIRED:
      return "EXPIRED";
    default:
      return "UNKNOWN";
  }
}

int status_from_name(std::string_view n) {
  for (int s = TP_BROKER_STATUS_NEW; s <= TP_BROKER_STATUS_EXPIRED; ++s)
    if (s != TP_BROKER_STATUS_UNKNOWN && n == status_name(s)) return s;
  return 0;
}

bool is_resting(int status) {
  return status == TP_BROKER_STATUS_ACCEPTED || status == TP_BROKER_STATUS_PARTIALLY_FILLED;
}

// Parses the whole of `text` as a number; false on anything else.
bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return *end == '\0' && std::isfinite(out);
}

bool parse_uint(const std::string& text, unsigned long long& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(text.c_str(), &end, 10);
  return *end == '\0' && errno == 0;
}

bool parse_int(const std::string& text, long long& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(text.c_str(), &end, 10);
  return *end == '\0' && errno == 0;
}

// The shortest text that reads back as the same double.
std::string shortest(double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

struct Settings {
  unsigned long long latency_ms = 0;
  double reject_rate = 0;
  double partial_fill_rate = 0;
  unsigned long long seed = 7;
  std::string journal_path;
  unsigned long long recent_orders = 4096;  // finished orders kept in memory when there is a journal
  unsigned long long max_quote_age_ms = 2000;
  unsigned long long max_open_orders = 10000;
};

// Returns an empty string or the error naming the key.
std::string parse_settings(const char* const* keys, const char* const* values, std::size_t count,
                           Settings& s) {
  for (std::size_t i = 0; i < count; ++i) {
    std::string key = keys[i] ? keys[i] : "";
    std::string value = values[i] ? values[i] : "";
    auto bad = [&](const char* what) { return "setting " + key + ": '" + value + "' is not " + what; };
    if (key == "latency_ms") {
      if (!parse_uint(value, s.latency_ms) || s.latency_ms > 60000) return bad("an integer in [0, 60000]");
    } else if (key == "reject_rate") {
      if (!parse_double(value, s.reject_rate) || s.reject_rate < 0 || s.reject_rate > 1)
        return bad("a number in [0, 1]");
    } else if (key == "partial_fill_rate") {
      if (!parse_double(value, s.partial_fill_rate) || s.partial_fill_rate < 0 || s.partial_fill_rate > 1)
        return bad("a number in [0, 1]");
    } else if (key == "seed") {
      if (!parse_uint(value, s.seed)) return bad("a non-negative integer");
    } else if (key == "journal_path") {
      s.journal_path = value;
    } else if (key == "recent_orders") {
      if (!parse_uint(value, s.recent_orders) || s.recent_orders < 1) return bad("an integer >= 1");
    } else if (key == "max_quote_age_ms") {
      if (!parse_uint(value, s.max_quote_age_ms) || s.max_quote_age_ms > 86'400'000)
        return bad("an integer in [0, 86400000]");
    } else if (key == "max_open_orders") {
      if (!parse_uint(value, s.max_open_orders) || s.max_open_orders < 1) return bad("an integer >= 1");
    } else {
      return "unknown setting '" + key +
             "' (known: latency_ms, reject_rate, partial_fill_rate, seed, journal_path, recent_orders, "
             "max_quote_age_ms, max_open_orders)";
    }
  }
  return {};
}

// The last quote of an instrument, as tp_broker_quote (sizes 0 = not known).
struct Quote {
  double bid = 0;
  double ask = 0;
  double bid_volume = 0;
  double ask_volume = 0;
  std::int64_t ts_ns = 0;
  std::uint64_t seq = 0;
};

struct Terms {
  std::int32_t order_type = TP_BROKER_TYPE_MARKET;
  double limit_price = 0;
  std::int32_t time_in_force = TP_BROKER_TIF_IOC;
  std::int64_t good_till_ns = 0;
};

const char* tif_name(std::int32_t tif) {
  switch (tif) {
    case TP_BROKER_TIF_GTC:
      return "GTC";
    case TP_BROKER_TIF_GTD:
      return "GTD";
    default:
      return "IOC";
  }
}

// MARKET, or LIMIT@<price>/<IOC|GTC|GTD>[@<good_till_ns>].
std::string terms_text(const Terms& t) {
  if (t.order_type == TP_BROKER_TYPE_MARKET) return "MARKET";
  std::string s = "LIMIT@" + shortest(t.limit_price) + "/" + tif_name(t.time_in_force);
  if (t.time_in_force == TP_BROKER_TIF_GTD) s += "@" + std::to_string(t.good_till_ns);
  return s;
}

bool parse_terms(const std::string& text, Terms& t) {
  t = Terms{};
  if (text == "MARKET") return true;
  if (text.rfind("LIMIT@", 0) != 0) return false;
  auto slash = text.find('/');
  if (slash == std::string::npos || !parse_double(text.substr(6, slash - 6), t.limit_price)) return false;
  t.order_type = TP_BROKER_TYPE_LIMIT;
  std::string tif = text.substr(slash + 1);
  if (tif == "IOC" || tif == "GTC") {
    t.time_in_force = tif == "IOC" ? TP_BROKER_TIF_IOC : TP_BROKER_TIF_GTC;
    return true;
  }
  long long till = 0;
  if (tif.rfind("GTD@", 0) != 0 || !parse_int(tif.substr(4), till)) return false;
  t.time_in_force = TP_BROKER_TIF_GTD;
  t.good_till_ns = till;
  return true;
}

// Why the terms cannot be taken, or "" (dll_gateway checks them too: this is
// the broker not trusting its client).
std::string check_terms(const Terms& t) {
  if (t.order_type == TP_BROKER_TYPE_MARKET) {
    if (t.time_in_force != TP_BROKER_TIF_IOC || t.limit_price != 0 || t.good_till_ns != 0)
      return "invalid terms: a market order is IOC without a limit price or good-till time";
    return {};
  }
  if (t.order_type != TP_BROKER_TYPE_LIMIT) return "invalid terms: unknown order type";
  if (!(std::isfinite(t.limit_price) && t.limit_price > 0)) return "invalid terms: limit price must be > 0";
  if (t.time_in_force == TP_BROKER_TIF_GTD) {
    if (t.good_till_ns <= 0) return "invalid terms: GTD needs a good-till time";
    return {};
  }
  if (t.time_in_force != TP_BROKER_TIF_IOC && t.time_in_force != TP_BROKER_TIF_GTC)
    return "invalid terms: unknown time in force";
  if (t.good_till_ns != 0) return "invalid terms: a good-till time is for GTD only";
  return {};
}

// The matching rules, values in and out.
// The price an order of `side` gets from `q`, or nothing when its limit
// (terms) does not reach it.
std::optional<double> match_price(int side, const Terms& t, const Quote& q) {
  double price = side == TP_BROKER_SIDE_BUY ? q.ask : q.bid;
  if (t.order_type == TP_BROKER_TYPE_LIMIT) {
    if (side == TP_BROKER_SIDE_BUY ? price > t.limit_price : price < t.limit_price) return std::nullopt;
  }
  return price;
}

// The displayed size an order of `side` can take from `q`; infinite when not known.
double displayed_size(int side, const Quote& q) {
  double v = side == TP_BROKER_SIDE_BUY ? q.ask_volume : q.bid_volume;
  return v > 0 ? v : std::numeric_limits<double>::infinity();
}

// The state of an order: what a query answers and a journal line records.
struct OrderState {
  std::int32_t status = 0;
  double filled_quantity = 0;
  double avg_price = 0;
  std::int64_t broker_ts_ns = 0;
  std::uint64_t number = 0;  // the order's place among ORDER lines; the broker order id is derived from it
  std::string reason;

  // Adds a fill of `qty` at `price` (out of `quantity` in all); the order is
  // FILLED when nothing is left, exactly, so that no rounding leaves a rest.
  void add_fill(double qty, double price, double quantity) {
    double total = filled_quantity + qty;
    // Fills at one price keep it exactly (no rounding drift in the average).
    avg_price = filled_quantity == 0 || price == avg_price
                    ? price
                    : (avg_price * filled_quantity + price * qty) / total;
    filled_quantity = qty >= quantity - filled_quantity ? quantity : total;
    status = filled_quantity >= quantity ? TP_BROKER_STATUS_FILLED : TP_BROKER_STATUS_PARTIALLY_FILLED;
  }
};

// An order with everything the book and the journal need.
struct Order {
  std::string client_order_id;
  std::string instrument;
  int side = TP_BROKER_SIDE_BUY;
  double quantity = 0;
  Terms terms;
  OrderState state;

  double remaining() const { return quantity - state.filled_quantity; }
  double signed_quantity(double q) const { return side == TP_BROKER_SIDE_SELL ? -q : q; }
};

enum class Kind { order, fill, cancel, expire };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::fill:
      return "FILL";
    case Kind::cancel:
      return "CANCEL";
    case Kind::expire:
      return "EXPIRE";
    default:
      return "ORDER";
  }
}

std::optional<Kind> kind_from_name(std::string_view n) {
  for (Kind k : {Kind::order, Kind::fill, Kind::cancel, Kind::expire})
    if (n == kind_name(k)) return k;
  return std::nullopt;
}

// One journal line, read back.
struct JournalLine {
  Kind kind = Kind::order;
  Order order;  // client_order_id unescaped; state.number is not set here
};

// False when `text` is not a journal line (v2, or a v1 line read as a
// market ORDER).
bool parse_journal_line(const std::string& text, JournalLine& out) {
  std::istringstream f(text);
  std::vector<std::string> t(11);
  std::size_t n = 0;
  while (n < t.size() && f >> t[n]) ++n;
  std::string reason;
  std::getline(f >> std::ws, reason);
  Order& o = out.order;
  long long ts = 0;
  std::size_t at = 0;  // where the v1 fields start after ts (id)
  if (n == 11 && kind_from_name(t[1]) && status_from_name(t[6]) != 0) {
    out.kind = *kind_from_name(t[1]);
    at = 2;
    unsigned long long quote_seq = 0;
    if (!parse_terms(t[9], o.terms) || !parse_uint(t[10], quote_seq)) return false;
  } else if (n >= 8 && status_from_name(t[5]) != 0) {
    // v1: reason starts right after the price; put back what was read ahead.
    out.kind = Kind::order;
    at = 1;
    std::string rest;
    for (std::size_t i = 8; i < n; ++i) rest += t[i] + " ";
    reason = rest + reason;
    while (!reason.empty() && reason.back() == ' ') reason.pop_back();
    o.terms = Terms{};
  } else {
    return false;
  }
  o.client_order_id = unescape(t[at]);
  o.instrument = unescape(t[at + 1]);
  o.side = t[at + 2] == "SELL" ? TP_BROKER_SIDE_SELL : TP_BROKER_SIDE_BUY;
  OrderState& s = o.state;
  s.status = status_from_name(t[at + 4]);
  s.reason = reason;
  if (!parse_int(t[0], ts) || !parse_double(t[at + 3], o.quantity) ||
      !parse_double(t[at + 5], s.filled_quantity) || !parse_double(t[at + 6], s.avg_price))
    return false;
  s.broker_ts_ns = ts;
  // A v1 order was market IOC: its PARTIALLY_FILLED was final (the rest canceled).
  if (at == 1 && s.status == TP_BROKER_STATUS_PARTIALLY_FILLED) s.status = TP_BROKER_STATUS_CANCELED;
  return true;
}

// The i-th space-separated field of `line` (0-based); empty when there is none.
std::string_view field(std::string_view line, int i) {
  std::size_t start = 0;
  for (; i > 0; --i) {
    start = line.find(' ', start);
    if (start == std::string_view::npos) return {};
    ++start;
  }
  auto end = line.find(' ', start);
  return line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

bool id_matches(std::string_view escaped, const std::string& client_order_id) {
  return escaped.find('%') == std::string_view::npos ? escaped == client_order_id
                                                     : unescape(escaped) == client_order_id;
}

// A report waiting for the poll, without the C struct's fixed-size arrays.
struct PendingReport {
  std::string client_order_id;
  std::uint64_t number = 0;
  std::int32_t status = 0;
  double last_quantity = 0;
  double last_price = 0;
  double filled_quantity = 0;
  double avg_price = 0;
  std::string reason;
  std::int64_t broker_ts_ns = 0;
  std::uint64_t quote_seq = 0;
  std::int64_t quote_ts_ns = 0;
};

}  // namespace

struct tp_broker {
  Settings settings;
  std::mt19937_64 rng;
  std::unordered_map<std::string, Quote> quotes;
  // Resting orders by number (= oldest first), and their numbers by client
  // id and by instrument (a tick looks at its instrument's only).
  std::map<std::uint64_t, Order> book;
  std::unordered_map<std::string, std::uint64_t> resting_ids;
  // (std::map nodes do not move: the pointers stay valid until erased.)
  std::unordered_map<std::string, std::map<std::uint64_t, Order*>> resting_by_instrument;
  std::int64_t next_expiry_ns = std::numeric_limits<std::int64_t>::max();  // earliest GTD in the book
  // Latest state per client order id of finished orders: the last
  // `recent_orders` with a journal, every one without (see the top).
  std::unordered_map<std::string, OrderState> recent;
  std::deque<std::pair<std::string, std::uint64_t>> recent_age;  // (id, number), oldest first; journal only
  std::deque<PendingReport> reports;
  std::map<std::string, double> positions;
  std::uint64_t orders_placed = 0;  // ORDER lines so far: numbers the orders
  std::string id_prefix;
  std::FILE* journal = nullptr;

  ~tp_broker() {
    if (journal) std::fclose(journal);
  }

  bool has_journal() const { return !settings.journal_path.empty(); }

  std::string order_id(const OrderState& s) const {
    return s.status == TP_BROKER_STATUS_REJECTED ? std::string() : id_prefix + std::to_string(s.number);
  }

  tp_broker_result result_of(const OrderState& s) const {
    tp_broker_result out{};
    out.status = s.status;
    out.filled_quantity = s.filled_quantity;
    out.fill_price = s.avg_price;
    out.broker_ts_ns = s.broker_ts_ns;
    put(out.reason, s.reason);
    put(out.order_id, order_id(s));
    return out;
  }

  void remember(const std::string& client_order_id, const OrderState& s) {
    recent.insert_or_assign(client_order_id, s);
    if (!has_journal()) return;
    recent_age.emplace_back(client_order_id, s.number);
    if (recent_age.size() <= settings.recent_orders) return;
    // The oldest entry leaves, unless its id was placed again since: then
    // the record is that later order's and stays until its own entry leaves.
    const auto& [id, oldest] = recent_age.front();
    if (auto it = recent.find(id); it != recent.end() && it->second.number == oldest) recent.erase(it);
    recent_age.pop_front();
  }

  void rest(Order o) {
    if (o.terms.time_in_force == TP_BROKER_TIF_GTD)
      next_expiry_ns = std::min(next_expiry_ns, o.terms.good_till_ns);
    const auto number = o.state.number;
    resting_ids[o.client_order_id] = number;
    auto& instrument = resting_by_instrument[o.instrument];
    Order& placed = book.emplace(number, std::move(o)).first->second;
    instrument.emplace(number, &placed);
  }

  // Takes a finished order out of the book; returns the next one.
  std::map<std::uint64_t, Order>::iterator finish(std::map<std::uint64_t, Order>::iterator it) {
    resting_ids.erase(it->second.client_order_id);
    resting_by_instrument[it->second.instrument].erase(it->first);
    remember(it->second.client_order_id, it->second.state);
    return book.erase(it);
  }

  // Why `q` may not be filled against at `now`, or "".
  std::string quote_problem(const std::string& instrument, const Quote* q, std::int64_t now) const {
    if (!q) return "no market data";
    if (settings.max_quote_age_ms == 0) return {};
    const std::int64_t age_ms = (now - q->ts_ns) / 1'000'000;
    if (now - q->ts_ns <= static_cast<std::int64_t>(settings.max_quote_age_ms) * 1'000'000) return {};
    return "stale quote: " + instrument + " last quote " + std::to_string(age_ms) +
           " ms old (max_quote_age_ms " + std::to_string(settings.max_quote_age_ms) + ")";
  }

  // Reads an earlier journal: positions from every line, resting orders back
  // into the book, the last `recent_orders` finished ones into memory. An
  // unterminated last line (a crash while writing it) is cut off so that
  // appends start on a clean line.
  std::string load_journal() {
    const std::string& path = settings.journal_path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    std::ifstream in(path, std::ios::binary);
    if (!in) return "journal_path: cannot read " + path;
    std::uintmax_t complete = 0;  // bytes up to and including the last newline
    std::uint64_t number = 0;
    std::string text;
    while (std::getline(in, text) && !in.eof()) {
      complete += text.size() + 1;
      ++number;
      auto malformed = [&] {
        return "journal_path: " + path + " line " + std::to_string(number) + " is malformed";
      };
      JournalLine line;
      if (!parse_journal_line(text, line)) return malformed();
      Order& o = line.order;
      if (line.kind == Kind::order) {
        o.state.number = ++orders_placed;
        positions[o.instrument] += o.signed_quantity(o.state.filled_quantity);
        if (is_resting(o.state.status)) {
          rest(std::move(o));
        } else {
          remember(o.client_order_id, o.state);
        }
        continue;
      }
      // A later change: of the order resting under that id.
      auto id = resting_ids.find(o.client_order_id);
      if (id == resting_ids.end()) return malformed() + " (no resting order " + o.client_order_id + ")";
      auto it = book.find(id->second);
      Order& resting = it->second;
      positions[resting.instrument] +=
          resting.signed_quantity(o.state.filled_quantity - resting.state.filled_quantity);
      o.state.number = resting.state.number;
      resting.state = o.state;
      if (!is_resting(resting.state.status)) finish(it);
    }
    if (in.bad()) return "journal_path: cannot read " + path;
    in.close();
    if (auto size = std::filesystem::file_size(path, ec); !ec && complete < size) {
      std::filesystem::resize_file(path, complete, ec);
      if (ec) return "journal_path: cannot truncate " + path + ": " + ec.message();
    }
    return {};
  }

  // The latest state of the last order placed with `client_order_id` into
  // `found` (left empty when the journal never saw it); returns an error or
  // "". A full read of the day book per call is acceptable because only
  // reconciliation gets here: dll_gateway asks the broker only about an
  // order whose outcome it did not record, and a recent order is answered
  // from memory first.
  std::string scan_journal(const std::string& client_order_id, std::optional<OrderState>& found) const {
    const std::string& path = settings.journal_path;
    std::ifstream in(path, std::ios::binary);
    if (!in) return "journal_path: cannot read " + path;
    std::string text;
    std::uint64_t number = 0, orders = 0;
    while (std::getline(in, text) && !in.eof()) {
      ++number;
      // The id is the third field of a v2 line, the second of a v1 line.
      std::string_view second = field(text, 1);
      const bool v2 = kind_from_name(second).has_value() && !field(text, 10).empty();
      if (!v2 || second == "ORDER") ++orders;
      if (!id_matches(v2 ? field(text, 2) : second, client_order_id)) continue;
      JournalLine line;
      if (!parse_journal_line(text, line))
        return "journal_path: " + path + " line " + std::to_string(number) + " is malformed";
      if (line.kind == Kind::order) {
        found = line.order.state;
        found->number = orders;
      } else if (found) {
        const auto placed = found->number;
        found = line.order.state;
        found->number = placed;
      }
    }
    if (in.bad()) return "journal_path: cannot read " + path;
    return {};
  }

  // False when the line could not be written whole (a full disk): the
  // partial line is cut off again, so the day book stays readable.
  bool write_journal(Kind kind, const Order& o, const OrderState& s, std::uint64_t quote_seq) {
    if (!journal) return true;
    std::string reason = s.reason;
    for (char& c : reason)
      if (c == '\n' || c == '\r') c = ' ';
    const long before = std::ftell(journal);
    const int n = std::fprintf(
        journal, "%lld %s %s %s %s %s %s %s %s %s %llu %s\n", static_cast<long long>(s.broker_ts_ns),
        kind_name(kind), escape(o.client_order_id).c_str(), escape(o.instrument).c_str(),
        o.side == TP_BROKER_SIDE_SELL ? "SELL" : "BUY", shortest(o.quantity).c_str(), status_name(s.status),
        shortest(s.filled_quantity).c_str(), shortest(s.avg_price).c_str(), terms_text(o.terms).c_str(),
        static_cast<unsigned long long>(quote_seq), reason.c_str());
    // Flushed per line: a test (or an operator) reading it sees every event,
    // a crash of the process loses nothing already decided, and a query
    // that misses the memory window finds the order in the file.
    if (n >= 0 && std::fflush(journal) == 0) return true;
    std::clearerr(journal);
    if (before >= 0) {
      (void)::ftruncate(::fileno(journal), before);
      std::fseek(journal, 0, SEEK_END);
    }
    return false;
  }

  tp_broker_result refused_unjournaled(std::int64_t ts) const {
    tp_broker_result refused{};
    refused.status = TP_BROKER_STATUS_REJECTED;
    std::snprintf(refused.reason, sizeof refused.reason, "sim broker: cannot write its journal %s: %s",
                  settings.journal_path.c_str(), std::strerror(errno));
    refused.broker_ts_ns = ts;
    return refused;
  }

  // The order's state after its submit: rejected, or matched against the
  // last quote as far as the terms and the displayed size allow. `received`:
  // when submit() was called, before the simulated latency.
  void decide(Order& o, const tp_broker_order& in, std::int64_t received, std::int64_t now) {
    OrderState& s = o.state;
    // Three draws per order, always, so that the outcome of order n depends
    // only on the seed and n.
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const double u_reject = unit(rng), u_partial = unit(rng), u_fraction = unit(rng);
    const bool ioc = o.terms.time_in_force == TP_BROKER_TIF_IOC;
    auto reject = [&](std::string reason) {
      s.status = TP_BROKER_STATUS_REJECTED;
      s.reason = std::move(reason);
    };
    auto quote_it = quotes.find(o.instrument);
    const Quote* quote = quote_it == quotes.end() ? nullptr : &quote_it->second;
    const std::string stale = quote_problem(o.instrument, quote, now);

    if ((o.side != TP_BROKER_SIDE_BUY && o.side != TP_BROKER_SIDE_SELL) ||
        !(std::isfinite(o.quantity) && o.quantity > 0))
      return reject("invalid side or quantity");
    if (auto bad = check_terms(o.terms); !bad.empty()) return reject(bad);
    // The good-till times, checked when the order reaches the "exchange"
    // (after the simulated latency), as a real venue would. The refusal says
    // when the order was handed over: a reader of the journal can tell one
    // given to the broker in time from one given to it late.
    const auto expired = [&](std::int64_t till) {
      return reject("expired: good-till time " + std::to_string(till) + " passed (received at " +
                    std::to_string(received) + ")");
    };
    if (in.expires_ts_ns > 0 && now >= in.expires_ts_ns) return expired(in.expires_ts_ns);
    if (o.terms.time_in_force == TP_BROKER_TIF_GTD && now >= o.terms.good_till_ns)
      return expired(o.terms.good_till_ns);
    if (resting_ids.contains(o.client_order_id))
      return reject("duplicate client order id: " + o.client_order_id + " is still resting");
    if (ioc && !stale.empty()) return reject(stale);
    if (!ioc && book.size() >= settings.max_open_orders)
      return reject("too many open orders (max_open_orders " + std::to_string(settings.max_open_orders) +
                    ")");
    if (u_reject < settings.reject_rate) return reject("simulated reject");

    s.status = TP_BROKER_STATUS_ACCEPTED;
    std::optional<double> price = stale.empty() ? match_price(o.side, o.terms, *quote) : std::nullopt;
    if (price) {
      double qty = std::min(o.quantity, displayed_size(o.side, *quote));
      if (ioc && u_partial < settings.partial_fill_rate)
        qty = std::min(qty, o.quantity * (0.1 + 0.8 * u_fraction));
      s.add_fill(qty, *price, o.quantity);
    }
    if (!ioc || s.status == TP_BROKER_STATUS_FILLED) return;
    s.status = TP_BROKER_STATUS_CANCELED;
    s.reason = price ? "immediate-or-cancel: remainder canceled" : "immediate-or-cancel: not marketable";
  }

  tp_broker_result submit(const tp_broker_order& in) {
    const std::int64_t received = now_ns();
    if (settings.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(settings.latency_ms));
    const std::int64_t now = now_ns();
    Order o;
    o.client_order_id = get(in.client_order_id);
    o.instrument = get(in.instrument);
    o.side = in.side;
    o.quantity = in.quantity;
    o.terms = Terms{in.order_type, in.limit_price, in.time_in_force, in.good_till_ns};
    o.state.broker_ts_ns = now;
    o.state.number = orders_placed + 1;
    decide(o, in, received, now);

    const auto quote = quotes.find(o.instrument);
    const std::uint64_t quote_seq = o.state.filled_quantity > 0 ? quote->second.seq : 0;
    if (!write_journal(Kind::order, o, o.state, quote_seq)) {
      // A broker that cannot keep its day book does not take the order: it
      // would be unknown to a query after a restart.
      return refused_unjournaled(now);
    }
    ++orders_placed;
    positions[o.instrument] += o.signed_quantity(o.state.filled_quantity);
    tp_broker_result result = result_of(o.state);
    if (is_resting(o.state.status)) {
      rest(std::move(o));
    } else {
      remember(o.client_order_id, o.state);
    }
    return result;
  }

  void queue_report(const Order& o, double last_quantity, double last_price, const Quote* q) {
    const OrderState& s = o.state;
    reports.push_back(PendingReport{o.client_order_id, s.number, s.status, last_quantity, last_price,
                                    s.filled_quantity, s.avg_price, s.reason, s.broker_ts_ns, q ? q->seq : 0,
                                    q ? q->ts_ns : 0});
  }

  // GTD orders whose good-till time has come are EXPIRED (filled keeps what
  // filled). An expiry that cannot be journaled is tried again later.
  void expire_due(std::int64_t now) {
    if (now < next_expiry_ns) return;
    next_expiry_ns = std::numeric_limits<std::int64_t>::max();
    for (auto it = book.begin(); it != book.end();) {
      Order& o = it->second;
      if (o.terms.time_in_force != TP_BROKER_TIF_GTD) {
        ++it;
        continue;
      }
      if (now < o.terms.good_till_ns || reports.size() >= max_queued_reports) {
        next_expiry_ns = std::min(next_expiry_ns, o.terms.good_till_ns);
        ++it;
        continue;
      }
      OrderState s = o.state;
      s.status = TP_BROKER_STATUS_EXPIRED;
      s.broker_ts_ns = now;
      s.reason = "good-till time " + std::to_string(o.terms.good_till_ns) + " reached";
      if (!write_journal(Kind::expire, o, s, 0)) {
        next_expiry_ns = std::min(next_expiry_ns, o.terms.good_till_ns);
        ++it;
        continue;
      }
      o.state = s;
      queue_report(o, 0, 0, nullptr);
      it = finish(it);
    }
  }

  // Matches the resting orders of the tick's instrument, oldest first; the
  // tick's displayed size is shared among them.
  void match(const std::string& instrument, const Quote& q, std::int64_t now) {
    auto resting = resting_by_instrument.find(instrument);
    if (resting == resting_by_instrument.end()) return;
    std::map<std::uint64_t, Order*>& orders = resting->second;
    double left[2] = {displayed_size(TP_BROKER_SIDE_BUY, q), displayed_size(TP_BROKER_SIDE_SELL, q)};
    for (auto n = orders.begin(); n != orders.end() && reports.size() < max_queued_reports;) {
      Order& o = *(n++)->second;  // finish() below erases the entry just passed, no other
      double& size = left[o.side == TP_BROKER_SIDE_BUY ? 0 : 1];
      const auto price = match_price(o.side, o.terms, q);
      if (!price || !(size > 0)) continue;
      const double qty = std::min(o.remaining(), size);
      OrderState s = o.state;
      s.add_fill(qty, *price, o.quantity);
      s.broker_ts_ns = now;
      s.reason.clear();
      if (!write_journal(Kind::fill, o, s, q.seq)) return;  // a full disk: the fills wait for a later tick
      size -= qty;
      positions[o.instrument] += o.signed_quantity(s.filled_quantity - o.state.filled_quantity);
      o.state = s;
      queue_report(o, qty, *price, &q);
      if (s.status == TP_BROKER_STATUS_FILLED) finish(book.find(s.number));
    }
  }

  void on_tick(const Quote& q, const std::string& instrument) {
    quotes[instrument] = q;
    const std::int64_t now = now_ns();
    expire_due(now);
    if (quote_problem(instrument, &q, now).empty()) match(instrument, q, now);
  }

  tp_broker_result cancel(const std::string& client_order_id) {
    if (auto id = resting_ids.find(client_order_id); id != resting_ids.end()) {
      auto it = book.find(id->second);
      Order& o = it->second;
      OrderState s = o.state;
      s.status = TP_BROKER_STATUS_CANCELED;
      s.broker_ts_ns = now_ns();
      s.reason = "canceled on request";
      if (!write_journal(Kind::cancel, o, s, 0)) {
        tp_broker_result still = result_of(o.state);
        std::snprintf(still.reason, sizeof still.reason,
                      "cannot cancel: sim broker cannot write its journal %s: %s",
                      settings.journal_path.c_str(), std::strerror(errno));
        return still;
      }
      o.state = s;
      tp_broker_result result = result_of(s);
      finish(it);
      return result;
    }
    tp_broker_result r = query(client_order_id);
    if (r.status != TP_BROKER_STATUS_UNKNOWN)
      put(r.reason, std::string("cannot cancel: the order is ") + status_name(r.status));
    return r;
  }

  std::size_t poll_reports(tp_broker_report* out, std::size_t max) {
    expire_due(now_ns());
    std::size_t n = std::min(max, reports.size());
    for (std::size_t i = 0; i < n; ++i) {
      const PendingReport& p = reports.front();
      tp_broker_report& r = out[i];
      r = tp_broker_report{};
      put(r.client_order_id, p.client_order_id);
      put(r.order_id, id_prefix + std::to_string(p.number));
      r.status = p.status;
      r.last_quantity = p.last_quantity;
      r.last_price = p.last_price;
      r.filled_quantity = p.filled_quantity;
      r.avg_price = p.avg_price;
      put(r.reason, p.reason);
      r.broker_ts_ns = p.broker_ts_ns;
      r.quote_seq = p.quote_seq;
      r.quote_ts_ns = p.quote_ts_ns;
      reports.pop_front();
    }
    return n;
  }

  std::size_t open_orders(tp_broker_report* out, std::size_t max) const {
    std::size_t i = 0;
    for (auto it = book.begin(); it != book.end() && i < max; ++it, ++i) {
      const Order& o = it->second;
      tp_broker_report& r = out[i];
      r = tp_broker_report{};
      put(r.client_order_id, o.client_order_id);
      put(r.order_id, order_id(o.state));
      r.status = o.state.status;
      r.filled_quantity = o.state.filled_quantity;
      r.avg_price = o.state.avg_price;
      put(r.reason, o.state.reason);
      r.broker_ts_ns = o.state.broker_ts_ns;
    }
    return book.size();
  }

  tp_broker_result query(const std::string& client_order_id) const {
    if (auto id = resting_ids.find(client_order_id); id != resting_ids.end())
      return result_of(book.at(id->second).state);
    if (auto it = recent.find(client_order_id); it != recent.end()) return result_of(it->second);
    std::optional<OrderState> found;
    if (has_journal()) {
      if (auto err = scan_journal(client_order_id, found); !err.empty()) throw std::runtime_error(err);
    }
    if (found) return result_of(*found);
    tp_broker_result unknown{};
    unknown.status = TP_BROKER_STATUS_UNKNOWN;
    unknown.broker_ts_ns = now_ns();
    return unknown;
  }
};

namespace {

// One answering call of the ABI: the result, or TP_BROKER_ERROR with the
// exception's message (exceptions never cross the C boundary).
template <class Call>
int answer(tp_broker_result& result, Call&& call) {
  try {
    result = call();
    return TP_BROKER_OK;
  } catch (const std::exception& e) {
    put(result.reason, e.what());
    return TP_BROKER_ERROR;
  }
}

}  // namespace

extern "C" {

TP_BROKER_EXPORT uint32_t tp_broker_abi_version(void) { return TP_BROKER_ABI_VERSION; }

TP_BROKER_EXPORT tp_broker* tp_broker_create(const char* const* keys, const char* const* values, size_t count,
                                             char* error, size_t error_len) {
  try {
    auto b = std::make_unique<tp_broker>();
    if (auto err = parse_settings(keys, values, count, b->settings); !err.empty()) {
      put_error(error, error_len, err);
      return nullptr;
    }
    b->rng.seed(b->settings.seed);
    if (b->settings.journal_path.empty()) {
      // No memory across restarts: make ids unique per boot instead.
      b->id_prefix = "SIM-" + std::to_string(now_ns() / 1'000'000) + "-";
    } else {
      b->id_prefix = "SIM-";
      if (auto err = b->load_journal(); !err.empty()) {
        put_error(error, error_len, err);
        return nullptr;
      }
      b->journal = std::fopen(b->settings.journal_path.c_str(), "a");
      if (!b->journal) {
        put_error(error, error_len,
                  "journal_path: cannot open " + b->settings.journal_path + ": " + std::strerror(errno));
        return nullptr;
      }
    }
    return b.release();
  } catch (const std::exception& e) {
    put_error(error, error_len, std::string("sim broker: ") + e.what());
    return nullptr;
  }
}

TP_BROKER_EXPORT int tp_broker_submit(tp_broker* broker, const tp_broker_order* order,
                                      tp_broker_result* result) {
  if (!broker || !order || !result) return TP_BROKER_ERROR;
  return answer(*result, [&] { return broker->submit(*order); });
}

TP_BROKER_EXPORT int tp_broker_query(tp_broker* broker, const char* client_order_id,
                                     tp_broker_result* result) {
  if (!broker || !client_order_id || !result) return TP_BROKER_ERROR;
  return answer(*result, [&] { return broker->query(client_order_id); });
}

TP_BROKER_EXPORT int tp_broker_position(tp_broker* broker, const char* instrument, double* quantity) {
  if (!broker || !instrument || !quantity) return TP_BROKER_ERROR;
  auto it = broker->positions.find(instrument);
  *quantity = it == broker->positions.end() ? 0.0 : it->second;
  return TP_BROKER_OK;
}

TP_BROKER_EXPORT int tp_broker_cancel(tp_broker* broker, const char* client_order_id,
                                      tp_broker_result* result) {
  if (!broker || !client_order_id || !result) return TP_BROKER_ERROR;
  return answer(*result, [&] { return broker->cancel(client_order_id); });
}

TP_BROKER_EXPORT size_t tp_broker_poll_reports(tp_broker* broker, tp_broker_report* out, size_t max) {
  if (!broker || !out) return 0;
  try {
    return broker->poll_reports(out, max);
  } catch (...) {
    return 0;  // out of memory for an id: the reports stay queued for the next poll
  }
}

TP_BROKER_EXPORT int tp_broker_open_orders(tp_broker* broker, tp_broker_report* out, size_t max,
                                           size_t* count) {
  if (!broker || !count || (!out && max > 0)) return TP_BROKER_ERROR;
  try {
    *count = broker->open_orders(out, max);
    return TP_BROKER_OK;
  } catch (...) {
    return TP_BROKER_ERROR;
  }
}

TP_BROKER_EXPORT void tp_broker_destroy(tp_broker* broker) { delete broker; }

TP_BROKER_EXPORT void tp_broker_on_tick(tp_broker* broker, const tp_broker_quote* quote) {
  if (!broker || !quote || !(quote->bid > 0) || !(quote->ask >= quote->bid)) return;
  if (!(quote->bid_volume >= 0 && quote->ask_volume >= 0 && std::isfinite(quote->ask) &&
        std::isfinite(quote->bid_volume) && std::isfinite(quote->ask_volume)))
    return;
  try {
    broker->on_tick(
        Quote{quote->bid, quote->ask, quote->bid_volume, quote->ask_volume, quote->ts_ns, quote->seq},
        get(quote->instrument));
  } catch (...) {
    // Out of memory for a new instrument or a report: the quote is lost, the next may fit.
  }
}

// For a loader of revision 2: the same, without sizes (no cap) or sequence.
TP_BROKER_EXPORT void tp_broker_on_quote(tp_broker* broker, const char* instrument, double bid, double ask,
                                         int64_t ts_ns) {
  if (!instrument) return;
  tp_broker_quote q{};
  put(q.instrument, std::string(instrument));
  q.bid = bid;
  q.ask = ask;
  q.ts_ns = ts_ns;
  tp_broker_on_tick(broker, &q);
}

}  // extern "C"
