// CsvTickReader: reads recorded ticks from a CSV file, one row per call, and
// turns each into a tick or an error naming the line and the problem. It never
// throws for a bad row (bad input is a value, to be dead-lettered and
// skipped); it throws only when the file cannot be used at all (missing,
// unknown header). Owns its input stream; one instance per thread.
//
// Accepted formats, chosen by the header line (a UTF-8 BOM, CRLF line ends,
// spaces around fields and the header's letter case are tolerated; blank lines
// are ignored):
//   ours:       timestamp,instrument,bid,ask,bid_volume,ask_volume
//               timestamp = epoch milliseconds (digits) or ISO-8601 UTC
//               "2024-01-02T03:04:05.123Z" (fraction optional, up to 9 digits)
//   dukascopy:  Gmt time,Ask,Bid,AskVolume,BidVolume
//               time = "01.01.2024 00:00:00.123" (day.month.year, UTC,
//               fraction optional, up to 9 digits); the instrument comes from
//               gateway.csv_instrument or else the file name up to the first
//               '_' (or '.'), e.g. EURUSD_Ticks_2024.csv -> EURUSD; when that
//               is not a configured instrument, the first '_'-separated part
//               of the name that is one, ignoring case
//               (ticks_eurusd_dukascopy.csv -> EURUSD).
// A row is refused for: a wrong column count, a bad timestamp, a price that is
// not a finite positive number, bid > ask, a volume that is not a finite
// number >= 0, or an instrument that is not configured.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "proto/messages.hpp"

namespace tp::gateway {

enum class CsvFormat { ours, dukascopy };

// One data line: a tick (seq and gateway_ts_ns unset) or the reason there is none.
struct CsvRow {
  std::size_t line = 0;  // 1-based line number in the file (the header is line 1)
  std::string raw;       // the line as read, without the line end
  std::optional<proto::TickEvent> tick;
  std::string error;  // set when tick is empty
  bool ok() const noexcept { return tick.has_value(); }
};

class CsvTickReader {
 public:
  // Opens `path`. `csv_instrument` names the instrument for files without an
  // instrument column (empty: derive it from the file name); `known` is the
  // set of configured instruments. Throws std::runtime_error naming the file
  // when it cannot be opened, has no or an unknown header, or (Dukascopy) its
  // instrument is not configured.
  CsvTickReader(const std::string& path, const std::string& csv_instrument,
                std::set<std::string, std::less<>> known);

  // Same over any stream (tests); `file_name` is used for messages and for
  // deriving the instrument.
  CsvTickReader(std::unique_ptr<std::istream> in, const std::string& file_name,
                const std::string& csv_instrument, std::set<std::string, std::less<>> known);

  // The next data row, or nullopt at the end of the file.
  std::optional<CsvRow> next();

  CsvFormat format() const noexcept { return format_; }
  // The instrument of a Dukascopy file (empty for our format).
  const std::string& instrument() const noexcept { return instrument_; }

 private:
  void read_header(const std::string& file_name, const std::string& csv_instrument);
  std::string parse_ours(std::string_view line, proto::TickEvent& t) const;
  std::string parse_dukascopy(std::string_view line, proto::TickEvent& t) const;

  std::unique_ptr<std::istream> in_;
  std::set<std::string, std::less<>> known_;
  CsvFormat format_ = CsvFormat::ours;
  std::string instrument_;
  std::size_t line_no_ = 0;
  std::string buf_;
};

// Timestamp parsers, exposed for tests. Each returns epoch nanoseconds or
// nullopt when the text is not exactly of that form or not a valid time.
std::optional<std::int64_t> parse_epoch_ms(std::string_view s);
std::optional<std::int64_t> parse_iso8601_utc(std::string_view s);     // 2024-01-02T03:04:05.123Z
std::optional<std::int64_t> parse_dukascopy_time(std::string_view s);  // 01.01.2024 00:00:00.123

// The instrument a Dukascopy export is named for: the file's base name up to
// the first '_' or '.'; when that is not in `known`, the first part of the
// name between '_' or '.' that is in `known` ignoring case; else the first
// part (which the caller will then refuse).
std::string instrument_from_file_name(std::string_view path, const std::set<std::string, std::less<>>& known);

}  // namespace tp::gateway
