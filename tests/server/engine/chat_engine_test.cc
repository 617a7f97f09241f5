// ChatEngine against a scripted provider and the in-memory store. Strategy:
// every test drives turns through the engine's public API and then reads the
// store directly, so what is asserted is what a later call would see. The
// fake provider runs each call on its own thread, like the real providers,
// and can hold a call open so a test can cancel it or queue turns behind it.
// Every test runs twice: with the memory store as it is (it does not block,
// so a turn of an idle session starts inside StartTurn), and behind a
// wrapper that says it may block (turns start on the pool, as with SQLite
// and PostgreSQL).

#include "server/engine/chat_engine.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/context_window.h"
#include "server/store/memory_store.h"
#include "tests/testing/fake_llm_provider.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::FakeLlmProvider;
using ::chat::testing::FakeScript;
using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

// Records what the engine reports for one turn, and on which threads.
class RecordingObserver final : public TurnObserver {
 public:
  void OnDelta(absl::string_view text) override {
    absl::MutexLock lock(&mu_);
    deltas_.emplace_back(text);
    delta_thread_ = std::this_thread::get_id();
  }
  void OnComplete(absl::StatusOr<ChatTurnResult> result) override {
    {
      absl::MutexLock lock(&mu_);
      result_ = std::move(result);
      complete_thread_ = std::this_thread::get_id();
    }
    done_.Notify();
  }
  std::thread::id delta_thread() {
    absl::MutexLock lock(&mu_);
    return delta_thread_;
  }
  std::thread::id complete_thread() {
    absl::MutexLock lock(&mu_);
    return complete_thread_;
  }
  absl::StatusOr<ChatTurnResult> Wait() {
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    return result_;
  }
  bool HasCompleted() { return done_.HasBeenNotified(); }
  std::vector<std::string> deltas() {
    absl::MutexLock lock(&mu_);
    return deltas_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> deltas_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<ChatTurnResult> result_ ABSL_GUARDED_BY(mu_) =
      absl::UnknownError("not completed");
  std::thread::id delta_thread_ ABSL_GUARDED_BY(mu_);
  std::thread::id complete_thread_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

// The store it wraps, saying it may block, so that the engine runs its
// calls on the pool as it does for SQLite and PostgreSQL. Records the
// threads that called it.
class MayBlockStore final : public store::ConversationStore {
 public:
  explicit MayBlockStore(store::ConversationStore* inner) : inner_(inner) {}

  bool MayBlock() const override { return true; }
  // The inner store's ids, so idempotent turns write their answers with the
  // turn in both variants.
  store::IdempotencyStore* idempotency() override {
    return inner_->idempotency();
  }
  absl::StatusOr<store::SessionInfo> GetSession(
      const store::SessionKey& key) override {
    Note();
    return inner_->GetSession(key);
  }
  absl::StatusOr<std::vector<store::StoredMessage>> LoadHistory(
      const store::SessionKey& key) override {
    Note();
    return inner_->LoadHistory(key);
  }
  absl::StatusOr<store::StoredTurn> AppendTurn(
      const store::SessionKey& key, int expected_turn_count,
      absl::string_view system_prompt, const store::Turn& turn) override {
    Note();
    return inner_->AppendTurn(key, expected_turn_count, system_prompt, turn);
  }
  absl::StatusOr<std::vector<store::StoredMessage>> LoadBranch(
      const store::SessionKey& key, int turn_id) override {
    Note();
    return inner_->LoadBranch(key, turn_id);
  }
  absl::StatusOr<store::StoredTurn> AppendBranchTurn(
      const store::SessionKey& key, int parent_turn_id,
      const store::Turn& turn) override {
    Note();
    return inner_->AppendBranchTurn(key, parent_turn_id, turn);
  }
  absl::StatusOr<int> ResetSession(const store::SessionKey& key,
                                   absl::Time now) override {
    Note();
    return inner_->ResetSession(key, now);
  }
  absl::StatusOr<bool> DeleteSession(const store::SessionKey& key) override {
    Note();
    return inner_->DeleteSession(key);
  }
  absl::StatusOr<store::SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) override {
    Note();
    return inner_->ListSessions(tenant, page_size, page_token);
  }
  absl::StatusOr<store::StoreStats> GetStats(
      absl::string_view tenant) override {
    Note();
    return inner_->GetStats(tenant);
  }
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override {
    Note();
    return inner_->DeleteSessionsIdleSince(cutoff);
  }
  store::KeyStore& keys() override { return inner_->keys(); }
  store::QuotaStore& quotas() override { return inner_->quotas(); }

  std::vector<std::thread::id> callers() {
    absl::MutexLock lock(&mu_);
    return callers_;
  }

 private:
  void Note() {
    absl::MutexLock lock(&mu_);
    callers_.push_back(std::this_thread::get_id());
  }

  store::ConversationStore* const inner_;
  absl::Mutex mu_;
  std::vector<std::thread::id> callers_ ABSL_GUARDED_BY(mu_);
};

ChatTurnRequest Request(std::string session, std::string message) {
  ChatTurnRequest request;
  request.session_id = std::move(session);
  request.message = std::move(message);
  return request;
}

ChatEngineOptions Limited() {
  ChatEngineOptions options;
  options.max_turns_per_session = 2;
  options.max_sessions_per_tenant = 2;
  return options;
}

// The parameter: whether the engine's store says it may block.
class ChatEngineTest : public ::testing::TestWithParam<bool> {
 protected:
  explicit ChatEngineTest(ChatEngineOptions options = {})
      : may_block_store_(&store_),
        pool_(2),
        engine_(GetParam()
                    ? static_cast<store::ConversationStore*>(&may_block_store_)
                    : &store_,
                &provider_, &pool_, std::move(options)) {}

  absl::StatusOr<ChatTurnResult> RunTurn(ChatTurnRequest request) {
    RecordingObserver observer;
    absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
        engine_.StartTurn(std::move(request), &observer);
    if (!turn.ok()) return turn.status();
    return observer.Wait();
  }

  std::vector<store::StoredMessage> History(const std::string& session) {
    absl::StatusOr<std::vector<store::StoredMessage>> history =
        store_.LoadHistory({"default", session});
    return history.ok() ? *history : std::vector<store::StoredMessage>{};
  }

  store::MemoryConversationStore store_;
  MayBlockStore may_block_store_;
  FakeLlmProvider provider_;
  ThreadPool pool_;
  ChatEngine engine_;
};

TEST_P(ChatEngineTest, StoresTheWholeTurnAfterTheProviderFinishes) {
  RecordingObserver observer;
  ASSERT_THAT(engine_.StartTurn(Request("s1", "Hi"), &observer), IsOk());
  absl::StatusOr<ChatTurnResult> result = observer.Wait();
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->response, "Hello there");
  EXPECT_EQ(result->turn_count, 1);
  EXPECT_EQ(result->model, "fake-model");
  EXPECT_EQ(result->input_tokens, 10);
  EXPECT_THAT(observer.deltas(), ElementsAre("Hello", " there"));
  EXPECT_THAT(
      History("s1"),
      ElementsAre(Field(&store::StoredMessage::content, "Hi"),
                  Field(&store::StoredMessage::content, "Hello there")));
}

TEST_P(ChatEngineTest, PassesTheTraceUpstreamAndReportsWhatTheLogsNeed) {
  FakeScript script;
  script.result.provider = "anthropic";
  script.result.provider_request_id = "req_1";
  script.result.retries = 1;
  provider_.SetScript(script);
  ChatTurnRequest request = Request("s1", "Hi");
  request.traceparent =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  absl::StatusOr<ChatTurnResult> result = RunTurn(request);
  ASSERT_THAT(result, IsOk());
  ASSERT_EQ(provider_.requests().size(), 1u);
  EXPECT_EQ(provider_.requests()[0].traceparent, request.traceparent);
  EXPECT_EQ(result->provider, "anthropic");
  EXPECT_EQ(result->provider_request_id, "req_1");
  EXPECT_EQ(result->provider_retries, 1);
  ASSERT_TRUE(result->time_to_first_token.has_value());
  EXPECT_GE(*result->time_to_first_token, absl::ZeroDuration());
}

TEST_P(ChatEngineTest, SendsHistoryAndSystemPromptUpstream) {
  ChatTurnRequest first = Request("s1", "one");
  first.system_prompt = "Be brief.";
  ASSERT_THAT(RunTurn(first), IsOk());
  ChatTurnRequest second = Request("s1", "two");
  second.system_prompt = "Ignored: the session exists.";
  ASSERT_THAT(RunTurn(second), IsOk());

  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].system_prompt, "Be brief.");
  EXPECT_THAT(requests[1].messages,
              ElementsAre(Field(&llm::PromptMessage::content, "one"),
                          Field(&llm::PromptMessage::content, "Hello there"),
                          Field(&llm::PromptMessage::content, "two")));
}

// Edits and regenerations: the prompt holds the turns before the replaced
// one on its branch, and the new version is stored as its sibling.
TEST_P(ChatEngineTest, EditPromptsWithTheTurnsBeforeAndStoresASibling) {
  ASSERT_THAT(RunTurn(Request("s1", "one")), IsOk());
  ASSERT_THAT(RunTurn(Request("s1", "two")), IsOk());
  ASSERT_THAT(RunTurn(Request("s1", "three")), IsOk());
  ChatTurnRequest edit = Request("s1", "deux");
  edit.edit_turn_id = 2;
  absl::StatusOr<ChatTurnResult> result = RunTurn(edit);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->turn_id, 4);
  EXPECT_EQ(result->turn_count, 2);
  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_THAT(requests[3].messages,
              ElementsAre(Field(&llm::PromptMessage::content, "one"),
                          Field(&llm::PromptMessage::content, "Hello there"),
                          Field(&llm::PromptMessage::content, "deux")));
  std::vector<store::StoredMessage> history = History("s1");
  ASSERT_EQ(history.size(), 4u);
  EXPECT_EQ(history[2].content, "deux");
  EXPECT_THAT(history[2].sibling_turn_ids, ElementsAre(2, 4));
}

TEST_P(ChatEngineTest, RegenerateAsksTheTurnsOwnMessageAgain) {
  ASSERT_THAT(RunTurn(Request("s1", "one")), IsOk());
  ASSERT_THAT(RunTurn(Request("s1", "two")), IsOk());
  ChatTurnRequest regenerate = Request("s1", "");
  regenerate.regenerate_turn_id = 0;  // The last turn.
  absl::StatusOr<ChatTurnResult> result = RunTurn(regenerate);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->turn_id, 3);
  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_THAT(requests[2].messages,
              ElementsAre(Field(&llm::PromptMessage::content, "one"),
                          Field(&llm::PromptMessage::content, "Hello there"),
                          Field(&llm::PromptMessage::content, "two")));
  regenerate.regenerate_turn_id = 1;
  result = RunTurn(regenerate);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->turn_count, 1);
  EXPECT_THAT(provider_.requests()[3].messages,
              ElementsAre(Field(&llm::PromptMessage::content, "one")));
}

TEST_P(ChatEngineTest, BranchTurnsOfUnknownSessionsOrTurnsAreNotFound) {
  ChatTurnRequest edit = Request("s1", "x");
  edit.edit_turn_id = 1;
  EXPECT_THAT(RunTurn(edit), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(RunTurn(Request("s1", "one")), IsOk());
  edit.edit_turn_id = 5;
  EXPECT_THAT(RunTurn(edit), StatusIs(absl::StatusCode::kNotFound));
  ChatTurnRequest with_id = Request("s1", "x");
  with_id.edit_turn_id = 1;
  with_id.request_id = "r1";
  EXPECT_THAT(RunTurn(with_id), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(provider_.requests().size(), 1u);
}

TEST_P(ChatEngineTest, DefaultSystemPromptForNewSessions) {
  ASSERT_THAT(RunTurn(Request("s1", "Hi")), IsOk());
  EXPECT_EQ(provider_.requests()[0].system_prompt,
            "You are a helpful AI assistant.");
  absl::StatusOr<store::SessionInfo> session =
      store_.GetSession({"default", "s1"});
  ASSERT_THAT(session, IsOk());
  EXPECT_EQ(session->system_prompt, "You are a helpful AI assistant.");
}

TEST_P(ChatEngineTest, ProviderFailingHalfwayLeavesHistoryAsItWas) {
  ASSERT_THAT(RunTurn(Request("s1", "first")), IsOk());
  FakeScript failing;
  failing.deltas = {"partial ", "answer"};
  failing.error = absl::UnavailableError("upstream overloaded");
  provider_.SetScript(failing);

  RecordingObserver observer;
  ASSERT_THAT(engine_.StartTurn(Request("s1", "second"), &observer), IsOk());
  EXPECT_THAT(observer.Wait(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(observer.deltas(), ElementsAre("partial ", "answer"));
  EXPECT_EQ(History("s1").size(), 2u);

  // A new session whose first turn fails is not created at all.
  EXPECT_THAT(RunTurn(Request("s2", "hello")),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_.GetSession({"default", "s2"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ChatEngineTest, CancellingARunningTurnStoresNothing) {
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  RecordingObserver observer;
  absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
      engine_.StartTurn(Request("s1", "Hi"), &observer);
  ASSERT_THAT(turn, IsOk());
  provider_.WaitForStarted(1);
  (*turn)->Cancel();
  EXPECT_THAT(observer.Wait(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(provider_.cancelled_calls(), 1);
  EXPECT_THAT(store_.GetSession({"default", "s1"}),
              StatusIs(absl::StatusCode::kNotFound));
}

// An idempotent turn's answer goes into its id's record with the turn
// (store::Turn::answers), not in a write of its own after it.
TEST_P(ChatEngineTest, IdempotentTurnStoresItsAnswerWithTheTurn) {
  ChatTurnRequest request = Request("s1", "Hi");
  request.request_id = "req-1";
  absl::StatusOr<ChatTurnResult> result = RunTurn(request);
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result->answer_stored);
  absl::StatusOr<store::RequestRecord> record =
      store_.idempotency()->Lookup({"default", "req-1"}, absl::Now());
  ASSERT_THAT(record, IsOk());
  ASSERT_TRUE(record->answer.has_value());
  EXPECT_EQ(record->answer->response, "Hello there");
  EXPECT_EQ(record->answer->turn_count, 1);
  // Stores keep microseconds.
  EXPECT_EQ(absl::ToUnixMicros(record->answer->timestamp),
            absl::ToUnixMicros(result->timestamp));
}

// A turn that outran its claim (another replica took the id over as stale)
// must not store a second turn: nothing is written and the caller is told to
// retry for the other turn's answer.
TEST_P(ChatEngineTest, IdempotentTurnWhoseClaimWasTakenOverStoresNothing) {
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  ChatTurnRequest request = Request("s1", "Hi");
  request.request_id = "req-1";
  RecordingObserver observer;
  ASSERT_THAT(engine_.StartTurn(request, &observer), IsOk());
  provider_.WaitForStarted(1);
  const absl::Time now = absl::Now();
  // Every claim made before now + 1h is stale to this caller.
  absl::StatusOr<store::ClaimResult> takeover = store_.idempotency()->Claim(
      {"default", "req-1"}, RequestFingerprint(request), "other-replica", now,
      now + absl::Hours(1), now + absl::Hours(1));
  ASSERT_THAT(takeover, IsOk());
  ASSERT_TRUE(takeover->claimed);
  provider_.Release();
  absl::StatusOr<ChatTurnResult> result = observer.Wait();
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(result.status().message(), HasSubstr("request_id req-1"));
  EXPECT_THAT(store_.GetSession({"default", "s1"}),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<store::RequestRecord> record =
      store_.idempotency()->Lookup({"default", "req-1"}, now);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->owner, "other-replica");
  EXPECT_FALSE(record->answer.has_value());
}

TEST_P(ChatEngineTest, TurnsOfOneSessionRunInArrivalOrder) {
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  RecordingObserver first, second, third;
  ASSERT_THAT(engine_.StartTurn(Request("s1", "1"), &first), IsOk());
  provider_.WaitForStarted(1);
  ASSERT_THAT(engine_.StartTurn(Request("s1", "2"), &second), IsOk());
  ASSERT_THAT(engine_.StartTurn(Request("s1", "3"), &third), IsOk());
  provider_.Release();
  ASSERT_THAT(first.Wait(), IsOk());
  ASSERT_THAT(second.Wait(), IsOk());
  ASSERT_THAT(third.Wait(), IsOk());
  EXPECT_EQ(first.Wait()->turn_count, 1);
  EXPECT_EQ(second.Wait()->turn_count, 2);
  EXPECT_EQ(third.Wait()->turn_count, 3);
  std::vector<store::StoredMessage> history = History("s1");
  ASSERT_EQ(history.size(), 6u);
  EXPECT_EQ(history[0].content, "1");
  EXPECT_EQ(history[2].content, "2");
  EXPECT_EQ(history[4].content, "3");
  // Each turn saw the turns before it.
  EXPECT_EQ(provider_.requests()[2].messages.size(), 5u);
}

TEST_P(ChatEngineTest, CancellingAQueuedTurnAnswersAtOnceAndSkipsIt) {
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  RecordingObserver running, queued;
  ASSERT_THAT(engine_.StartTurn(Request("s1", "running"), &running), IsOk());
  provider_.WaitForStarted(1);
  absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
      engine_.StartTurn(Request("s1", "queued"), &queued);
  ASSERT_THAT(turn, IsOk());
  (*turn)->Cancel();
  EXPECT_THAT(queued.Wait(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_FALSE(running.HasCompleted());
  provider_.Release();
  ASSERT_THAT(running.Wait(), IsOk());
  EXPECT_EQ(provider_.requests().size(), 1u);
  EXPECT_EQ(History("s1").size(), 2u);
}

TEST_P(ChatEngineTest, OtherSessionsAreNotQueuedBehindABusyOne) {
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  RecordingObserver busy, other;
  ASSERT_THAT(engine_.StartTurn(Request("busy", "x"), &busy), IsOk());
  ASSERT_THAT(engine_.StartTurn(Request("other", "y"), &other), IsOk());
  provider_.WaitForStarted(2);  // Both reached the provider at once.
  provider_.Release();
  EXPECT_THAT(busy.Wait(), IsOk());
  EXPECT_THAT(other.Wait(), IsOk());
}

TEST_P(ChatEngineTest, InvalidRequestsAreRejectedBeforeAnythingRuns) {
  RecordingObserver observer;
  EXPECT_THAT(
      engine_.StartTurn(Request("s1", ""), &observer),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message")));
  EXPECT_THAT(
      engine_.StartTurn(Request("bad id", "x"), &observer),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("session_id")));
  EXPECT_TRUE(provider_.requests().empty());
  EXPECT_FALSE(observer.HasCompleted());
}

// Another replica stores a turn on the session while this one's provider
// runs: the append conflicts.
class ConflictTest : public ChatEngineTest {
 protected:
  // Starts a held turn on "s1" (which has one turn), lets a rival append a
  // turn meanwhile, then releases the provider.
  absl::StatusOr<ChatTurnResult> TurnRacingARival(bool retry_on_conflict) {
    EXPECT_THAT(RunTurn(Request("s1", "first")), IsOk());
    FakeScript held;
    held.hold = true;
    provider_.SetScript(held);
    ChatTurnRequest request = Request("s1", "mine");
    request.retry_on_conflict = retry_on_conflict;
    RecordingObserver observer;
    EXPECT_THAT(engine_.StartTurn(request, &observer), IsOk());
    provider_.WaitForStarted(2);
    store::Turn rival;
    rival.user_message = "rival";
    rival.assistant_message = "rival reply";
    rival.created_at = absl::Now();
    EXPECT_THAT(store_.AppendTurn({"default", "s1"}, 1, "", rival), IsOk());
    provider_.Release();
    return observer.Wait();
  }
};

TEST_P(ConflictTest, UnaryTurnIsAskedAgainAgainstFreshHistory) {
  absl::StatusOr<ChatTurnResult> result = TurnRacingARival(true);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->turn_count, 3);
  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 3u);
  // The retry saw the rival's turn.
  EXPECT_EQ(requests[2].messages.size(), 5u);
  EXPECT_EQ(requests[2].messages[2].content, "rival");
  std::vector<store::StoredMessage> history = History("s1");
  ASSERT_EQ(history.size(), 6u);
  EXPECT_EQ(history[2].content, "rival");
  EXPECT_EQ(history[4].content, "mine");
}

TEST_P(ConflictTest, StreamedTurnFailsAbortedAndStoresNothing) {
  absl::StatusOr<ChatTurnResult> result = TurnRacingARival(false);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kAborted, HasSubstr("busy")));
  EXPECT_EQ(History("s1").size(), 4u);
}

class LimitsTest : public ChatEngineTest {
 protected:
  LimitsTest() : ChatEngineTest(Limited()) {}
};

TEST_P(LimitsTest, TurnsPerSessionAreCapped) {
  ASSERT_THAT(RunTurn(Request("s1", "1")), IsOk());
  ASSERT_THAT(RunTurn(Request("s1", "2")), IsOk());
  EXPECT_THAT(RunTurn(Request("s1", "3")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("max_turns_per_session")));
  EXPECT_EQ(provider_.requests().size(), 2u);  // Refused before the provider.
  ASSERT_THAT(store_.ResetSession({"default", "s1"}, absl::Now()), IsOk());
  EXPECT_THAT(RunTurn(Request("s1", "after reset")), IsOk());
}

TEST_P(LimitsTest, SessionsPerTenantAreCapped) {
  ASSERT_THAT(RunTurn(Request("a", "x")), IsOk());
  ASSERT_THAT(RunTurn(Request("b", "x")), IsOk());
  EXPECT_THAT(RunTurn(Request("c", "x")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("max_sessions_per_tenant")));
  // Existing sessions go on; another tenant has its own count.
  EXPECT_THAT(RunTurn(Request("a", "y")), IsOk());
  ChatTurnRequest other = Request("c", "x");
  other.tenant = "other";
  EXPECT_THAT(RunTurn(other), IsOk());
}

// The prompt is trimmed to the context window, the history is not, and the
// caller's deadline reaches the provider.
class ContextWindowTest : public ChatEngineTest {
 protected:
  static ChatEngineOptions Options() {
    ChatEngineOptions options;
    options.default_system_prompt = "";
    // Each message below is 100 bytes: 25 estimated tokens.
    options.max_context_tokens = 80;
    return options;
  }
  ContextWindowTest() : ChatEngineTest(Options()) {}
};

TEST_P(ContextWindowTest, OldTurnsLeaveThePromptNotTheStore) {
  FakeScript script;
  script.deltas = {std::string(100, 'r')};
  script.result.output_tokens = 25;  // What bytes/4 would say, too.
  provider_.SetScript(script);
  std::vector<int> truncated;
  for (int i = 0; i < 3; ++i) {
    ChatTurnRequest request = Request("s1", std::string(100, 'a' + i));
    request.deadline = absl::Now() + absl::Minutes(i + 1);
    absl::StatusOr<ChatTurnResult> result = RunTurn(request);
    ASSERT_THAT(result, IsOk());
    truncated.push_back(result->truncated_turns);
  }
  // 25 per message: the new one alone, then 75 with one turn, then 125
  // with two turns, over 80, so the oldest goes.
  EXPECT_THAT(truncated, ::testing::ElementsAre(0, 0, 1));
  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 3u);
  ASSERT_EQ(requests[2].messages.size(), 3u);
  EXPECT_EQ(requests[2].messages[0].content, std::string(100, 'b'));
  EXPECT_NE(requests[2].deadline, absl::InfiniteFuture());
  EXPECT_GT(requests[2].deadline, requests[1].deadline);
  EXPECT_EQ(History("s1").size(), 6u);
}

TEST_P(ContextWindowTest, ReportedOutputTokensCountInsteadOfBytes) {
  // Short replies the provider says were long: its count is what matters.
  FakeScript script;
  script.deltas = {"ok"};
  script.result.output_tokens = 60;
  provider_.SetScript(script);
  ASSERT_THAT(RunTurn(Request("s1", std::string(100, 'a'))), IsOk());
  absl::StatusOr<ChatTurnResult> second =
      RunTurn(Request("s1", std::string(100, 'b')));
  ASSERT_THAT(second, IsOk());
  // 25 + 60 + 25 > 80: the first turn is left out, though its reply is
  // 2 bytes.
  EXPECT_EQ(second->truncated_turns, 1);
  EXPECT_EQ(provider_.requests()[1].messages.size(), 1u);
}

// A key's limits, enforced by the engine before the provider is called.
class KeyLimitsTest : public ChatEngineTest {
 protected:
  static ChatTurnRequest KeyRequest(std::string session, std::string message,
                                    store::KeyLimits limits) {
    ChatTurnRequest request = Request(std::move(session), std::move(message));
    request.tenant = "acme";
    request.key_id = "key1";
    request.key_limits = std::move(limits);
    return request;
  }
};

// Records the rate-limit standing the engine reports before the answer.
class AdmissionObserver final : public TurnObserver {
 public:
  void OnAdmitted(const RateLimitStatus& status) override {
    absl::MutexLock lock(&mu_);
    admitted_ = status;
    deltas_before_admission_ = deltas_;
  }
  void OnDelta(absl::string_view /*text*/) override {
    absl::MutexLock lock(&mu_);
    ++deltas_;
  }
  void OnComplete(absl::StatusOr<ChatTurnResult> result) override {
    {
      absl::MutexLock lock(&mu_);
      result_ = std::move(result);
    }
    done_.Notify();
  }
  absl::StatusOr<ChatTurnResult> Wait() {
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    return result_;
  }
  std::optional<RateLimitStatus> admitted() {
    absl::MutexLock lock(&mu_);
    return admitted_;
  }
  int deltas_before_admission() {
    absl::MutexLock lock(&mu_);
    return deltas_before_admission_;
  }

 private:
  absl::Mutex mu_;
  std::optional<RateLimitStatus> admitted_ ABSL_GUARDED_BY(mu_);
  int deltas_ ABSL_GUARDED_BY(mu_) = 0;
  int deltas_before_admission_ ABSL_GUARDED_BY(mu_) = -1;
  absl::StatusOr<ChatTurnResult> result_ ABSL_GUARDED_BY(mu_) =
      absl::UnknownError("not completed");
  absl::Notification done_;
};

TEST_P(KeyLimitsTest, ABudgetRefusesBeforeTheProviderIsCalled) {
  store::KeyLimits limits;
  limits.budget_tokens = 1100;
  limits.budget_period = store::BudgetPeriod::kDay;
  ChatTurnRequest first = KeyRequest("s1", "Hi", limits);
  first.max_tokens = 1000;
  ASSERT_THAT(RunTurn(first), IsOk());
  // The reservation (prompt + max_tokens) became the reported usage: 10 in,
  // 2 out. A turn that may need 1,100 more is refused; the provider never
  // sees it and nothing is stored.
  ChatTurnRequest second = KeyRequest("s1", "Again", limits);
  second.max_tokens = 1090;
  EXPECT_THAT(
      RunTurn(second),
      StatusIs(absl::StatusCode::kResourceExhausted,
               HasSubstr("budget is 1100 tokens per day, 12 are used")));
  EXPECT_EQ(provider_.requests().size(), 1u);
  absl::StatusOr<std::vector<store::StoredMessage>> history =
      store_.LoadHistory({"acme", "s1"});
  ASSERT_THAT(history, IsOk());
  EXPECT_EQ(history->size(), 2u);
}

TEST_P(KeyLimitsTest, TheReservedMaxTokensIsSentToTheProvider) {
  store::KeyLimits limits;
  limits.tokens_per_minute = 100000;
  ASSERT_THAT(RunTurn(KeyRequest("s1", "Hi", limits)), IsOk());
  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].max_tokens, engine_.options().default_max_tokens);
}

TEST_P(KeyLimitsTest, TheStandingIsReportedBeforeTheFirstDelta) {
  store::KeyLimits limits;
  limits.requests_per_minute = 5;
  AdmissionObserver observer;
  ASSERT_THAT(engine_.StartTurn(KeyRequest("s1", "Hi", limits), &observer),
              IsOk());
  ASSERT_THAT(observer.Wait(), IsOk());
  std::optional<RateLimitStatus> admitted = observer.admitted();
  ASSERT_TRUE(admitted.has_value());
  EXPECT_EQ(admitted->limit_requests, 5);
  EXPECT_EQ(admitted->remaining_requests, 4);
  EXPECT_EQ(observer.deltas_before_admission(), 0);
}

TEST_P(KeyLimitsTest, RequestsPerMinuteRefusesTheTurnAfterTheLimit) {
  store::KeyLimits limits;
  limits.requests_per_minute = 2;
  ASSERT_THAT(RunTurn(KeyRequest("s1", "one", limits)), IsOk());
  ASSERT_THAT(RunTurn(KeyRequest("s2", "two", limits)), IsOk());
  absl::StatusOr<ChatTurnResult> third =
      RunTurn(KeyRequest("s3", "three", limits));
  // Unless the minute turned between the calls, which a retry sees.
  if (!third.ok()) {
    EXPECT_THAT(third, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("2 requests per minute")));
    EXPECT_TRUE(RetryAfterOf(third.status()).has_value());
    EXPECT_EQ(provider_.requests().size(), 2u);
  }
}

TEST_P(KeyLimitsTest, StreamsBeyondTheKeysLimitAreRefusedUntilOneEnds) {
  store::KeyLimits limits;
  limits.max_streams = 1;
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  ChatTurnRequest stream = KeyRequest("s1", "Hi", limits);
  stream.streamed = true;
  RecordingObserver first;
  ASSERT_THAT(engine_.StartTurn(stream, &first), IsOk());
  RecordingObserver second;
  ChatTurnRequest other = stream;
  other.session_id = "s2";
  EXPECT_THAT(
      engine_.StartTurn(other, &second),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_streams")));
  // A unary call is not a stream.
  provider_.Release();
  ChatTurnRequest unary = other;
  unary.streamed = false;
  ASSERT_THAT(RunTurn(unary), IsOk());
  ASSERT_THAT(first.Wait(), IsOk());
  RecordingObserver third;
  ASSERT_THAT(engine_.StartTurn(other, &third), IsOk());
  EXPECT_THAT(third.Wait(), IsOk());
}

TEST_P(KeyLimitsTest, ATurnCancelledMidAnswerIsChargedForWhatItUsed) {
  store::KeyLimits limits;
  limits.budget_tokens = 100000;
  limits.budget_period = store::BudgetPeriod::kDay;
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  RecordingObserver observer;
  absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
      engine_.StartTurn(KeyRequest("s1", "Hi", limits), &observer);
  ASSERT_THAT(turn, IsOk());
  provider_.WaitForStarted(1);  // "Hello there" was streamed.
  (*turn)->Cancel();
  ASSERT_THAT(observer.Wait(), StatusIs(absl::StatusCode::kCancelled));
  engine_.FlushUsage();
  absl::StatusOr<std::vector<store::UsageTotals>> usage =
      store_.quotas().GetUsage("acme", "key1", absl::Now() - absl::Hours(48),
                               absl::Now() + absl::Hours(48));
  ASSERT_THAT(usage, IsOk());
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ((*usage)[0].calls, 1);
  EXPECT_GT((*usage)[0].input_tokens, 0);
  EXPECT_EQ((*usage)[0].output_tokens, EstimateTokens("Hello there"));
  // The budget keeps the same charge: the reservation was not refunded.
  const absl::Time day = absl::FromCivil(
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()), absl::UTCTimeZone());
  EXPECT_EQ(store_.quotas().Read({"budget-day/key1", day}).value_or(-1),
            (*usage)[0].input_tokens + (*usage)[0].output_tokens);
}

TEST_P(KeyLimitsTest, TheKeysMaxTokensCeilingHoldsWhenTheRequestNamesNone) {
  store::KeyLimits limits;
  limits.max_tokens = 3;
  ASSERT_THAT(RunTurn(KeyRequest("s1", "Hi", limits)), IsOk());
  std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].max_tokens, 3);
}

TEST_P(KeyLimitsTest, AStreamCancelledWhileQueuedGivesItsSlotBackAtOnce) {
  store::KeyLimits limits;
  limits.max_streams = 2;
  FakeScript held;
  held.hold = true;
  provider_.SetScript(held);
  ChatTurnRequest stream = KeyRequest("s1", "one", limits);
  stream.streamed = true;
  RecordingObserver running;
  ASSERT_THAT(engine_.StartTurn(stream, &running), IsOk());
  provider_.WaitForStarted(1);
  // Queued behind the first turn of the same session.
  RecordingObserver queued;
  ChatTurnRequest second = stream;
  second.message = "two";
  absl::StatusOr<std::shared_ptr<TurnHandle>> queued_turn =
      engine_.StartTurn(second, &queued);
  ASSERT_THAT(queued_turn, IsOk());
  (*queued_turn)->Cancel();
  ASSERT_THAT(queued.Wait(), StatusIs(absl::StatusCode::kCancelled));
  // One slot is held by the running stream; the cancelled one is free.
  RecordingObserver other;
  ChatTurnRequest third = stream;
  third.session_id = "s2";
  EXPECT_THAT(engine_.StartTurn(third, &other), IsOk());
  provider_.Release();
  EXPECT_THAT(running.Wait(), IsOk());
  EXPECT_THAT(other.Wait(), IsOk());
}

TEST_P(KeyLimitsTest, UsageIsRecordedPerTenantAndKey) {
  ASSERT_THAT(RunTurn(KeyRequest("s1", "one", {})), IsOk());
  ASSERT_THAT(RunTurn(KeyRequest("s1", "two", {})), IsOk());
  ASSERT_THAT(RunTurn(Request("s9", "anonymous")), IsOk());
  engine_.FlushUsage();
  absl::StatusOr<std::vector<store::UsageTotals>> usage =
      store_.quotas().GetUsage("", "", absl::Now() - absl::Hours(48),
                               absl::Now() + absl::Hours(48));
  ASSERT_THAT(usage, IsOk());
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ((*usage)[0].tenant, "acme");
  EXPECT_EQ((*usage)[0].key_id, "key1");
  EXPECT_EQ((*usage)[0].calls, 2);
  EXPECT_EQ((*usage)[0].input_tokens, 20);
  EXPECT_EQ((*usage)[0].output_tokens, 4);
  EXPECT_EQ((*usage)[1].tenant, "default");
  EXPECT_EQ((*usage)[1].key_id, "");
  EXPECT_EQ((*usage)[1].calls, 1);
}

// The cost of an answer: the model the provider reported, priced by the
// engine's table. The fake provider reports "fake-model", 10 tokens in and
// 2 out.
ChatEngineOptions Priced(std::optional<ModelPrice> fake_model_price) {
  auto prices = std::make_shared<PriceTable>();
  prices->Set("other-model", {100.0, 100.0});
  if (fake_model_price.has_value())
    prices->Set("fake-model", *fake_model_price);
  ChatEngineOptions options;
  options.prices = std::move(prices);
  return options;
}

class PricedTest : public ChatEngineTest {
 protected:
  PricedTest() : ChatEngineTest(Priced(ModelPrice{3.0, 15.0})) {}
};

TEST_P(PricedTest, AnAnswerCostsItsTokensAtItsModelsPrice) {
  // A tenant of its own per run: the metrics are the process's.
  ChatTurnRequest request = Request("s1", "Hi");
  request.tenant = GetParam() ? "priced-pool" : "priced-inline";
  absl::StatusOr<ChatTurnResult> result = RunTurn(request);
  ASSERT_THAT(result, IsOk());
  ASSERT_TRUE(result->cost_usd.has_value());
  EXPECT_DOUBLE_EQ(*result->cost_usd, (10 * 3.0 + 2 * 15.0) / 1e6);
  // Metrics count it per tenant.
  EXPECT_NE(MetricsRegistry::Default().Render().find(absl::StrCat(
                "chatd_cost_usd_total{tenant=\"", request.tenant, "\"} 6e-05")),
            std::string::npos)
      << MetricsRegistry::Default().Render();
}

TEST_P(PricedTest, TheStoreAndTheUsageSumTheCost) {
  ASSERT_THAT(RunTurn(Request("s1", "one")), IsOk());
  ASSERT_THAT(RunTurn(Request("s2", "two")), IsOk());
  absl::StatusOr<store::StoreStats> stats = store_.GetStats("default");
  ASSERT_THAT(stats, IsOk());
  ASSERT_TRUE(stats->total_cost_usd.has_value());
  EXPECT_DOUBLE_EQ(*stats->total_cost_usd, 2 * 60e-6);
  engine_.FlushUsage();
  absl::StatusOr<std::vector<store::UsageTotals>> usage =
      store_.quotas().GetUsage("", "", absl::Now() - absl::Hours(48),
                               absl::Now() + absl::Hours(48));
  ASSERT_THAT(usage, IsOk());
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_DOUBLE_EQ((*usage)[0].cost_usd, 2 * 60e-6);
}

class UnpricedModelTest : public ChatEngineTest {
 protected:
  UnpricedModelTest() : ChatEngineTest(Priced(std::nullopt)) {}
};

TEST_P(UnpricedModelTest, AnAnswerOfAModelWithoutAPriceHasNoCost) {
  absl::StatusOr<ChatTurnResult> result = RunTurn(Request("s1", "Hi"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->cost_usd, std::nullopt);
  absl::StatusOr<store::StoreStats> stats = store_.GetStats("default");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, std::nullopt);
  EXPECT_EQ(stats->total_output_tokens, 2);
}

TEST_P(ChatEngineTest, WithoutAPriceTableNoAnswerHasACost) {
  absl::StatusOr<ChatTurnResult> result = RunTurn(Request("s1", "Hi"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->cost_usd, std::nullopt);
}

TEST_P(ChatEngineTest, StoreCallsRunWhereTheStoreAllows) {
  RecordingObserver observer;
  ASSERT_THAT(engine_.StartTurn(Request("s1", "Hi"), &observer), IsOk());
  if (!GetParam()) {
    // The idle session's turn started in place: the provider has it.
    EXPECT_EQ(provider_.requests().size(), 1u);
  }
  ASSERT_THAT(observer.Wait(), IsOk());
  ASSERT_NE(observer.delta_thread(), std::thread::id());
  if (GetParam()) {
    // A store that may block is called on the pool only: neither on the
    // caller's thread nor on the provider's.
    std::vector<std::thread::id> callers = may_block_store_.callers();
    EXPECT_FALSE(callers.empty());
    for (std::thread::id caller : callers) {
      EXPECT_NE(caller, std::this_thread::get_id());
      EXPECT_NE(caller, observer.delta_thread());
    }
  }
  // Committed on the pool, not on the thread that ended the provider's call
  // (the provider's I/O thread).
  EXPECT_NE(observer.complete_thread(), observer.delta_thread());
  EXPECT_NE(observer.complete_thread(), std::this_thread::get_id());
  EXPECT_EQ(History("s1").size(), 2u);
}

TEST_P(LimitsTest, ARefusalBeforeTheProviderIsAnsweredOnce) {
  ASSERT_THAT(RunTurn(Request("a", "x")), IsOk());
  ASSERT_THAT(RunTurn(Request("b", "x")), IsOk());
  // "c" is a session no turn has used, so nothing is queued before it.
  RecordingObserver observer;
  ASSERT_THAT(engine_.StartTurn(Request("c", "x"), &observer), IsOk());
  if (!GetParam()) {
    // Nothing waited: the answer came before StartTurn returned.
    EXPECT_TRUE(observer.HasCompleted());
    EXPECT_EQ(observer.complete_thread(), std::this_thread::get_id());
  }
  EXPECT_THAT(observer.Wait(), StatusIs(absl::StatusCode::kResourceExhausted));
  // The session was passed on: its next turn is refused the same way, not
  // stuck behind this one.
  EXPECT_THAT(RunTurn(Request("c", "y")),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(provider_.requests().size(), 2u);
}

std::string StoreKind(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "MayBlock" : "InMemory";
}

INSTANTIATE_TEST_SUITE_P(StoreMayBlock, ChatEngineTest, ::testing::Bool(),
                         StoreKind);
INSTANTIATE_TEST_SUITE_P(StoreMayBlock, ConflictTest, ::testing::Bool(),
                         StoreKind);
INSTANTIATE_TEST_SUITE_P(StoreMayBlock, ContextWindowTest, ::testing::Bool(),
                         StoreKind);
INSTANTIATE_TEST_SUITE_P(StoreMayBlock, KeyLimitsTest, ::testing::Bool(),
                         StoreKind);
INSTANTIATE_TEST_SUITE_P(StoreMayBlock, LimitsTest, ::testing::Bool(),
                         StoreKind);
INSTANTIATE_TEST_SUITE_P(StoreMayBlock, PricedTest, ::testing::Bool(),
                         StoreKind);
INSTANTIATE_TEST_SUITE_P(StoreMayBlock, UnpricedModelTest, ::testing::Bool(),
                         StoreKind);

}  // namespace
}  // namespace chat
