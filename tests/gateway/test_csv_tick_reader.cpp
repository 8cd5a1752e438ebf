#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/config.hpp"
#include "gateway/csv_tick_reader.hpp"

namespace {

using tp::gateway::CsvTickReader;

std::set<std::string, std::less<>> known() {
  std::set<std::string, std::less<>> s;
  for (const auto& i : tp::Config{}.instruments) s.insert(i.symbol);
  return s;
}

CsvTickReader reader(const std::string& text, const std::string& file_name = "test.csv",
                     const std::string& csv_instrument = "") {
  return CsvTickReader(std::make_unique<std::istringstream>(text), file_name, csv_instrument, known());
}

std::vector<tp::gateway::CsvRow> all_rows(CsvTickReader& r) {
  std::vector<tp::gateway::CsvRow> rows;
  while (auto row = r.next()) rows.push_back(std::move(*row));
  return rows;
}

// 2024-01-02T08:00:00Z
constexpr std::int64_t jan2_8h_ns = 1'704'182'400'000'000'000;

TEST(CsvTimestamps, EpochMillis) {
  EXPECT_EQ(tp::gateway::parse_epoch_ms("1704182400123"), jan2_8h_ns + 123'000'000);
  EXPECT_EQ(tp::gateway::parse_epoch_ms("0"), 0);
  EXPECT_FALSE(tp::gateway::parse_epoch_ms(""));
  EXPECT_FALSE(tp::gateway::parse_epoch_ms("-5"));
  EXPECT_FALSE(tp::gateway::parse_epoch_ms("17041824001x"));
  EXPECT_FALSE(tp::gateway::parse_epoch_ms("99999999999999"));  // would overflow int64 ns
}

TEST(CsvTimestamps, Iso8601Utc) {
  EXPECT_EQ(tp::gateway::parse_iso8601_utc("2024-01-02T08:00:00.123Z"), jan2_8h_ns + 123'000'000);
  EXPECT_EQ(tp::gateway::parse_iso8601_utc("2024-01-02T08:00:00Z"), jan2_8h_ns);
  EXPECT_EQ(tp::gateway::parse_iso8601_utc("2024-01-02T08:00:00.000000007Z"), jan2_8h_ns + 7);
  EXPECT_EQ(tp::gateway::parse_iso8601_utc("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(tp::gateway::parse_iso8601_utc("2024-02-29T00:00:00Z"), 1'709'164'800'000'000'000);  // leap day
  EXPECT_FALSE(tp::gateway::parse_iso8601_utc("2023-02-29T00:00:00Z"));     // not a leap year
  EXPECT_FALSE(tp::gateway::parse_iso8601_utc("2024-01-02T08:00:00.123"));  // no zone
  EXPECT_FALSE(tp::gateway::parse_iso8601_utc("2024-01-02T24:00:00Z"));
  EXPECT_FALSE(tp::gateway::parse_iso8601_utc("2024-01-02T08:00:00.1234567891Z"));  // > 9 digits
}

TEST(CsvTimestamps, DukascopyToExactNanoseconds) {
  EXPECT_EQ(tp::gateway::parse_dukascopy_time("01.01.2024 00:00:00.123"), 1'704'067'200'123'000'000);
  EXPECT_EQ(tp::gateway::parse_dukascopy_time("02.01.2024 08:00:00.633"), jan2_8h_ns + 633'000'000);
  EXPECT_EQ(tp::gateway::parse_dukascopy_time("31.12.2023 23:59:59.999"), 1'704'067'199'999'000'000);
  EXPECT_EQ(tp::gateway::parse_dukascopy_time("02.01.2024 08:00:00"), jan2_8h_ns);
  EXPECT_FALSE(tp::gateway::parse_dukascopy_time("2024.01.02 08:00:00.633"));
  EXPECT_FALSE(tp::gateway::parse_dukascopy_time("13.13.2024 08:00:00.633"));  // month 13
  EXPECT_FALSE(tp::gateway::parse_dukascopy_time("02.01.2024T08:00:00.633"));
}

TEST(CsvTickReader, OurFormatBothTimestampForms) {
  auto r = reader(
      "timestamp,instrument,bid,ask,bid_volume,ask_volume\n"
      "1704182400000,EURUSD,1.10400,1.10402,1000000,2000000\n"
      "2024-01-02T08:00:00.250Z,USDJPY,141.650,141.654,0,500000\n");
  EXPECT_EQ(r.format(), tp::gateway::CsvFormat::ours);
  auto rows = all_rows(r);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0].ok()) << rows[0].error;
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(rows[0].tick->instrument, "EURUSD");
  EXPECT_EQ(rows[0].tick->source_ts_ns, jan2_8h_ns);
  EXPECT_DOUBLE_EQ(rows[0].tick->bid, 1.104);
  EXPECT_DOUBLE_EQ(rows[0].tick->ask, 1.10402);
  EXPECT_DOUBLE_EQ(rows[0].tick->bid_volume, 1e6);
  EXPECT_DOUBLE_EQ(rows[0].tick->ask_volume, 2e6);
  ASSERT_TRUE(rows[1].ok()) << rows[1].error;
  EXPECT_EQ(rows[1].tick->instrument, "USDJPY");
  EXPECT_EQ(rows[1].tick->source_ts_ns, jan2_8h_ns + 250'000'000);
  EXPECT_DOUBLE_EQ(rows[1].tick->bid_volume, 0);  // zero volume is allowed, negative is not
}

TEST(CsvTickReader, DukascopyInstrumentFromFileNameAndColumnOrder) {
  auto r = reader(
      "Gmt time,Ask,Bid,AskVolume,BidVolume\n"
      "01.01.2024 00:00:00.123,1.10412,1.10405,1.5,0.75\n",
      "/data/EURUSD_Ticks_2024.csv");
  EXPECT_EQ(r.format(), tp::gateway::CsvFormat::dukascopy);
  EXPECT_EQ(r.instrument(), "EURUSD");
  auto rows = all_rows(r);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].ok()) << rows[0].error;
  const auto& t = *rows[0].tick;
  EXPECT_EQ(t.instrument, "EURUSD");
  EXPECT_EQ(t.source_ts_ns, 1'704'067'200'123'000'000);
  EXPECT_DOUBLE_EQ(t.ask, 1.10412);  // Ask comes first in this format
  EXPECT_DOUBLE_EQ(t.bid, 1.10405);
  EXPECT_DOUBLE_EQ(t.ask_volume, 1.5);
  EXPECT_DOUBLE_EQ(t.bid_volume, 0.75);
}

TEST(CsvTickReader, DukascopyConfiguredInstrumentWins) {
  auto r = reader("Gmt time,Ask,Bid,AskVolume,BidVolume\n", "EURUSD_Ticks.csv", "GBPUSD");
  EXPECT_EQ(r.instrument(), "GBPUSD");
  EXPECT_EQ(tp::gateway::instrument_from_file_name("dir_x/AUDUSD.csv", known()), "AUDUSD");
  EXPECT_EQ(tp::gateway::instrument_from_file_name("/a/EURUSD_Ticks_2024.csv", known()), "EURUSD");
  // Not the first part: the first part that is a configured instrument.
  EXPECT_EQ(tp::gateway::instrument_from_file_name("/a/ticks_gbpusd_2024.csv", known()), "GBPUSD");
  EXPECT_EQ(tp::gateway::instrument_from_file_name("/a/ticks_2024.csv", known()), "ticks");
}

TEST(CsvTickReader, DukascopyUnknownInstrumentRefusedAtOpen) {
  EXPECT_THROW(reader("Gmt time,Ask,Bid,AskVolume,BidVolume\n", "XAUUSD_Ticks.csv"), std::runtime_error);
  EXPECT_THROW(reader("Gmt time,Ask,Bid,AskVolume,BidVolume\n", "ticks.csv"), std::runtime_error);
}

TEST(CsvTickReader, BomCrlfBlankLinesAndSpaces) {
  auto r = reader(
      "\xEF\xBB\xBFGmt Time, Ask, Bid, AskVolume, BidVolume\r\n"
      "02.01.2024 08:00:00.633, 1.10415 ,1.10413,2.25,1.20\r\n"
      "\r\n"
      "02.01.2024 08:00:01.448,1.10418,1.10416,1.50,0.90\r\n",
      "EURUSD_x.csv");
  EXPECT_EQ(r.format(), tp::gateway::CsvFormat::dukascopy);
  auto rows = all_rows(r);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0].ok()) << rows[0].error;
  ASSERT_TRUE(rows[1].ok()) << rows[1].error;
  EXPECT_EQ(rows[1].line, 4u);  // the blank line still counts as a line
  EXPECT_DOUBLE_EQ(rows[1].tick->bid_volume, 0.9);
  EXPECT_EQ(rows[0].raw, "02.01.2024 08:00:00.633, 1.10415 ,1.10413,2.25,1.20");  // no CR
}

TEST(CsvTickReader, UnknownOrMissingHeaderRefused) {
  EXPECT_THROW(reader("time,sym,bid,ask\n1,EURUSD,1,2\n"), std::runtime_error);
  EXPECT_THROW(reader(""), std::runtime_error);
  EXPECT_THROW(CsvTickReader("/nonexistent/ticks.csv", "", known()), std::runtime_error);
}

TEST(CsvTickReader, EachMalformedRowKindNamesItsLine) {
  CsvTickReader r(std::string(GATEWAY_TEST_DATA) + "/ticks_bad_rows.csv", "", known());
  auto rows = all_rows(r);
  struct Want {
    std::size_t line;
    const char* problem;  // a fragment of the error text
  };
  const std::vector<Want> bad{
      {4, "wrong column count: expected 6, got 5"},
      {5, "wrong column count: expected 6, got 7"},
      {6, "bad timestamp"},
      {7, "bid is not finite"},
      {8, "ask is not finite"},
      {9, "bid must be positive"},
      {10, "crossed book"},
      {11, "bid_volume must not be negative"},
      {12, "unknown instrument 'XAUUSD'"},
      {13, "bid is not a number"},
  };
  std::vector<std::size_t> good_lines;
  std::size_t b = 0;
  for (const auto& row : rows) {
    if (row.ok()) {
      good_lines.push_back(row.line);
      continue;
    }
    ASSERT_LT(b, bad.size()) << "unexpected error on line " << row.line << ": " << row.error;
    EXPECT_EQ(row.line, bad[b].line) << row.error;
    EXPECT_NE(row.error.find(bad[b].problem), std::string::npos)
        << "line " << row.line << ": got '" << row.error << "', want '" << bad[b].problem << "'";
    EXPECT_FALSE(row.raw.empty());
    ++b;
  }
  EXPECT_EQ(b, bad.size());
  EXPECT_EQ(good_lines, (std::vector<std::size_t>{2, 3, 15, 16}));
}

TEST(CsvTickReader, SampleFilesParseCleanly) {
  for (const char* name : {"ticks_sample.csv", "ticks_eurusd_dukascopy.csv"}) {
    CsvTickReader r(std::string(GATEWAY_SAMPLES) + "/" + name, "", known());
    std::size_t n = 0;
    std::int64_t prev_ts = 0;
    while (auto row = r.next()) {
      ASSERT_TRUE(row->ok()) << name << " line " << row->line << ": " << row->error;
      EXPECT_GE(row->tick->source_ts_ns, prev_ts) << name << " line " << row->line;
      prev_ts = row->tick->source_ts_ns;
      ++n;
    }
    EXPECT_GE(n, 40u) << name;
  }
}

}  // namespace
