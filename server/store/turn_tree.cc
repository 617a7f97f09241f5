#include "server/store/turn_tree.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace chat::store {

void TurnTree::Add(int turn_id, int parent_turn_id) {
  parent_[turn_id] = parent_turn_id;
  children_[parent_turn_id].push_back(turn_id);
}

int TurnTree::DepthOf(int turn_id) const {
  int depth = 0;
  // Parents have smaller ids, so the walk ends; the bound guards a damaged
  // store whose links loop.
  for (auto it = parent_.find(turn_id);
       it != parent_.end() && depth <= static_cast<int>(parent_.size());
       it = parent_.find(it->second)) {
    ++depth;
  }
  return depth;
}

int TurnTree::NewestLeafFrom(int turn_id) const {
  for (size_t steps = 0; steps <= parent_.size(); ++steps) {
    auto it = children_.find(turn_id);
    if (it == children_.end() || it->second.empty()) break;
    turn_id = *std::max_element(it->second.begin(), it->second.end());
  }
  return turn_id;
}

std::vector<int> TurnTree::ChildrenOf(int turn_id) const {
  auto it = children_.find(turn_id);
  if (it == children_.end()) return {};
  std::vector<int> children = it->second;
  std::sort(children.begin(), children.end());
  return children;
}

std::optional<std::vector<StoredMessage>> SelectBranch(
    const std::vector<StoredMessage>& all, int leaf_turn_id) {
  TurnTree tree;
  // Each turn's messages, by turn id.
  std::map<int, std::vector<const StoredMessage*>> turns;
  for (const StoredMessage& m : all) {
    std::vector<const StoredMessage*>& messages = turns[m.turn_id];
    if (messages.empty()) tree.Add(m.turn_id, m.parent_turn_id);
    messages.push_back(&m);
  }
  if (leaf_turn_id == 0) return std::vector<StoredMessage>();
  if (!tree.Contains(leaf_turn_id)) return std::nullopt;
  std::vector<int> path;
  for (int id = leaf_turn_id; id != 0 && path.size() <= turns.size();
       id = turns[id].front()->parent_turn_id) {
    if (!tree.Contains(id)) break;  // A damaged link: stop at what exists.
    path.push_back(id);
  }
  std::reverse(path.begin(), path.end());
  std::vector<StoredMessage> branch;
  branch.reserve(2 * path.size());
  for (int id : path) {
    const std::vector<const StoredMessage*>& messages = turns[id];
    std::vector<int> siblings =
        tree.ChildrenOf(messages.front()->parent_turn_id);
    for (const StoredMessage* m : messages) {
      StoredMessage& copy = branch.emplace_back(*m);
      copy.sibling_turn_ids = siblings;
    }
  }
  return branch;
}

}  // namespace chat::store
