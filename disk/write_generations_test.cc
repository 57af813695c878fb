// The per-block dirty map answers "what changed since generation g" at block granularity, and
// the lineage record survives a round trip and refuses what it cannot trust.
#include "disk/write_generations.h"

#include <gtest/gtest.h>

#include "disk/lineage_record.h"
#include "tests/harness/test_guest.h"

namespace understudy::disk {
namespace {

constexpr uint64_t kBlock = WriteGenerations::kBlockBytes;

TEST(WriteGenerationsTest, ChangedSinceMergesBlocksWrittenLater) {
  WriteGenerations generations(10 * kBlock + 512);
  generations.Mark(0, 1, 1);
  generations.Mark(kBlock * 3 + 100, kBlock, 2);  // blocks 3 and 4
  generations.Mark(kBlock * 10, 512, 3);           // the short last block
  EXPECT_EQ(generations.ChangedSince(0), (std::vector<ByteRange>{{0, kBlock}, {3 * kBlock, 2 * kBlock}, {10 * kBlock, 512}}));
  EXPECT_EQ(generations.ChangedSince(1), (std::vector<ByteRange>{{3 * kBlock, 2 * kBlock}, {10 * kBlock, 512}}));
  EXPECT_EQ(generations.ChangedSince(3), std::vector<ByteRange>{});
  // Extra ranges join in, merged with their neighbours and clipped to the disk.
  EXPECT_EQ(generations.ChangedSince(1, {{5 * kBlock, 1}, {9 * kBlock, 100 * kBlock}}),
            (std::vector<ByteRange>{{3 * kBlock, 3 * kBlock}, {9 * kBlock, kBlock + 512}}));
  EXPECT_TRUE(generations.AnyChangedSince(4 * kBlock, 1, 1));
  EXPECT_FALSE(generations.AnyChangedSince(5 * kBlock, 5 * kBlock, 3));
}

TEST(LineageRecordTest, RoundTripsAndRefusesWhatItCannotTrust) {
  auto dir = testing::ScratchDir::Create("ut-lineage");
  ASSERT_TRUE(dir.ok());
  const std::string image = dir->path() + "/disk.raw";
  EXPECT_EQ(LineageRecord::Load(image).lineage, "") << "no record: no lineage";
  LineageRecord record{LineageRecord::NewLineage(), {1, 7}};
  EXPECT_EQ(record.lineage.size(), 32u);
  EXPECT_NE(record.lineage, LineageRecord::NewLineage());
  ASSERT_TRUE(record.Store(image).ok());
  LineageRecord loaded = LineageRecord::Load(image);
  EXPECT_EQ(loaded.lineage, record.lineage);
  EXPECT_EQ(loaded.suspect_extents, record.suspect_extents);
  // Another extent size, or a malformed suspect list, is no lineage at all.
  nlohmann::json other = record.ToJson();
  other["extent_bytes"] = kExtentBytes * 2;
  EXPECT_EQ(LineageRecord::FromJson(other).lineage, "");
  other = record.ToJson();
  other["suspect_extents"] = {1, "two"};
  EXPECT_EQ(LineageRecord::FromJson(other).lineage, "");
}

// Regression (issue 16): the record also arrives in the peer's hello; fields of the wrong
// type threw nlohmann's type_error (value() with a uint64_t default) and ended the agent.
TEST(LineageRecordTest, FieldsOfTheWrongTypeGiveNoLineageNotAnException) {
  LineageRecord record{LineageRecord::NewLineage(), {1, 7}};
  for (const char* field : {"extent_bytes", "lineage", "suspect_extents"}) {
    for (const nlohmann::json& value : {nlohmann::json("x"), nlohmann::json(1), nlohmann::json::object(),
                                        nlohmann::json(nullptr), nlohmann::json(-1)}) {
      if (std::string(field) == "lineage" && value.is_string()) continue;  // a valid lineage
      nlohmann::json hostile = record.ToJson();
      hostile[field] = value;
      LineageRecord parsed;
      EXPECT_NO_THROW(parsed = LineageRecord::FromJson(hostile)) << field << " = " << value.dump();
      EXPECT_EQ(parsed.lineage, "") << field << " = " << value.dump();
    }
  }
  for (const nlohmann::json& not_object : {nlohmann::json(1), nlohmann::json::array(), nlohmann::json("s")}) {
    EXPECT_NO_THROW(EXPECT_EQ(LineageRecord::FromJson(not_object).lineage, ""));
  }
  EXPECT_EQ(LineageRecord::FromJson(record.ToJson()).lineage, record.lineage) << "the control: a good record parses";
}

}  // namespace
}  // namespace understudy::disk
