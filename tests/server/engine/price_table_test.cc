// PriceTable: the built-in prices, the JSON that extends them, and how a
// model name finds its price (exact first, then a dated snapshot's base).

#include "server/engine/price_table.h"

#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

MATCHER_P2(PriceIs, input, output, "") {
  return arg.has_value() && arg->input == input && arg->output == output;
}

TEST(PriceTableTest, BuiltInPricesTheModelsTheDocsName) {
  const PriceTable table = PriceTable::BuiltIn();
  EXPECT_THAT(table.Find("claude-sonnet-4-6"), PriceIs(3.0, 15.0));
  EXPECT_THAT(table.Find("claude-haiku-4-5"), PriceIs(1.0, 5.0));
  EXPECT_THAT(table.Find("gpt-4o-mini"), PriceIs(0.15, 0.60));
}

TEST(PriceTableTest, AnUnknownModelHasNoPriceAndNoCost) {
  const PriceTable table = PriceTable::BuiltIn();
  EXPECT_EQ(table.Find("llama-3-70b"), std::nullopt);
  EXPECT_EQ(table.Cost("llama-3-70b", 1000, 1000), std::nullopt);
  EXPECT_EQ(PriceTable().Cost("claude-sonnet-4-6", 1, 1), std::nullopt);
}

TEST(PriceTableTest, CostIsTokensTimesPricePerMillion) {
  const PriceTable table = PriceTable::BuiltIn();
  std::optional<double> cost = table.Cost("claude-sonnet-4-6", 1000, 500);
  ASSERT_TRUE(cost.has_value());
  EXPECT_DOUBLE_EQ(*cost, (1000 * 3.0 + 500 * 15.0) / 1e6);
  EXPECT_EQ(table.Cost("claude-sonnet-4-6", 0, 0), 0.0);
}

TEST(PriceTableTest, DatedSnapshotsTakeTheirBaseModelsPrice) {
  const PriceTable table = PriceTable::BuiltIn();
  EXPECT_THAT(table.Find("claude-sonnet-4-5-20250929"), PriceIs(3.0, 15.0));
  EXPECT_THAT(table.Find("gpt-4o-mini-2024-07-18"), PriceIs(0.15, 0.60));
  EXPECT_THAT(table.Find("gpt-4o-2024-08-06"), PriceIs(2.50, 10.0));
  // Only a date extends a name: these are other models.
  EXPECT_EQ(table.Find("gpt-4o-mini-audio"), std::nullopt);
  EXPECT_EQ(table.Find("claude-sonnet-4-6-2025"), std::nullopt);
  EXPECT_EQ(table.Find("gpt-4o-mini-2024-7-18"), std::nullopt);
}

TEST(PriceTableTest, AnExactNameBeatsTheSnapshotRule) {
  PriceTable table = PriceTable::BuiltIn();
  table.Set("claude-sonnet-4-5-20250929", {1.0, 2.0});
  EXPECT_THAT(table.Find("claude-sonnet-4-5-20250929"), PriceIs(1.0, 2.0));
}

TEST(PriceTableTest, JsonAddsAndReplacesPrices) {
  absl::StatusOr<PriceTable> table = PriceTable::BuiltInWith(R"json({
    "my-model": {"input": 0.5, "output": 1},
    "claude-sonnet-4-6": {"input": 2.0, "output": 10.0}
  })json");
  ASSERT_THAT(table, IsOk());
  EXPECT_THAT(table->Find("my-model"), PriceIs(0.5, 1.0));
  EXPECT_THAT(table->Find("claude-sonnet-4-6"), PriceIs(2.0, 10.0));
  EXPECT_THAT(table->Find("gpt-4o-mini"), PriceIs(0.15, 0.60));
  EXPECT_THAT(PriceTable::BuiltInWith("{}"), IsOk());
}

TEST(PriceTableTest, BadJsonSaysWhatIsWrong) {
  EXPECT_THAT(PriceTable::BuiltInWith("{"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not valid JSON")));
  EXPECT_THAT(
      PriceTable::BuiltInWith("[1]"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON object")));
  EXPECT_THAT(PriceTable::BuiltInWith(R"({"m": 3})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"m\"")));
  EXPECT_THAT(PriceTable::BuiltInWith(R"({"m": {"input": 1}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"output\" must be a number")));
  EXPECT_THAT(PriceTable::BuiltInWith(R"({"m": {"input": -1, "output": 1}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(">= 0")));
  EXPECT_THAT(PriceTable::BuiltInWith(R"({"m": {"input": "1", "output": 1}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"input\" must be a number")));
  EXPECT_THAT(
      PriceTable::BuiltInWith(
          R"({"m": {"input": 1, "output": 1, "cache": 1}})"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"cache\"")));
  EXPECT_THAT(PriceTable::BuiltInWith(R"({"": {"input": 1, "output": 1}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST(PriceTableTest, FileIsReadOrNamedInTheError) {
  const std::string path = ::testing::TempDir() + "price_table_test.json";
  {
    std::ofstream file(path);
    file << R"({"file-model": {"input": 4, "output": 8}})";
  }
  absl::StatusOr<PriceTable> table = PriceTable::BuiltInWithFile(path);
  ASSERT_THAT(table, IsOk());
  EXPECT_THAT(table->Find("file-model"), PriceIs(4.0, 8.0));
  unlink(path.c_str());
  EXPECT_THAT(PriceTable::BuiltInWithFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)));
}

}  // namespace
}  // namespace chat
