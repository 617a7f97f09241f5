#include "server/store/session_archive.h"

#include <cstddef>

#include "absl/strings/str_cat.h"

namespace chat::store {

absl::Status ValidateSessionArchive(const SessionArchive& archive) {
  if (archive.session_id.empty()) {
    return absl::InvalidArgumentError("session_id must not be empty");
  }
  for (size_t i = 0; i < archive.turns.size(); ++i) {
    const ArchivedTurn& turn = archive.turns[i];
    const int expected = static_cast<int>(i) + 1;
    if (turn.turn_id != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("turn ids must be 1, 2, 3, ... in order: expected ",
                       expected, ", got ", turn.turn_id));
    }
    // A parent is stored before its children, so it has a lower id; this
    // also rules out cycles.
    if (turn.parent_turn_id < 0 || turn.parent_turn_id >= turn.turn_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "turn ", turn.turn_id, " has parent ", turn.parent_turn_id,
          ", which is not an earlier turn (or 0)"));
    }
    if (turn.input_tokens < 0 || turn.output_tokens < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("turn ", turn.turn_id, " has negative token counts"));
    }
  }
  const int turns = static_cast<int>(archive.turns.size());
  if (archive.active_turn_id < 0 || archive.active_turn_id > turns ||
      (turns > 0 && archive.active_turn_id == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("active_turn_id ", archive.active_turn_id,
                     " is not a turn of the session"));
  }
  return absl::OkStatus();
}

int BranchLength(const SessionArchive& archive, int turn_id) {
  int length = 0;
  while (turn_id > 0) {
    ++length;
    turn_id = archive.turns[static_cast<size_t>(turn_id) - 1].parent_turn_id;
  }
  return length;
}

}  // namespace chat::store
