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
// Builds against broker_abi.h only (no pipeline code). One thread per
// instance, as the ABI promises; exceptions never cross the C boundary.
#include <dll_gateway/broker_abi.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
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
    case TP_BROKER_STATUS_NEW: return "NEW";
    case TP_BROKER_STATUS_ACCEPTED: return "ACCEPTED";
    case TP_BROKER_STATUS_PARTIALLY_FILLED: return "PARTIALLY_FILLED";
    case TP_BROKER_STATUS_FILLED: return "FILLED";
    case TP_BROKER_STATUS_REJECTED: return "REJECTED";
    case TP_BROKER_STATUS_CANCELED: return "CANCELED";
    default: return "UNKNOWN";
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
    } else {
      return "unknown setting '" + key +
             "' (known: latency_ms, reject_rate, partial_fill_rate, seed, journal_path)";
    }
  }
  return {};
}

}  // namespace

struct tp_broker {
  Settings settings;
  std::mt19937_64 rng;
  std::unordered_map<std::string, Quote> quotes;
  std::unordered_map<std::string, tp_broker_result> orders;  // latest result per client order id
  std::map<std::string, double> positions;
  std::uint64_t journal_lines = 0;  // also numbers orders placed with a journal
  std::string id_prefix;
  std::FILE* journal = nullptr;

  ~tp_broker() {
    if (journal) std::fclose(journal);
  }

  void apply(const std::string& client_order_id, const std::string& instrument, int side,
             const tp_broker_result& r) {
    orders[client_order_id] = r;
    double signed_fill = side == TP_BROKER_SIDE_SELL ? -r.filled_quantity : r.filled_quantity;
    if (r.filled_quantity > 0) positions[instrument] += signed_fill;
  }

  // Reads an earlier journal; an unterminated last line (a crash while
  // writing it) is cut off so that appends start on a clean line.
  std::string load_journal() {
    const std::string& path = settings.journal_path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    std::ifstream in(path, std::ios::binary);
    if (!in) return "journal_path: cannot read " + path;
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::size_t complete = content.rfind('\n');
    complete = complete == std::string::npos ? 0 : complete + 1;
    if (complete < content.size()) {
      std::filesystem::resize_file(path, complete, ec);
      if (ec) return "journal_path: cannot truncate " + path + ": " + ec.message();
    }
    std::istringstream lines(content.substr(0, complete));
    std::string line;
    while (std::getline(lines, line)) {
      ++journal_lines;
      std::istringstream f(line);
      long long ts = 0;
      std::string id, instrument, side, status, filled, price;
      double quantity = 0;
      if (!(f >> ts >> id >> instrument >> side >> quantity >> status >> filled >> price))
        return "journal_path: " + path + " line " + std::to_string(journal_lines) + " is malformed";
      std::string reason;
      std::getline(f >> std::ws, reason);
      tp_broker_result r{};
      r.status = status_from_name(status);
      int side_code = side == "SELL" ? TP_BROKER_SIDE_SELL : TP_BROKER_SIDE_BUY;
      if (r.status == 0 || !parse_double(filled, r.filled_quantity) || !parse_double(price, r.fill_price))
        return "journal_path: " + path + " line " + std::to_string(journal_lines) + " is malformed";
      if (r.filled_quantity > 0) put(r.order_id, id_prefix + std::to_string(journal_lines));
      put(r.reason, reason);
      r.broker_ts_ns = ts;
      apply(unescape(id), instrument, side_code, r);
    }
    return {};
  }

  void write_journal(const tp_broker_order& o, const tp_broker_result& r) {
    ++journal_lines;
    if (!journal) return;
    std::string reason = r.reason;
    for (char& c : reason)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(journal, "%lld %s %s %s %s %s %s %s %s\n", static_cast<long long>(r.broker_ts_ns),
                 escape(o.client_order_id).c_str(), o.instrument,
                 o.side == TP_BROKER_SIDE_SELL ? "SELL" : "BUY", shortest(o.quantity).c_str(),
                 status_name(r.status), shortest(r.filled_quantity).c_str(), shortest(r.fill_price).c_str(),
                 reason.c_str());
    // Flushed per line: a test (or an operator) reading it sees every order,
    // and a crash of the process loses nothing already submitted.
    std::fflush(journal);
  }

  tp_broker_result submit(const tp_broker_order& o) {
    if (settings.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(settings.latency_ms));
    // Three draws per order, always, so that the outcome of order n depends
    // only on the seed and n.
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    double u_reject = unit(rng), u_partial = unit(rng), u_fraction = unit(rng);

    tp_broker_result r{};
    r.broker_ts_ns = now_ns();
    std::string instrument(o.instrument, strnlen(o.instrument, sizeof o.instrument));
    auto quote = quotes.find(instrument);
    bool valid_side = o.side == TP_BROKER_SIDE_BUY || o.side == TP_BROKER_SIDE_SELL;
    if (!valid_side || !(std::isfinite(o.quantity) && o.quantity > 0)) {
      r.status = TP_BROKER_STATUS_REJECTED;
      put(r.reason, "invalid side or quantity");
    } else if (quote == quotes.end()) {
      r.status = TP_BROKER_STATUS_REJECTED;
      put(r.reason, "no market data");
    } else if (u_reject < settings.reject_rate) {
      r.status = TP_BROKER_STATUS_REJECTED;
      put(r.reason, "simulated reject");
    } else {
      r.fill_price = o.side == TP_BROKER_SIDE_BUY ? quote->second.ask : quote->second.bid;
      if (u_partial < settings.partial_fill_rate) {
        r.status = TP_BROKER_STATUS_PARTIALLY_FILLED;
        r.filled_quantity = o.quantity * (0.1 + 0.8 * u_fraction);
        put(r.reason, "immediate-or-cancel: remainder canceled");
      } else {
        r.status = TP_BROKER_STATUS_FILLED;
        r.filled_quantity = o.quantity;
      }
    }
    write_journal(o, r);
    if (r.filled_quantity > 0) put(r.order_id, id_prefix + std::to_string(journal_lines));
    apply(std::string(o.client_order_id, strnlen(o.client_order_id, sizeof o.client_order_id)), instrument,
          o.side, r);
    return r;
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

TP_BROKER_EXPORT int tp_broker_submit(tp_broker* broker, const tp_broker_order* order, tp_broker_result* result) {
  if (!broker || !order || !result) return TP_BROKER_ERROR;
  try {
    *result = broker->submit(*order);
    return TP_BROKER_OK;
  } catch (const std::exception& e) {
    put(result->reason, e.what());
    return TP_BROKER_ERROR;
  }
}

TP_BROKER_EXPORT int tp_broker_query(tp_broker* broker, const char* client_order_id, tp_broker_result* result) {
  if (!broker || !client_order_id || !result) return TP_BROKER_ERROR;
  try {
    auto it = broker->orders.find(client_order_id);
    if (it == broker->orders.end()) {
      *result = tp_broker_result{};
      result->status = TP_BROKER_STATUS_UNKNOWN;
      result->broker_ts_ns = now_ns();
    } else {
      *result = it->second;
    }
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
