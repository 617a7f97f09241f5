#ifndef CHAT_SERVER_STORE_INSTRUMENTED_STORE_H_
#define CHAT_SERVER_STORE_INSTRUMENTED_STORE_H_

// A ConversationStore that times every operation of the store it wraps and
// counts its failures, on MetricsRegistry::Default():
//   chatd_store_operation_duration_seconds{op}
//   chatd_store_errors_total{op}            infrastructure failures only
//   chatd_store_operations_in_progress      (on PostgreSQL, connections in
//                                            use by conversation operations)
// A decorator, so that no store implementation changes and main wraps
// whichever store it opened. keys() and quotas() are forwarded untimed: the
// authenticator and the quota counters are measured by their callers'
// latency.

#include <memory>

#include "common/metrics.h"
#include "server/store/conversation_store.h"

namespace chat::store {

// True for a status that says the store failed (kUnavailable, kInternal,
// kUnknown, kDataLoss, kDeadlineExceeded), not for an answer such as
// kNotFound or kAborted (a conflicting append).
bool IsStoreFailure(const absl::Status& status);

// Thread-safe if `inner` is.
class InstrumentedConversationStore final : public ConversationStore {
 public:
  explicit InstrumentedConversationStore(
      std::unique_ptr<ConversationStore> inner);

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
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override;
  absl::StatusOr<bool> SetTitle(const SessionKey& key, absl::string_view title,
                                bool only_if_untitled) override;
  absl::StatusOr<SearchPage> SearchMessages(
      absl::string_view tenant, absl::string_view query, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<SessionArchive> ExportSession(const SessionKey& key) override;
  absl::Status ImportSession(absl::string_view tenant,
                             const SessionArchive& archive,
                             bool replace) override;
  KeyStore& keys() override { return inner_->keys(); }
  QuotaStore& quotas() override { return inner_->quotas(); }
  IdempotencyStore* idempotency() override { return inner_->idempotency(); }
  StreamStore* streams() override { return inner_->streams(); }
  bool MayBlock() const override { return inner_->MayBlock(); }

 private:
  // One operation's series, looked up once so that timing takes no lock.
  struct Op {
    Histogram* duration;
    Counter* errors;
  };
  enum OpIndex {
    kGetSession,
    kLoadHistory,
    kAppendTurn,
    kResetSession,
    kDeleteSession,
    kListSessions,
    kGetStats,
    kDeleteIdleSessions,
    kSetTitle,
    kSearchMessages,
    kLoadBranch,
    kAppendBranchTurn,
    kSwitchBranch,
    kExportSession,
    kImportSession,
    kOpCount
  };

  template <typename F>
  auto Timed(OpIndex op, F&& call) -> decltype(call());

  const std::unique_ptr<ConversationStore> inner_;
  Gauge& in_progress_;
  Op ops_[kOpCount];
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_INSTRUMENTED_STORE_H_
