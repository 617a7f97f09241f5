#ifndef CHAT_SERVER_STORE_TURN_TREE_H_
#define CHAT_SERVER_STORE_TURN_TREE_H_

// The branch arithmetic the three stores share: each reads a session's turn
// links (or all its messages) in one statement and answers from them here,
// so the stores cannot disagree on what a branch is.

#include <map>
#include <optional>
#include <vector>

#include "server/store/conversation_store.h"

namespace chat::store {

// The links of one session's turns: each turn id to its parent (0 for a
// first turn). Not thread-safe; a value built per call.
class TurnTree {
 public:
  // Adds turn `turn_id` (>= 1) under `parent_turn_id`; add parents first
  // (ids grow with time, so id order does).
  void Add(int turn_id, int parent_turn_id);

  bool Contains(int turn_id) const { return parent_.count(turn_id) > 0; }
  // Turns on the path from a first turn to `turn_id`, both included; 0 for
  // turn 0 (the root above the first turns) and for an unknown turn.
  int DepthOf(int turn_id) const;
  // The turn reached from `turn_id` by taking the newest child at each step
  // until a turn has none; `turn_id` itself when it has no children.
  int NewestLeafFrom(int turn_id) const;
  // The children of `turn_id` (0: the first turns), oldest first.
  std::vector<int> ChildrenOf(int turn_id) const;

 private:
  std::map<int, int> parent_;
  std::map<int, std::vector<int>> children_;
};

// From `all`, every message of a session (each branch; turn_id and
// parent_turn_id set, user before assistant within a turn), the messages on
// the branch from a first turn to `leaf_turn_id`, oldest first, with
// sibling_turn_ids filled in. Empty for leaf 0; nullopt when `leaf_turn_id`
// is not among them.
std::optional<std::vector<StoredMessage>> SelectBranch(
    const std::vector<StoredMessage>& all, int leaf_turn_id);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_TURN_TREE_H_
