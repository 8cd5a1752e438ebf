// The sink's storage bounds without sockets: the sampler's decisions and
// counters, the file's rotation and retention, the torn-tail repair, and a
// failing disk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dead_letter/letter_file.hpp"
#include "dead_letter/sampler.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

namespace fs = std::filesystem;
using tp::dead_letter::LetterFile;
using tp::dead_letter::LetterFileOptions;
using tp::dead_letter::OriginalSampler;
using tp::dead_letter::SamplerOptions;
using tp::test::read_text;
using tp::test::TempDir;

namespace {

constexpr std::int64_t second = 1'000'000'000;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(OriginalSampler, StoresEverythingWithinTheBudget) {
  OriginalSampler s(SamplerOptions{.bytes_per_s = 10'000, .keep_one_in = 10});
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(s.keep("malformed", 1000, i));
  EXPECT_EQ(s.originals_not_stored(), 0u);
  EXPECT_EQ(s.original_bytes_not_stored(), 0u);
}

TEST(OriginalSampler, AFloodKeepsOneInNAndCountsTheRestExactly) {
  OriginalSampler s(SamplerOptions{.bytes_per_s = 10'000, .keep_one_in = 10});
  int kept = 0;
  for (int i = 0; i < 1010; ++i) kept += s.keep("malformed", 1000, 5);
  // 10 within the budget, then 1000 over it of which every 10th is kept.
  EXPECT_EQ(kept, 10 + 100);
  EXPECT_EQ(s.originals_not_stored(), 900u);
  EXPECT_EQ(s.original_bytes_not_stored(), 900'000u);
}

TEST(OriginalSampler, BudgetIsPerReasonAndPerSecond) {
  OriginalSampler s(SamplerOptions{.bytes_per_s = 1000, .keep_one_in = 1000});
  EXPECT_TRUE(s.keep("malformed", 1000, 0));
  EXPECT_TRUE(s.keep("malformed", 1, 1));              // first over budget: sampled in
  EXPECT_FALSE(s.keep("malformed", 1, 2));             // then one in 1000
  EXPECT_TRUE(s.keep("expired", 1000, 3));             // another reason has its own budget
  EXPECT_TRUE(s.keep("malformed", 1000, second + 2));  // a new second, a new budget
  EXPECT_EQ(s.originals_not_stored(), 1u);
  EXPECT_EQ(s.original_bytes_not_stored(), 1u);
}

TEST(OriginalSampler, FirstLetterOfASecondIsKeptEvenWhenLargerThanTheBudget) {
  OriginalSampler s(SamplerOptions{.bytes_per_s = 100, .keep_one_in = 1'000'000});
  EXPECT_TRUE(s.keep("too_large", 65536, 0));
  EXPECT_TRUE(s.keep("too_large", 65536, 1));  // first past the budget
  EXPECT_FALSE(s.keep("too_large", 65536, 2));
  EXPECT_TRUE(s.keep("too_large", 65536, second));
}

TEST(OriginalSampler, EmptyOriginalsAreNeverCountedAsNotStored) {
  OriginalSampler s(SamplerOptions{.bytes_per_s = 0, .keep_one_in = 1'000'000});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(s.keep("unacked", 0, i));
  EXPECT_EQ(s.originals_not_stored(), 0u);
}

TEST(OriginalSampler, InventedReasonsShareOneBudget) {
  OriginalSampler s(SamplerOptions{.bytes_per_s = 1000, .keep_one_in = 1'000'000});
  for (std::size_t i = 0; i < OriginalSampler::max_reasons; ++i)
    EXPECT_TRUE(s.keep("r" + std::to_string(i), 1000, 0));
  // Past the cap, fresh names do not get fresh budgets.
  int kept = 0;
  for (int i = 0; i < 100; ++i) kept += s.keep("x" + std::to_string(i), 1000, 0);
  EXPECT_EQ(kept, 2);  // the shared window's first letter and first one over
}

TEST(LetterFile, RotatesBySizeAndKeepsMaxFiles) {
  TempDir dir;
  const auto path = dir.file("dl.jsonl");
  const std::string line(99, 'x');  // 100 bytes with its newline
  {
    LetterFile f(path, LetterFileOptions{.max_file_bytes = 1000, .max_files = 3, .flush_bytes = 250});
    for (int i = 0; i < 95; ++i) {
      auto l = line;
      l.replace(0, 4, std::to_string(1000 + i));
      ASSERT_TRUE(f.append(l));
      EXPECT_LE(f.size(), 1000u);
    }
    // 10 lines a file: 9 rotations, the oldest 7 files removed.
    EXPECT_EQ(f.rotations(), 9u);
    EXPECT_EQ(f.files_removed(), 7u);
  }
  EXPECT_TRUE(fs::exists(path + ".1"));
  EXPECT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".3"));
  std::uint64_t total = 0;
  for (const auto& p : {path + ".2", path + ".1", path}) {
    auto size = fs::file_size(p);
    EXPECT_LE(size, 1000u) << p;
    total += size;
  }
  EXPECT_LE(total, 3u * 1000u);
  // The newest 25 lines, whole and in order, oldest file first.
  auto kept = lines_of(read_text(path + ".2") + read_text(path + ".1") + read_text(path));
  ASSERT_EQ(kept.size(), 25u);
  for (std::size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i].substr(0, 4), std::to_string(1070 + i));
}

TEST(LetterFile, AppendsToAnExistingFileAndCountsItsSize) {
  TempDir dir;
  const auto path = dir.file("dl.jsonl");
  std::ofstream(path) << "{\"old\":1}\n";
  {
    LetterFile f(path, LetterFileOptions{});
    EXPECT_EQ(f.torn().bytes, 0u);
    EXPECT_EQ(f.size(), 10u);
    f.append("{\"new\":2}");
  }
  EXPECT_EQ(read_text(path), "{\"old\":1}\n{\"new\":2}\n");
  EXPECT_FALSE(fs::exists(path + ".torn"));
}

TEST(LetterFile, ATornLastRecordIsMovedAsideAndCutOff) {
  TempDir dir;
  const auto path = dir.file("dl.jsonl");
  std::ofstream(path) << "{\"a\":1}\n{\"b\":2}\n{\"c\":3,\"orig";
  {
    LetterFile f(path, LetterFileOptions{});
    EXPECT_EQ(f.torn().bytes, 12u);
    EXPECT_EQ(f.torn().side_path, path + ".torn");
    f.append("{\"d\":4}");
  }
  EXPECT_EQ(read_text(path), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
  EXPECT_EQ(read_text(path + ".torn"), "{\"c\":3,\"orig");
}

TEST(LetterFile, AFileWithoutAnyNewlineIsMovedAsideWhole) {
  TempDir dir;
  const auto path = dir.file("dl.jsonl");
  std::string junk(200'000, 'j');  // more than one read chunk
  std::ofstream(path) << junk;
  {
    LetterFile f(path, LetterFileOptions{});
    EXPECT_EQ(f.torn().bytes, junk.size());
    EXPECT_EQ(f.size(), 0u);
  }
  EXPECT_EQ(read_text(path), "");
  EXPECT_EQ(read_text(path + ".torn"), junk);
}

TEST(LetterFile, AFailingDiskLosesLinesCountedNotSilently) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  LetterFile f("/dev/full", LetterFileOptions{.flush_bytes = 1 << 20});
  EXPECT_TRUE(f.append("{\"a\":1}"));  // buffered
  EXPECT_TRUE(f.append("{\"b\":2}"));
  EXPECT_FALSE(f.flush());
  EXPECT_EQ(f.write_errors(), 1u);
  EXPECT_EQ(f.lines_lost(), 2u);
  EXPECT_FALSE(f.last_error().empty());
}

}  // namespace
