// The sink's key memory without sockets: duplicates by (source, key), the
// oldest forgotten first, and the rebuild from files LetterFile wrote (a
// rotated file, a torn tail, lines without a key, escaped characters, the
// byte budget, lines across read chunks).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/stats.hpp"
#include "dead_letter/key_memory.hpp"
#include "dead_letter/letter_file.hpp"
#include "dead_letter/sink.hpp"
#include "test_support/temp_dir.hpp"

using tp::dead_letter::KeyMemory;
using tp::dead_letter::letter_key_of;
using tp::dead_letter::LetterFile;
using tp::dead_letter::LetterFileOptions;
using tp::dead_letter::rebuild_key_memory;
using tp::dead_letter::to_json_line;
using tp::test::TempDir;

namespace {

tp::proto::DeadLetter letter(std::string source, std::string key, std::string original = "xyz") {
  return tp::proto::DeadLetter{.source = std::move(source),
                               .reason = "trading_halted",
                               .detail = "refused",
                               .ts_ns = 1'700'000'000'000'000'000,
                               .original = std::move(original),
                               .key = std::move(key)};
}

// The sink's own question for a letter: the pair as its line spells it.
bool seen(KeyMemory& m, const tp::proto::DeadLetter& d) {
  return m.seen_or_remember(tp::json_escape(d.source), tp::json_escape(d.key));
}

TEST(KeyMemory, TheSamePairIsADuplicate) {
  KeyMemory m;
  EXPECT_FALSE(m.seen_or_remember("executor", "signal/s1"));
  EXPECT_TRUE(m.seen_or_remember("executor", "signal/s1"));
  EXPECT_TRUE(m.seen_or_remember("executor", "signal/s1"));
  EXPECT_FALSE(m.seen_or_remember("executor", "signal/s2"));
  EXPECT_EQ(m.size(), 2u);
}

TEST(KeyMemory, TheSameKeyFromAnotherSourceIsNot) {
  KeyMemory m;
  EXPECT_FALSE(m.seen_or_remember("executor", "order/o1"));
  EXPECT_FALSE(m.seen_or_remember("executor:2", "order/o1"));
  // The boundary between source and key counts.
  EXPECT_FALSE(m.seen_or_remember("ab", "c"));
  EXPECT_FALSE(m.seen_or_remember("a", "bc"));
  EXPECT_EQ(m.size(), 4u);
}

TEST(KeyMemory, WhenFullTheOldestIsForgottenFirst) {
  KeyMemory m(3);
  EXPECT_FALSE(m.seen_or_remember("s", "a"));
  EXPECT_FALSE(m.seen_or_remember("s", "b"));
  EXPECT_FALSE(m.seen_or_remember("s", "c"));
  EXPECT_TRUE(m.seen_or_remember("s", "a"));   // a lookup does not make it younger
  EXPECT_FALSE(m.seen_or_remember("s", "d"));  // forgets a
  EXPECT_EQ(m.size(), 3u);
  EXPECT_TRUE(m.seen_or_remember("s", "b"));
  EXPECT_TRUE(m.seen_or_remember("s", "c"));
  EXPECT_TRUE(m.seen_or_remember("s", "d"));
  EXPECT_FALSE(m.seen_or_remember("s", "a"));  // remembered again: forgets b
  EXPECT_FALSE(m.seen_or_remember("s", "b"));
  EXPECT_EQ(m.size(), 3u);
}

TEST(KeyMemory, ReadsTheKeyOfTheSinksLines) {
  // The views point into the line: it must outlive them.
  std::string_view source;
  std::string_view key;
  const auto keyed = to_json_line(letter("executor", "signal/s1"));
  ASSERT_TRUE(letter_key_of(keyed, source, key));
  EXPECT_EQ(source, "executor");
  EXPECT_EQ(key, "signal/s1");
  const auto unkeyed = to_json_line(letter("executor", ""), false);
  ASSERT_TRUE(letter_key_of(unkeyed, source, key));
  EXPECT_EQ(source, "executor");
  EXPECT_EQ(key, "");
  const auto escaped = to_json_line(letter("x\"y", "k\\\"ey"));
  ASSERT_TRUE(letter_key_of(escaped, source, key));
  EXPECT_EQ(source, "x\\\"y");
  EXPECT_EQ(key, "k\\\\\\\"ey");
  EXPECT_FALSE(letter_key_of(R"({"ts_ns":1,"reason":"malformed"})", source, key));  // no source
  EXPECT_FALSE(letter_key_of(R"({"ts_ns":1,"source":"executor","key":"k)", source, key));
  EXPECT_FALSE(letter_key_of("not json", source, key));
  EXPECT_FALSE(letter_key_of("", source, key));
}

TEST(KeyMemory, RebuildsFromTheLiveAndRotatedFilesSkippingATornTail) {
  TempDir dir;
  const auto path = dir.file("dead_letters.jsonl");
  std::vector<tp::proto::DeadLetter> keyed = {
      letter("executor", "signal/s1"),
      letter("executor", "order/o1"),
      letter("strat\"egy:1", "quote\" back\\slash\nnewline\ttab"),
      letter("executor", "caf\xc3\xa9 \x01 control"),
      letter("executor", std::string("not utf-8 \xff\xfe", 12)),
      letter("executor:2", "signal/s1"),
  };
  {
    // Lines of ~150 bytes, ~6 a file: the first letters end up in .1 and .2.
    LetterFile f(path, LetterFileOptions{.max_file_bytes = 1000, .max_files = 10, .flush_bytes = 1});
    for (const auto& d : keyed) {
      ASSERT_TRUE(f.append(to_json_line(d)));
      ASSERT_TRUE(f.append(to_json_line(letter("executor", ""))));  // no key: not remembered
      ASSERT_TRUE(f.append(R"({"ts_ns":1,"reason":"not the sink's"})"));
    }
    EXPECT_GE(f.rotations(), 2u);
  }
  // A kill -9 mid-write: a whole-looking record without its newline.
  std::ofstream(path, std::ios::app) << to_json_line(letter("executor", "torn/t1"));

  KeyMemory m;
  auto r = rebuild_key_memory(m, path);
  EXPECT_EQ(r.keys, keyed.size());
  EXPECT_EQ(m.size(), keyed.size());
  EXPECT_GE(r.files_read, 3);
  EXPECT_EQ(r.lines_skipped, keyed.size());
  for (const auto& d : keyed) EXPECT_TRUE(seen(m, d)) << d.source << " " << d.key;
  EXPECT_FALSE(seen(m, letter("executor", "torn/t1")));
  EXPECT_FALSE(seen(m, letter("executor", "signal/s2")));
}

TEST(KeyMemory, RebuildKeepsTheNewestAndForgetsInTheOrderWritten) {
  TempDir dir;
  const auto path = dir.file("dead_letters.jsonl");
  {
    LetterFile f(path, LetterFileOptions{.max_file_bytes = 500, .max_files = 10, .flush_bytes = 1});
    for (int i = 1; i <= 5; ++i)
      ASSERT_TRUE(f.append(to_json_line(letter("executor", "k" + std::to_string(i)))));
  }
  KeyMemory m(2);
  auto r = rebuild_key_memory(m, path);
  EXPECT_EQ(r.keys, 2u);
  EXPECT_TRUE(seen(m, letter("executor", "k5")));
  EXPECT_TRUE(seen(m, letter("executor", "k4")));
  // k4 was written before k5: it goes first.
  EXPECT_FALSE(seen(m, letter("executor", "new")));
  EXPECT_TRUE(seen(m, letter("executor", "k5")));
  EXPECT_FALSE(seen(m, letter("executor", "k4")));
}

TEST(KeyMemory, RebuildReadsAtMostItsBudgetNewestFirst) {
  TempDir dir;
  const auto path = dir.file("dead_letters.jsonl");
  std::uint64_t line_bytes = 0;
  {
    LetterFile f(path, LetterFileOptions{});
    for (int i = 0; i < 10; ++i) {
      auto line = to_json_line(letter("executor", "k" + std::to_string(i)));
      line_bytes = line.size() + 1;  // every line the same length
      ASSERT_TRUE(f.append(line));
    }
  }
  KeyMemory m;
  // Three whole lines and half of the fourth newest: the half is not a line.
  auto r = rebuild_key_memory(m, path, 3 * line_bytes + line_bytes / 2);
  EXPECT_EQ(r.bytes_read, 3 * line_bytes + line_bytes / 2);
  EXPECT_EQ(r.keys, 3u);
  EXPECT_EQ(r.lines_skipped, 0u);
  for (int i = 7; i < 10; ++i) EXPECT_TRUE(seen(m, letter("executor", "k" + std::to_string(i))));
  EXPECT_FALSE(seen(m, letter("executor", "k6")));
}

TEST(KeyMemory, RebuildReadsLinesAcrossReadChunks) {
  TempDir dir;
  const auto path = dir.file("dead_letters.jsonl");
  // ~3.5 MB of lines of varied length: many straddle a 1 MiB chunk boundary.
  constexpr int count = 3000;
  {
    LetterFile f(path, LetterFileOptions{});
    for (int i = 0; i < count; ++i)
      ASSERT_TRUE(f.append(
          to_json_line(letter("executor", "k" + std::to_string(i), std::string(800 + i % 97, 'o')))));
  }
  KeyMemory m;
  auto r = rebuild_key_memory(m, path);
  EXPECT_EQ(r.keys, static_cast<std::size_t>(count));
  EXPECT_EQ(r.lines_skipped, 0u);
  EXPECT_EQ(r.files_read, 1);
  for (int i = 0; i < count; ++i) ASSERT_TRUE(seen(m, letter("executor", "k" + std::to_string(i)))) << i;
}

TEST(KeyMemory, NoFilesRebuildNothing) {
  TempDir dir;
  KeyMemory m;
  auto r = rebuild_key_memory(m, dir.file("dead_letters.jsonl"));
  EXPECT_EQ(r.keys, 0u);
  EXPECT_EQ(r.files_read, 0);
  EXPECT_EQ(m.size(), 0u);
}

TEST(KeyMemory, AKeyFileGivesBackTheKeysOldestFirst) {
  TempDir dir;
  const auto path = dir.file("dead_letters.jsonl.keys");
  KeyMemory saved(3);
  for (const char* k : {"a", "b", "c", "d"}) seen(saved, letter("executor", k));  // "a" forgotten
  ASSERT_TRUE(tp::dead_letter::save_key_file(saved, path));

  KeyMemory loaded(3);
  EXPECT_EQ(tp::dead_letter::load_key_file(loaded, path), 3u);
  EXPECT_EQ(loaded.oldest_first(), saved.oldest_first());
  for (const char* k : {"b", "c", "d"}) EXPECT_TRUE(seen(loaded, letter("executor", k))) << k;
  EXPECT_FALSE(seen(loaded, letter("executor", "a")));
  // Loaded oldest first: "b" is the next to be forgotten ("a" just took a slot).
  EXPECT_FALSE(seen(loaded, letter("executor", "b")));
}

TEST(KeyMemory, NoKeyFileOrAnotherFileOrATornHashLoadsWhatIsWhole) {
  TempDir dir;
  KeyMemory m;
  EXPECT_EQ(tp::dead_letter::load_key_file(m, dir.file("none.keys")), 0u);
  std::ofstream(dir.file("other.keys")) << "not a key file at all";
  EXPECT_EQ(tp::dead_letter::load_key_file(m, dir.file("other.keys")), 0u);
  EXPECT_EQ(m.size(), 0u);

  KeyMemory saved;
  seen(saved, letter("executor", "x"));
  seen(saved, letter("executor", "y"));
  const auto path = dir.file("torn.keys");
  ASSERT_TRUE(tp::dead_letter::save_key_file(saved, path));
  std::ofstream(path, std::ios::app) << "123";  // a torn third hash
  EXPECT_EQ(tp::dead_letter::load_key_file(m, path), 2u);
  EXPECT_TRUE(seen(m, letter("executor", "y")));
}

// The sink's restart after its files rotated: the keys of the removed file
// come back from the key file saved before the rotation removed it.
TEST(KeyMemory, KeysOfARemovedFileComeBackFromTheFileSavedBeforeTheRotation) {
  TempDir dir;
  const auto path = dir.file("dead_letters.jsonl");
  const auto keys_path = path + ".keys";
  KeyMemory live;
  {
    LetterFile f(path, LetterFileOptions{.max_file_bytes = 1000, .max_files = 2, .flush_bytes = 1});
    f.on_rotation([&] { ASSERT_TRUE(tp::dead_letter::save_key_file(live, keys_path)); });
    for (int i = 0; i < 40; ++i) {
      const auto d = letter("executor", "signal/" + std::to_string(i));
      ASSERT_FALSE(seen(live, d));
      ASSERT_TRUE(f.append(to_json_line(d)));
    }
    ASSERT_GE(f.files_removed(), 1u) << "the first letters' file is gone";
  }
  KeyMemory from_files;
  rebuild_key_memory(from_files, path);
  EXPECT_FALSE(seen(from_files, letter("executor", "signal/0"))) << "not in the files any more";

  KeyMemory restarted;
  EXPECT_GT(tp::dead_letter::load_key_file(restarted, keys_path), 0u);
  rebuild_key_memory(restarted, path);
  for (int i = 0; i < 40; ++i)
    EXPECT_TRUE(seen(restarted, letter("executor", "signal/" + std::to_string(i)))) << i;
}

}  // namespace
