// The simulated broker: a broker_abi.h plugin that fills market orders at the
// last quote it was given (BUY at the ask, SELL at the bid), with optional
// latency, random rejects and immediate-or-cancel partial fills. It is the
// default plugin of dll_gateway and the reference for writing a real one.
//
// Like a careless real broker it does NOT deduplicate client order ids: every
// submit is a new order. Keeping an id from reaching it twice is
// dll_gateway's job, and the optional journal lets tests count how often it
// happened. The journal is reloaded at create, so after a restart the broker
// still answers queries about earlier orders.
//
// Settings (all optional): latency_ms (per submit), reject_rate and
// partial_fill_rate (probabilities), seed, journal_path (the day book: one
// line per order, flushed per line), recent_orders (default 4096).
//
// Memory: queries are rare (dll_gateway's own store answers repeats), so
// with a journal only the last `recent_orders` orders are kept in memory and
// an older one is looked up in the journal file. Without a journal there is
// no day book to fall back on, so every order of the run is remembered
// (compactly, but without bound): give a journal_path to a long-running
// broker.
//
// Builds against broker_abi.h only (no pipeline code). One thread per
// instance, as the ABI promises; exceptions never cross the C boundary.
#include <dll_gateway/broker_abi.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
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

namespace {

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

std::string unescape(const std::string& s) {
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
    default:
      return "UNKNOWN";
  }
}

int status_from_name(const std::string& n) {
  for (int s = TP_BROKER_STATUS_NEW; s <= TP_BROKER_STATUS_UNKNOWN; ++s)
    if (n == status_name(s)) return s;
  return 0;
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

// The shortest text that reads back as the same double.
std::string shortest(double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

struct Quote {
  double bid = 0;
  double ask = 0;
};

struct Settings {
  unsigned long long latency_ms = 0;
  double reject_rate = 0;
  double partial_fill_rate = 0;
  unsigned long long seed = 7;
  std::string journal_path;
  unsigned long long recent_orders = 4096;  // orders kept in memory when there is a journal
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
    } else {
      return "unknown setting '" + key +
             "' (known: latency_ms, reject_rate, partial_fill_rate, seed, journal_path, recent_orders)";
    }
  }
  return {};
}

// What a query needs to rebuild an order's tp_broker_result, without the C
// struct's ~0.6 KB of fixed-size arrays.
struct OrderRecord {
  std::int32_t status = 0;
  double filled_quantity = 0;
  double fill_price = 0;
  std::int64_t broker_ts_ns = 0;
  std::uint64_t line = 0;  // the order's journal line number; the broker order id is derived from it
  std::string reason;
};

// One journal line: "ts id instrument side quantity status filled price reason".
struct JournalLine {
  std::string id;  // escaped
  std::string instrument;
  int side = TP_BROKER_SIDE_BUY;
  OrderRecord record;
};

// False when `text` is not a journal line.
bool parse_journal_line(const std::string& text, std::uint64_t number, JournalLine& out) {
  std::istringstream f(text);
  long long ts = 0;
  std::string side, status, filled, price;
  double quantity = 0;
  if (!(f >> ts >> out.id >> out.instrument >> side >> quantity >> status >> filled >> price)) return false;
  OrderRecord& r = out.record;
  std::getline(f >> std::ws, r.reason);
  r.status = status_from_name(status);
  r.broker_ts_ns = ts;
  r.line = number;
  out.side = side == "SELL" ? TP_BROKER_SIDE_SELL : TP_BROKER_SIDE_BUY;
  return r.status != 0 && parse_double(filled, r.filled_quantity) && parse_double(price, r.fill_price);
}

// The id field of a journal line (still escaped); empty when there is none.
std::string_view journal_id(std::string_view line) {
  auto start = line.find(' ');
  if (start == std::string_view::npos) return {};
  auto end = line.find(' ', start + 1);
  if (end == std::string_view::npos) return {};
  return line.substr(start + 1, end - start - 1);
}

}  // namespace

struct tp_broker {
  Settings settings;
  std::mt19937_64 rng;
  std::unordered_map<std::string, Quote> quotes;
  // Latest record per client order id: the last `recent_orders` orders with
  // a journal, every order without one (see the top of the file).
  std::unordered_map<std::string, OrderRecord> recent;
  std::deque<std::pair<std::string, std::uint64_t>> recent_age;  // (id, line), oldest first; journal only
  std::map<std::string, double> positions;
  std::uint64_t journal_lines = 0;  // also numbers orders placed with a journal
  std::string id_prefix;
  std::FILE* journal = nullptr;

  ~tp_broker() {
    if (journal) std::fclose(journal);
  }

  bool has_journal() const { return !settings.journal_path.empty(); }

  tp_broker_result result_of(const OrderRecord& r) const {
    tp_broker_result out{};
    out.status = r.status;
    out.filled_quantity = r.filled_quantity;
    out.fill_price = r.fill_price;
    out.broker_ts_ns = r.broker_ts_ns;
    put(out.reason, r.reason);
    if (r.filled_quantity > 0) put(out.order_id, id_prefix + std::to_string(r.line));
    return out;
  }

  void apply(const std::string& client_order_id, const std::string& instrument, int side, OrderRecord r) {
    double signed_fill = side == TP_BROKER_SIDE_SELL ? -r.filled_quantity : r.filled_quantity;
    if (r.filled_quantity > 0) positions[instrument] += signed_fill;
    remember(client_order_id, std::move(r));
  }

  void remember(const std::string& client_order_id, OrderRecord r) {
    std::uint64_t line = r.line;
    recent.insert_or_assign(client_order_id, std::move(r));
    if (!has_journal()) return;
    recent_age.emplace_back(client_order_id, line);
    if (recent_age.size() <= settings.recent_orders) return;
    // The oldest entry leaves, unless its id was placed again since: then
    // the record is that later order's and stays until its own entry leaves.
    const auto& [id, oldest_line] = recent_age.front();
    if (auto it = recent.find(id); it != recent.end() && it->second.line == oldest_line) recent.erase(it);
    recent_age.pop_front();
  }

  // Reads an earlier journal: positions and the line count from every line,
  // only the last `recent_orders` into memory. An unterminated last line (a
  // crash while writing it) is cut off so that appends start on a clean line.
  std::string load_journal() {
    const std::string& path = settings.journal_path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    std::ifstream in(path, std::ios::binary);
    if (!in) return "journal_path: cannot read " + path;
    std::uintmax_t complete = 0;  // bytes up to and including the last newline
    std::string text;
    while (std::getline(in, text) && !in.eof()) {
      complete += text.size() + 1;
      JournalLine line;
      if (!parse_journal_line(text, ++journal_lines, line))
        return "journal_path: " + path + " line " + std::to_string(journal_lines) + " is malformed";
      apply(unescape(line.id), line.instrument, line.side, std::move(line.record));
    }
    if (in.bad()) return "journal_path: cannot read " + path;
    in.close();
    if (auto size = std::filesystem::file_size(path, ec); !ec && complete < size) {
      std::filesystem::resize_file(path, complete, ec);
      if (ec) return "journal_path: cannot truncate " + path + ": " + ec.message();
    }
    return {};
  }

  // The latest journal line for `client_order_id` into `found` (left empty
  // when the journal never saw it); returns an error or "". A full read of
  // the day book per call is acceptable because only reconciliation gets
  // here: dll_gateway asks the broker only about a PENDING order (a crash
  // between recording it and recording its outcome) or one it has no row
  // for, and an order placed shortly before is answered from memory first.
  std::string scan_journal(const std::string& client_order_id, std::optional<OrderRecord>& found) const {
    const std::string& path = settings.journal_path;
    std::ifstream in(path, std::ios::binary);
    if (!in) return "journal_path: cannot read " + path;
    std::string text;
    std::uint64_t number = 0;
    // Lines are flushed whole, one per order: every complete line is an order.
    while (std::getline(in, text) && !in.eof()) {
      ++number;
      std::string_view id = journal_id(text);
      if (id.empty()) return "journal_path: " + path + " line " + std::to_string(number) + " is malformed";
      bool match = id.find('%') == std::string_view::npos ? id == client_order_id
                                                          : unescape(std::string(id)) == client_order_id;
      if (!match) continue;
      JournalLine line;
      if (!parse_journal_line(text, number, line))
        return "journal_path: " + path + " line " + std::to_string(number) + " is malformed";
      found = std::move(line.record);
    }
    if (in.bad()) return "journal_path: cannot read " + path;
    return {};
  }

  // False when the line could not be written whole (a full disk): the
  // partial line is cut off again, so the day book stays readable.
  bool write_journal(const tp_broker_order& o, const OrderRecord& r) {
    if (!journal) return true;
    std::string reason = r.reason;
    for (char& c : reason)
      if (c == '\n' || c == '\r') c = ' ';
    const long before = std::ftell(journal);
    const int n = std::fprintf(
        journal, "%lld %s %s %s %s %s %s %s %s\n", static_cast<long long>(r.broker_ts_ns),
        escape(o.client_order_id).c_str(), o.instrument, o.side == TP_BROKER_SIDE_SELL ? "SELL" : "BUY",
        shortest(o.quantity).c_str(), status_name(r.status), shortest(r.filled_quantity).c_str(),
        shortest(r.fill_price).c_str(), reason.c_str());
    // Flushed per line: a test (or an operator) reading it sees every order,
    // a crash of the process loses nothing already submitted, and a query
    // that misses the memory window finds the order in the file.
    if (n >= 0 && std::fflush(journal) == 0) return true;
    std::clearerr(journal);
    if (before >= 0) {
      (void)::ftruncate(::fileno(journal), before);
      std::fseek(journal, 0, SEEK_END);
    }
    return false;
  }

  tp_broker_result submit(const tp_broker_order& o) {
    if (settings.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(settings.latency_ms));
    // Three draws per order, always, so that the outcome of order n depends
    // only on the seed and n.
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    double u_reject = unit(rng), u_partial = unit(rng), u_fraction = unit(rng);

    OrderRecord r;
    r.broker_ts_ns = now_ns();
    std::string instrument(o.instrument, strnlen(o.instrument, sizeof o.instrument));
    auto quote = quotes.find(instrument);
    bool valid_side = o.side == TP_BROKER_SIDE_BUY || o.side == TP_BROKER_SIDE_SELL;
    if (!valid_side || !(std::isfinite(o.quantity) && o.quantity > 0)) {
      r.status = TP_BROKER_STATUS_REJECTED;
      r.reason = "invalid side or quantity";
    } else if (o.expires_ts_ns > 0 && r.broker_ts_ns >= o.expires_ts_ns) {
      // The good-till time, checked when the order reaches the "exchange"
      // (after the simulated latency), as a real venue would.
      r.status = TP_BROKER_STATUS_REJECTED;
      r.reason = "expired: good-till time " + std::to_string(o.expires_ts_ns) + " passed";
    } else if (quote == quotes.end()) {
      r.status = TP_BROKER_STATUS_REJECTED;
      r.reason = "no market data";
    } else if (u_reject < settings.reject_rate) {
      r.status = TP_BROKER_STATUS_REJECTED;
      r.reason = "simulated reject";
    } else {
      r.fill_price = o.side == TP_BROKER_SIDE_BUY ? quote->second.ask : quote->second.bid;
      if (u_partial < settings.partial_fill_rate) {
        r.status = TP_BROKER_STATUS_PARTIALLY_FILLED;
        r.filled_quantity = o.quantity * (0.1 + 0.8 * u_fraction);
        r.reason = "immediate-or-cancel: remainder canceled";
      } else {
        r.status = TP_BROKER_STATUS_FILLED;
        r.filled_quantity = o.quantity;
      }
    }
    r.line = journal_lines + 1;
    if (!write_journal(o, r)) {
      // A broker that cannot keep its day book does not take the order: it
      // would be unknown to a query after a restart.
      tp_broker_result refused{};
      refused.status = TP_BROKER_STATUS_REJECTED;
      std::snprintf(refused.reason, sizeof refused.reason, "sim broker: cannot write its journal %s: %s",
                    settings.journal_path.c_str(), std::strerror(errno));
      refused.broker_ts_ns = r.broker_ts_ns;
      return refused;
    }
    ++journal_lines;
    tp_broker_result result = result_of(r);
    apply(std::string(o.client_order_id, strnlen(o.client_order_id, sizeof o.client_order_id)), instrument,
          o.side, std::move(r));
    return result;
  }

  tp_broker_result query(const std::string& client_order_id) const {
    if (auto it = recent.find(client_order_id); it != recent.end()) return result_of(it->second);
    std::optional<OrderRecord> found;
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
  try {
    *result = broker->submit(*order);
    return TP_BROKER_OK;
  } catch (const std::exception& e) {
    put(result->reason, e.what());
    return TP_BROKER_ERROR;
  }
}

TP_BROKER_EXPORT int tp_broker_query(tp_broker* broker, const char* client_order_id,
                                     tp_broker_result* result) {
  if (!broker || !client_order_id || !result) return TP_BROKER_ERROR;
  try {
    *result = broker->query(client_order_id);
    return TP_BROKER_OK;
  } catch (const std::exception& e) {
    put(result->reason, e.what());
    return TP_BROKER_ERROR;
  }
}

TP_BROKER_EXPORT int tp_broker_position(tp_broker* broker, const char* instrument, double* quantity) {
  if (!broker || !instrument || !quantity) return TP_BROKER_ERROR;
  auto it = broker->positions.find(instrument);
  *quantity = it == broker->positions.end() ? 0.0 : it->second;
  return TP_BROKER_OK;
}

TP_BROKER_EXPORT void tp_broker_destroy(tp_broker* broker) { delete broker; }

TP_BROKER_EXPORT void tp_broker_on_quote(tp_broker* broker, const char* instrument, double bid, double ask,
                                         int64_t /*ts_ns*/) {
  if (!broker || !instrument || !(bid > 0) || !(ask >= bid)) return;
  try {
    broker->quotes[instrument] = Quote{bid, ask};
  } catch (...) {
    // Out of memory for a new instrument: the quote is lost, the next may fit.
  }
}

}  // extern "C"
