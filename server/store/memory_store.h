#ifndef CHAT_SERVER_STORE_MEMORY_STORE_H_
#define CHAT_SERVER_STORE_MEMORY_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/conversation_store.h"
#include "server/store/memory_key_quota_store.h"
#include "server/store/stream_store.h"

namespace chat::store {

// A ConversationStore in process memory: everything is lost at exit. For
// tests and demos. It follows the same contract as the SQLite and PostgreSQL
// stores, down to timestamps kept at microsecond precision and the same page
// tokens, so they are interchangeable. Thread-safe: one mutex guards all state.
class MemoryConversationStore final : public ConversationStore {
 public:
  MemoryConversationStore() = default;

  absl::StatusOr<SessionInfo> GetSession(const SessionKey& key) override;
  absl::StatusOr<std::vector<StoredMessage>> LoadHistory(
      const SessionKey& key) override;
  absl::StatusOr<StoredTurn> AppendTurn(const SessionKey& key,
                                        int expected_turn_count,
                                        absl::string_view system_prompt,
                                        const Turn& turn) override;
  absl::StatusOr<std::vector<StoredMessage>> LoadBranch(const SessionKey& key,
                                                        int turn_id) override;
  absl::StatusOr<StoredTurn> AppendBranchTurn(const SessionKey& key,
                                              int parent_turn_id,
                                              const Turn& turn) override;
  absl::StatusOr<int> SwitchBranch(const SessionKey& key, int turn_id) override;
  absl::StatusOr<int> ResetSession(const SessionKey& key,
                                   absl::Time now) override;
  absl::StatusOr<bool> DeleteSession(const SessionKey& key) override;
  absl::StatusOr<SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<StoreStats> GetStats(absl::string_view tenant) override;
  absl::StatusOr<bool> SetTitle(const SessionKey& key, absl::string_view title,
                                bool only_if_untitled) override;
  // A case-insensitive (ASCII) substring match of every word of the query,
  // ranked by how often they occur, then newest first.
  absl::StatusOr<SearchPage> SearchMessages(
      absl::string_view tenant, absl::string_view query, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<SessionArchive> ExportSession(const SessionKey& key) override;
  absl::Status ImportSession(absl::string_view tenant,
                             const SessionArchive& archive,
                             bool replace) override;
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override;
  KeyStore& keys() override { return keys_; }
  QuotaStore& quotas() override { return quotas_; }
  IdempotencyStore* idempotency() override { return &requests_; }
  StreamStore* streams() override { return &streams_; }
  bool MayBlock() const override { return false; }

 private:
  struct TurnDetails {
    std::string model;
    std::string stop_reason;
    int64_t input_tokens = 0;
    std::optional<double> cost_usd;
  };
  struct Session {
    SessionInfo info;
    // Every branch's messages, in the order stored (turn ids ascending).
    std::vector<StoredMessage> messages;
    // What produced each turn's reply, by turn id - 1: what ExportSession
    // returns besides the messages.
    std::vector<TurnDetails> details;
    // The active branch's last turn; 0 while there is none.
    int active_turn_id = 0;
    // Sums over the turns in `messages`, for GetStats.
    int64_t input_tokens = 0;
    int64_t output_tokens = 0;
    std::optional<double> cost_usd;
  };
  // (tenant, session_id). Ordered so one tenant's sessions are contiguous.
  using Key = std::pair<std::string, std::string>;

  // Adds `turn` under `parent_turn_id` and makes it the active leaf.
  // Returns its id.
  static int StoreTurn(Session& session, int parent_turn_id, int depth,
                       const Turn& turn);

  absl::Mutex mu_;
  std::map<Key, Session> sessions_ ABSL_GUARDED_BY(mu_);
  MemoryKeyStore keys_;
  MemoryQuotaStore quotas_;
  MemoryIdempotencyStore requests_;
  MemoryStreamStore streams_;
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_MEMORY_STORE_H_
