// TurnTree and SelectBranch on hand-built trees: the branch arithmetic every
// store uses, checked without a store.

#include "server/store/turn_tree.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

// 1 - 2 - 3, and 4 under 1 (a version of 2), with children 5 and 6.
TurnTree SampleTree() {
  TurnTree tree;
  tree.Add(1, 0);
  tree.Add(2, 1);
  tree.Add(3, 2);
  tree.Add(4, 1);
  tree.Add(5, 4);
  tree.Add(6, 4);
  return tree;
}

TEST(TurnTreeTest, DepthCountsTheTurnsFromTheFirst) {
  TurnTree tree = SampleTree();
  EXPECT_EQ(tree.DepthOf(0), 0);
  EXPECT_EQ(tree.DepthOf(1), 1);
  EXPECT_EQ(tree.DepthOf(3), 3);
  EXPECT_EQ(tree.DepthOf(6), 3);
  EXPECT_EQ(tree.DepthOf(9), 0);
}

TEST(TurnTreeTest, NewestLeafTakesTheNewestChildAtEachStep) {
  TurnTree tree = SampleTree();
  EXPECT_EQ(tree.NewestLeafFrom(1), 6);
  EXPECT_EQ(tree.NewestLeafFrom(2), 3);
  EXPECT_EQ(tree.NewestLeafFrom(5), 5);
  EXPECT_EQ(tree.NewestLeafFrom(0), 6);
}

TEST(TurnTreeTest, ChildrenAreOldestFirst) {
  TurnTree tree = SampleTree();
  EXPECT_THAT(tree.ChildrenOf(1), ElementsAre(2, 4));
  EXPECT_THAT(tree.ChildrenOf(4), ElementsAre(5, 6));
  EXPECT_THAT(tree.ChildrenOf(3), IsEmpty());
  EXPECT_TRUE(tree.Contains(6));
  EXPECT_FALSE(tree.Contains(0));
}

std::vector<StoredMessage> Messages(const TurnTree& tree, int last) {
  std::vector<StoredMessage> all;
  for (int id = 1; id <= last; ++id) {
    for (const char* role : {"user", "assistant"}) {
      StoredMessage& m = all.emplace_back();
      m.role = role;
      m.content = std::string(role) + std::to_string(id);
      m.turn_id = id;
      // The sample's parents, read back through the tree's children.
      for (int parent = 0; parent <= last; ++parent) {
        for (int child : tree.ChildrenOf(parent)) {
          if (child == id) m.parent_turn_id = parent;
        }
      }
    }
  }
  return all;
}

std::vector<std::string> Contents(const std::vector<StoredMessage>& messages) {
  std::vector<std::string> contents;
  for (const StoredMessage& m : messages) contents.push_back(m.content);
  return contents;
}

TEST(SelectBranchTest, PicksThePathToTheLeafWithSiblings) {
  std::vector<StoredMessage> all = Messages(SampleTree(), 6);
  std::optional<std::vector<StoredMessage>> branch = SelectBranch(all, 5);
  ASSERT_TRUE(branch.has_value());
  EXPECT_THAT(Contents(*branch),
              ElementsAre("user1", "assistant1", "user4", "assistant4", "user5",
                          "assistant5"));
  EXPECT_THAT((*branch)[0].sibling_turn_ids, ElementsAre(1));
  EXPECT_THAT((*branch)[2].sibling_turn_ids, ElementsAre(2, 4));
  EXPECT_THAT((*branch)[5].sibling_turn_ids, ElementsAre(5, 6));
}

TEST(SelectBranchTest, LeafZeroIsEmptyAndUnknownIsNullopt) {
  std::vector<StoredMessage> all = Messages(SampleTree(), 6);
  EXPECT_THAT(SelectBranch(all, 0), Optional(IsEmpty()));
  EXPECT_EQ(SelectBranch(all, 7), std::nullopt);
  EXPECT_THAT(SelectBranch({}, 0), Optional(IsEmpty()));
}

}  // namespace
}  // namespace chat::store
