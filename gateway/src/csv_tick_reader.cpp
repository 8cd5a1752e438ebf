#include "gateway/csv_tick_reader.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <vector>

namespace tp::gateway {
namespace {

constexpr std::int64_t ns_per_s = 1'000'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits on ',' into at most `out.size()` fields; returns the real count so
// that too many columns are reported rather than silently merged.
std::size_t split(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  for (;;) {
    auto comma = line.find(',');
    out.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos) return out.size();
    line.remove_prefix(comma + 1);
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Exactly `n` decimal digits.
std::optional<int> digits(std::string_view s, std::size_t n) {
  if (s.size() != n) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// ".123" style fraction of a second (1 to 9 digits) as nanoseconds; an empty
// string is no fraction.
std::optional<std::int64_t> fraction_ns(std::string_view s) {
  if (s.empty()) return 0;
  if (s.front() != '.' || s.size() < 2 || s.size() > 10) return std::nullopt;
  s.remove_prefix(1);
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  for (std::size_t i = s.size(); i < 9; ++i) v *= 10;
  return v;
}

std::optional<std::int64_t> to_epoch_ns(int y, int mo, int d, int h, int mi, int sec, std::int64_t frac) {
  using namespace std::chrono;
  // Bounded so that the nanosecond count cannot overflow (int64 ends in 2262).
  if (y < 1970 || y > 2200 || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  std::int64_t days = sys_days(ymd).time_since_epoch().count();
  return ((days * 24 + h) * 60 + mi) * 60 * ns_per_s + sec * ns_per_s + frac;
}

// "HH:MM:SS[.fff]" -> fields; false when malformed.
bool parse_clock(std::string_view s, int& h, int& mi, int& sec, std::int64_t& frac) {
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return false;
  auto hh = digits(s.substr(0, 2), 2), mm = digits(s.substr(3, 2), 2), ss = digits(s.substr(6, 2), 2);
  auto fr = fraction_ns(s.substr(8));
  if (!hh || !mm || !ss || !fr) return false;
  h = *hh, mi = *mm, sec = *ss, frac = *fr;
  return true;
}

// A finite number; the whole field must be the number.
std::optional<double> number(std::string_view s) {
  double v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Checks and stores prices and volumes; returns the problem or "".
std::string fill_book(proto::TickEvent& t, std::string_view bid, std::string_view ask,
                      std::string_view bid_vol, std::string_view ask_vol) {
  struct Field {
    const char* name;
    std::string_view text;
    double* out;
    bool price;
  };
  for (const Field& f : std::array<Field, 4>{{{"bid", bid, &t.bid, true},
                                              {"ask", ask, &t.ask, true},
                                              {"bid_volume", bid_vol, &t.bid_volume, false},
                                              {"ask_volume", ask_vol, &t.ask_volume, false}}}) {
    auto v = number(f.text);
    if (!v) return std::string(f.name) + " is not a number: '" + std::string(f.text) + "'";
    if (!std::isfinite(*v)) return std::string(f.name) + " is not finite: '" + std::string(f.text) + "'";
    if (f.price && *v <= 0) return std::string(f.name) + " must be positive: '" + std::string(f.text) + "'";
    if (!f.price && *v < 0)
      return std::string(f.name) + " must not be negative: '" + std::string(f.text) + "'";
    *f.out = *v;
  }
  if (t.bid > t.ask) return "crossed book: bid " + std::string(bid) + " above ask " + std::string(ask);
  return {};
}

std::string column_count_error(std::size_t want, std::size_t got) {
  return "wrong column count: expected " + std::to_string(want) + ", got " + std::to_string(got);
}

}  // namespace

std::optional<std::int64_t> parse_epoch_ms(std::string_view s) {
  if (s.empty() || s.size() > 13) return std::nullopt;
  std::int64_t ms = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    ms = ms * 10 + (c - '0');
  }
  if (ms > std::numeric_limits<std::int64_t>::max() / 1'000'000) return std::nullopt;
  return ms * 1'000'000;
}

std::optional<std::int64_t> parse_iso8601_utc(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z
  if (s.size() < 20 || s.back() != 'Z' || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't'))
    return std::nullopt;
  auto y = digits(s.substr(0, 4), 4), mo = digits(s.substr(5, 2), 2), d = digits(s.substr(8, 2), 2);
  int h = 0, mi = 0, sec = 0;
  std::int64_t frac = 0;
  if (!y || !mo || !d || !parse_clock(s.substr(11, s.size() - 12), h, mi, sec, frac)) return std::nullopt;
  return to_epoch_ns(*y, *mo, *d, h, mi, sec, frac);
}

std::optional<std::int64_t> parse_dukascopy_time(std::string_view s) {
  // DD.MM.YYYY HH:MM:SS[.f{1,9}]
  if (s.size() < 19 || s[2] != '.' || s[5] != '.' || s[10] != ' ') return std::nullopt;
  auto d = digits(s.substr(0, 2), 2), mo = digits(s.substr(3, 2), 2), y = digits(s.substr(6, 4), 4);
  int h = 0, mi = 0, sec = 0;
  std::int64_t frac = 0;
  if (!y || !mo || !d || !parse_clock(s.substr(11), h, mi, sec, frac)) return std::nullopt;
  return to_epoch_ns(*y, *mo, *d, h, mi, sec, frac);
}

std::string instrument_from_file_name(std::string_view path,
                                      const std::set<std::string, std::less<>>& known) {
  auto slash = path.find_last_of('/');
  if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
  std::string first(path.substr(0, path.find_first_of("_.")));
  if (known.count(first)) return first;
  for (std::string_view rest = path; !rest.empty();) {
    auto end = rest.find_first_of("_.");
    std::string part = lower(rest.substr(0, end));
    for (const auto& k : known)
      if (lower(k) == part) return k;
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return first;
}

CsvTickReader::CsvTickReader(const std::string& path, const std::string& csv_instrument,
                             std::set<std::string, std::less<>> known)
    : known_(std::move(known)) {
  auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*file) throw std::runtime_error("csv " + path + ": cannot open");
  in_ = std::move(file);
  read_header(path, csv_instrument);
}

CsvTickReader::CsvTickReader(std::unique_ptr<std::istream> in, const std::string& file_name,
                             const std::string& csv_instrument, std::set<std::string, std::less<>> known)
    : in_(std::move(in)), known_(std::move(known)) {
  read_header(file_name, csv_instrument);
}

void CsvTickReader::read_header(const std::string& file_name, const std::string& csv_instrument) {
  if (!std::getline(*in_, buf_)) throw std::runtime_error("csv " + file_name + ": empty file, no header");
  line_no_ = 1;
  std::string_view header = buf_;
  if (header.substr(0, 3) == "\xEF\xBB\xBF") header.remove_prefix(3);  // UTF-8 BOM (Excel, Windows tools)
  std::vector<std::string_view> cols;
  split(header, cols);
  std::string joined;
  for (auto c : cols) joined += (joined.empty() ? "" : ",") + lower(c);

  if (joined == "timestamp,instrument,bid,ask,bid_volume,ask_volume") {
    format_ = CsvFormat::ours;
  } else if (joined == "gmt time,ask,bid,askvolume,bidvolume") {
    format_ = CsvFormat::dukascopy;
    instrument_ = csv_instrument.empty() ? instrument_from_file_name(file_name, known_) : csv_instrument;
    if (!known_.count(instrument_))
      throw std::runtime_error("csv " + file_name + ": instrument '" + instrument_ +
                               "' (from gateway.csv_instrument or the file name) is not configured");
  } else {
    throw std::runtime_error("csv " + file_name + " line 1: unknown header '" + std::string(trim(header)) +
                             "'; expected 'timestamp,instrument,bid,ask,bid_volume,ask_volume' or "
                             "'Gmt time,Ask,Bid,AskVolume,BidVolume'");
  }
}

std::optional<CsvRow> CsvTickReader::next() {
  while (std::getline(*in_, buf_)) {
    ++line_no_;
    if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
    if (trim(buf_).empty()) continue;  // blank lines (often one at the end) are not rows
    CsvRow row;
    row.line = line_no_;
    row.raw = buf_;
    proto::TickEvent t;
    row.error = format_ == CsvFormat::ours ? parse_ours(buf_, t) : parse_dukascopy(buf_, t);
    if (row.error.empty()) row.tick = std::move(t);
    return row;
  }
  return std::nullopt;
}

std::string CsvTickReader::parse_ours(std::string_view line, proto::TickEvent& t) const {
  std::vector<std::string_view> f;
  if (auto n = split(line, f); n != 6) return column_count_error(6, n);
  auto ts = parse_epoch_ms(f[0]);
  if (!ts) ts = parse_iso8601_utc(f[0]);
  if (!ts) return "bad timestamp '" + std::string(f[0]) + "' (want epoch ms or 2024-01-02T03:04:05.123Z)";
  auto it = known_.find(f[1]);
  if (it == known_.end()) return "unknown instrument '" + std::string(f[1]) + "'";
  t.instrument = *it;
  t.source_ts_ns = *ts;
  return fill_book(t, f[2], f[3], f[4], f[5]);
}

std::string CsvTickReader::parse_dukascopy(std::string_view line, proto::TickEvent& t) const {
  std::vector<std::string_view> f;
  if (auto n = split(line, f); n != 5) return column_count_error(5, n);
  auto ts = parse_dukascopy_time(f[0]);
  if (!ts) return "bad timestamp '" + std::string(f[0]) + "' (want 01.01.2024 00:00:00.123)";
  t.instrument = instrument_;
  t.source_ts_ns = *ts;
  return fill_book(t, /*bid=*/f[2], /*ask=*/f[1], /*bid_volume=*/f[4], /*ask_volume=*/f[3]);
}

}  // namespace tp::gateway
