#ifndef CHAT_SERVER_STORE_SESSION_ARCHIVE_H_
#define CHAT_SERVER_STORE_SESSION_ARCHIVE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace chat::store {

// One stored turn with everything a store keeps of it: what an export
// carries and an import writes back unchanged.
struct ArchivedTurn {
  int turn_id = 0;
  // The turn before it on its branch; 0 for a first turn.
  int parent_turn_id = 0;
  // Both messages of a turn are stored at this time.
  absl::Time created_at;
  std::string user_message;
  std::string assistant_message;
  std::string model;
  std::string stop_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::optional<double> cost_usd;
};

// A whole session as ConversationStore::ExportSession reads it and
// ImportSession writes it: ids and times included, so a session moves
// between stores unchanged.
struct SessionArchive {
  std::string session_id;
  std::string system_prompt;
  std::string title;
  absl::Time created_at;
  absl::Time updated_at;
  // The active branch's last turn; 0 when there are no turns.
  int active_turn_id = 0;
  // Every turn of every branch, by turn id: turn i (1-based) has id i.
  std::vector<ArchivedTurn> turns;
};

// Checks what every store relies on: turn ids 1..n in order, each parent an
// earlier turn (so the tree has no cycle), an active turn that exists (0 only
// without turns), a session id. kInvalidArgument naming the turn otherwise.
absl::Status ValidateSessionArchive(const SessionArchive& archive);

// The number of turns on the branch from a first turn to `turn_id` (0 for
// 0). `archive` must be valid.
int BranchLength(const SessionArchive& archive, int turn_id);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_SESSION_ARCHIVE_H_
