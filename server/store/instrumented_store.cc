#include "server/store/instrumented_store.h"

#include <utility>

#include "absl/time/clock.h"

namespace chat::store {
namespace {

struct StoreMetrics {
  HistogramFamily& duration;
  CounterFamily& errors;
  Gauge& in_progress;

  static StoreMetrics& Get() {
    static StoreMetrics* metrics = [] {
      MetricsRegistry& r = MetricsRegistry::Default();
      return new StoreMetrics{
          r.AddHistogramFamily(
              "chatd_store_operation_duration_seconds",
              "Duration of conversation store operations, by operation.",
              {"op"},
              {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
               1, 2.5, 5}),
          r.AddCounterFamily("chatd_store_errors_total",
                             "Conversation store operations that failed "
                             "(unavailable, internal), by operation.",
                             {"op"}),
          r.AddGauge("chatd_store_operations_in_progress",
                     "Conversation store operations running now (on "
                     "PostgreSQL, connections they hold)."),
      };
    }();
    return *metrics;
  }
};

// The op label of each OpIndex, in order.
constexpr const char* kOpNames[] = {
    "get_session",     "load_history",         "append_turn",
    "reset_session",   "delete_session",       "list_sessions",
    "get_stats",       "delete_idle_sessions", "set_title",
    "search_messages", "load_branch",          "append_branch_turn",
    "switch_branch",   "export_session",       "import_session"};

template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}
const absl::Status& StatusOf(const absl::Status& status) { return status; }

}  // namespace

bool IsStoreFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

InstrumentedConversationStore::InstrumentedConversationStore(
    std::unique_ptr<ConversationStore> inner)
    : inner_(std::move(inner)), in_progress_(StoreMetrics::Get().in_progress) {
  static_assert(sizeof(kOpNames) / sizeof(kOpNames[0]) == kOpCount);
  StoreMetrics& metrics = StoreMetrics::Get();
  for (int i = 0; i < kOpCount; ++i) {
    ops_[i].duration = &metrics.duration.WithLabels({kOpNames[i]});
    ops_[i].errors = &metrics.errors.WithLabels({kOpNames[i]});
  }
}

template <typename F>
auto InstrumentedConversationStore::Timed(OpIndex op, F&& call)
    -> decltype(call()) {
  in_progress_.Increment();
  const absl::Time start = absl::Now();
  auto result = call();
  ops_[op].duration->Observe(absl::ToDoubleSeconds(absl::Now() - start));
  in_progress_.Decrement();
  if (IsStoreFailure(StatusOf(result))) ops_[op].errors->Increment();
  return result;
}

absl::StatusOr<SessionInfo> InstrumentedConversationStore::GetSession(
    const SessionKey& key) {
  return Timed(kGetSession, [&] { return inner_->GetSession(key); });
}

absl::StatusOr<std::vector<StoredMessage>>
InstrumentedConversationStore::LoadHistory(const SessionKey& key) {
  return Timed(kLoadHistory, [&] { return inner_->LoadHistory(key); });
}

absl::StatusOr<std::vector<StoredMessage>>
InstrumentedConversationStore::LoadBranch(const SessionKey& key, int turn_id) {
  return Timed(kLoadBranch, [&] { return inner_->LoadBranch(key, turn_id); });
}

absl::StatusOr<StoredTurn> InstrumentedConversationStore::AppendBranchTurn(
    const SessionKey& key, int parent_turn_id, const Turn& turn) {
  return Timed(kAppendBranchTurn, [&] {
    return inner_->AppendBranchTurn(key, parent_turn_id, turn);
  });
}

absl::StatusOr<int> InstrumentedConversationStore::SwitchBranch(
    const SessionKey& key, int turn_id) {
  return Timed(kSwitchBranch,
               [&] { return inner_->SwitchBranch(key, turn_id); });
}

absl::StatusOr<StoredTurn> InstrumentedConversationStore::AppendTurn(
    const SessionKey& key, int expected_turn_count,
    absl::string_view system_prompt, const Turn& turn) {
  return Timed(kAppendTurn, [&] {
    return inner_->AppendTurn(key, expected_turn_count, system_prompt, turn);
  });
}

absl::StatusOr<int> InstrumentedConversationStore::ResetSession(
    const SessionKey& key, absl::Time now) {
  return Timed(kResetSession, [&] { return inner_->ResetSession(key, now); });
}

absl::StatusOr<bool> InstrumentedConversationStore::DeleteSession(
    const SessionKey& key) {
  return Timed(kDeleteSession, [&] { return inner_->DeleteSession(key); });
}

absl::StatusOr<SessionPage> InstrumentedConversationStore::ListSessions(
    absl::string_view tenant, int page_size, absl::string_view page_token) {
  return Timed(kListSessions, [&] {
    return inner_->ListSessions(tenant, page_size, page_token);
  });
}

absl::StatusOr<StoreStats> InstrumentedConversationStore::GetStats(
    absl::string_view tenant) {
  return Timed(kGetStats, [&] { return inner_->GetStats(tenant); });
}

absl::StatusOr<int64_t> InstrumentedConversationStore::DeleteSessionsIdleSince(
    absl::Time cutoff) {
  return Timed(kDeleteIdleSessions,
               [&] { return inner_->DeleteSessionsIdleSince(cutoff); });
}

absl::StatusOr<bool> InstrumentedConversationStore::SetTitle(
    const SessionKey& key, absl::string_view title, bool only_if_untitled) {
  return Timed(kSetTitle,
               [&] { return inner_->SetTitle(key, title, only_if_untitled); });
}

absl::StatusOr<SearchPage> InstrumentedConversationStore::SearchMessages(
    absl::string_view tenant, absl::string_view query, int page_size,
    absl::string_view page_token) {
  return Timed(kSearchMessages, [&] {
    return inner_->SearchMessages(tenant, query, page_size, page_token);
  });
}

absl::StatusOr<SessionArchive> InstrumentedConversationStore::ExportSession(
    const SessionKey& key) {
  return Timed(kExportSession, [&] { return inner_->ExportSession(key); });
}

absl::Status InstrumentedConversationStore::ImportSession(
    absl::string_view tenant, const SessionArchive& archive, bool replace) {
  return Timed(kImportSession,
               [&] { return inner_->ImportSession(tenant, archive, replace); });
}

}  // namespace chat::store
