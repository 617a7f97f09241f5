// FallbackProvider over two scripted FakeLlmProviders (a primary and one
// fallback) and a fake clock for the breakers. Each test starts calls, waits
// for their OnComplete through the sink's notification, then checks what the
// caller saw and which provider received which request.

#include "server/llm/fallback_provider.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_llm_provider.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::FakeLlmProvider;
using ::chat::testing::FakeScript;
using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

// Records one completion; done is notified at OnComplete.
class RecordingSink final : public CompletionSink {
 public:
  void OnDelta(absl::string_view text) override {
    absl::MutexLock lock(&mu_);
    deltas_.emplace_back(text);
  }
  void OnComplete(absl::StatusOr<CompletionResult> result) override {
    {
      absl::MutexLock lock(&mu_);
      result_ = std::move(result);
    }
    done_.Notify();
  }
  absl::StatusOr<CompletionResult> Wait() {
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    return result_;
  }
  std::string text() {
    absl::MutexLock lock(&mu_);
    return absl::StrJoin(deltas_, "");
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> deltas_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<CompletionResult> result_ ABSL_GUARDED_BY(mu_) =
      absl::UnknownError("no result");
  absl::Notification done_;
};

FakeScript Fails(absl::Status error, std::vector<std::string> deltas = {}) {
  FakeScript script;
  script.deltas = std::move(deltas);
  script.error = std::move(error);
  return script;
}

FakeScript Answers(std::string model,
                   std::vector<std::string> deltas = {"Hello", " there"}) {
  FakeScript script;
  script.deltas = std::move(deltas);
  script.result.model = std::move(model);
  return script;
}

class FallbackProviderTest : public ::testing::Test {
 protected:
  FallbackProviderTest() {
    auto primary = std::make_unique<FakeLlmProvider>();
    auto fallback = std::make_unique<FakeLlmProvider>();
    primary_ = primary.get();
    fallback_ = fallback.get();
    primary_->SetScript(Answers("claude-test"));
    fallback_->SetScript(Answers("gpt-fallback"));
    std::vector<FallbackEntry> entries;
    entries.push_back({std::move(primary), ""});
    entries.push_back({std::move(fallback), "gpt-fallback"});
    CircuitBreakerOptions breaker;
    breaker.failure_threshold = 3;
    breaker.cooldown = absl::Seconds(30);
    breaker.now = [this] {
      absl::MutexLock lock(&clock_mu_);
      return now_;
    };
    provider_ = std::make_unique<FallbackProvider>(std::move(entries),
                                                   std::move(breaker));
  }

  CompletionRequest Request() {
    CompletionRequest request;
    request.messages.push_back({"user", "hi", std::nullopt});
    request.model = "claude-test";
    return request;
  }

  // Runs one call to its end.
  absl::StatusOr<CompletionResult> Run(std::string* text = nullptr) {
    auto sink = std::make_shared<RecordingSink>();
    std::shared_ptr<CompletionCall> call = provider_->Start(Request(), sink);
    absl::StatusOr<CompletionResult> result = sink->Wait();
    if (text != nullptr) *text = sink->text();
    return result;
  }

  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }

  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) =
      absl::FromUnixSeconds(1700000000);
  FakeLlmProvider* primary_;
  FakeLlmProvider* fallback_;
  std::unique_ptr<FallbackProvider> provider_;
};

TEST_F(FallbackProviderTest, PrimaryServesWhenHealthy) {
  std::string text;
  absl::StatusOr<CompletionResult> result = Run(&text);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->model, "claude-test");
  EXPECT_EQ(text, "Hello there");
  EXPECT_EQ(primary_->requests().size(), 1u);
  EXPECT_TRUE(fallback_->requests().empty());
  EXPECT_EQ(provider_->name(), "fake");
}

TEST_F(FallbackProviderTest, UnavailableBeforeFirstDeltaFallsBack) {
  primary_->SetScript(Fails(absl::UnavailableError("HTTP 529 overloaded")));
  std::string text;
  absl::StatusOr<CompletionResult> result = Run(&text);
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->model, "gpt-fallback");
  EXPECT_EQ(text, "Hello there");
  ASSERT_EQ(primary_->requests().size(), 1u);
  EXPECT_EQ(primary_->requests()[0].model, "claude-test");
  // The fallback is asked for its own model, with the same conversation.
  ASSERT_EQ(fallback_->requests().size(), 1u);
  EXPECT_EQ(fallback_->requests()[0].model, "gpt-fallback");
  EXPECT_EQ(fallback_->requests()[0].messages[0].content, "hi");
}

TEST_F(FallbackProviderTest,
       ResultNamesTheFallbackModelWhenTheProviderDoesNot) {
  primary_->SetScript(Fails(absl::ResourceExhaustedError("HTTP 429")));
  fallback_->SetScript(Answers(""));
  absl::StatusOr<CompletionResult> result = Run();
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->model, "gpt-fallback");
}

TEST_F(FallbackProviderTest, FailureAfterADeltaGoesToTheCaller) {
  primary_->SetScript(
      Fails(absl::UnavailableError("stream broke"), {"Partial"}));
  std::string text;
  EXPECT_THAT(Run(&text), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(text, "Partial");
  EXPECT_TRUE(fallback_->requests().empty());
}

TEST_F(FallbackProviderTest, WhenEveryEntryFailsTheLastErrorIsReturned) {
  primary_->SetScript(Fails(absl::UnavailableError("primary down")));
  fallback_->SetScript(Fails(absl::ResourceExhaustedError("fallback 429")));
  EXPECT_THAT(Run(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(primary_->requests().size(), 1u);
  EXPECT_EQ(fallback_->requests().size(), 1u);
}

class NoFallbackTest : public FallbackProviderTest,
                       public ::testing::WithParamInterface<absl::StatusCode> {
};

TEST_P(NoFallbackTest, ErrorGoesToTheCallerUntried) {
  primary_->SetScript(Fails(absl::Status(GetParam(), "no")));
  EXPECT_THAT(Run(), StatusIs(GetParam()));
  EXPECT_TRUE(fallback_->requests().empty());
  EXPECT_FALSE(ShouldFallBack(absl::Status(GetParam(), "no")));
}

INSTANTIATE_TEST_SUITE_P(
    Codes, NoFallbackTest,
    ::testing::Values(absl::StatusCode::kInvalidArgument,
                      absl::StatusCode::kPermissionDenied,
                      absl::StatusCode::kUnauthenticated,
                      absl::StatusCode::kInternal, absl::StatusCode::kCancelled,
                      absl::StatusCode::kDeadlineExceeded),
    [](const ::testing::TestParamInfo<absl::StatusCode>& info) {
      return absl::StatusCodeToString(info.param);
    });

TEST_F(FallbackProviderTest, AFailingPrimaryIsSkippedForTheCooldownThenProbed) {
  primary_->SetScript(Fails(absl::UnavailableError("HTTP 503")));
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<CompletionResult> result = Run();
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->model, "gpt-fallback");
  }
  EXPECT_TRUE(provider_->IsCoolingDown(0));
  // Open: the fallback serves without the primary being asked.
  ASSERT_THAT(Run(), IsOk());
  EXPECT_EQ(primary_->requests().size(), 3u);
  EXPECT_EQ(fallback_->requests().size(), 4u);

  // After the cooldown one call probes the primary; it still fails, so the
  // call is served by the fallback and the primary is skipped again.
  Advance(absl::Seconds(30));
  ASSERT_THAT(Run(), IsOk());
  EXPECT_EQ(primary_->requests().size(), 4u);
  ASSERT_THAT(Run(), IsOk());
  EXPECT_EQ(primary_->requests().size(), 4u);

  // The next probe succeeds and closes the breaker.
  Advance(absl::Seconds(30));
  primary_->SetScript(Answers("claude-test"));
  absl::StatusOr<CompletionResult> result = Run();
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->model, "claude-test");
  EXPECT_FALSE(provider_->IsCoolingDown(0));
  ASSERT_THAT(Run(), IsOk());
  EXPECT_EQ(primary_->requests().size(), 6u);
  EXPECT_EQ(fallback_->requests().size(), 6u);
}

TEST_F(FallbackProviderTest, WithEveryEntryCoolingDownThePrimaryIsTriedAnyway) {
  primary_->SetScript(Fails(absl::UnavailableError("primary down")));
  fallback_->SetScript(Fails(absl::UnavailableError("fallback down")));
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(Run(), StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_TRUE(provider_->IsCoolingDown(0));
  EXPECT_TRUE(provider_->IsCoolingDown(1));
  EXPECT_THAT(Run(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(primary_->requests().size(), 4u);
  EXPECT_EQ(fallback_->requests().size(), 3u);
  // A forced success closes the primary's breaker.
  primary_->SetScript(Answers("claude-test"));
  ASSERT_THAT(Run(), IsOk());
  EXPECT_FALSE(provider_->IsCoolingDown(0));
}

TEST_F(FallbackProviderTest, CancelReachesTheFallbackCall) {
  primary_->SetScript(Fails(absl::UnavailableError("HTTP 529")));
  FakeScript held = Answers("gpt-fallback", {"Hel"});
  held.hold = true;
  fallback_->SetScript(held);
  auto sink = std::make_shared<RecordingSink>();
  std::shared_ptr<CompletionCall> call = provider_->Start(Request(), sink);
  fallback_->WaitForStarted(1);
  call->Cancel();
  EXPECT_THAT(sink->Wait(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(sink->text(), "Hel");
  EXPECT_EQ(fallback_->cancelled_calls(), 1);
}

TEST_F(FallbackProviderTest, CancelDuringThePrimaryStartsNoFallback) {
  FakeScript held = Fails(absl::UnavailableError("HTTP 503"));
  held.hold = true;
  primary_->SetScript(held);
  auto sink = std::make_shared<RecordingSink>();
  std::shared_ptr<CompletionCall> call = provider_->Start(Request(), sink);
  primary_->WaitForStarted(1);
  call->Cancel();
  EXPECT_THAT(sink->Wait(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(primary_->cancelled_calls(), 1);
  EXPECT_TRUE(fallback_->requests().empty());
  // A cancelled call says nothing about the primary's health.
  EXPECT_FALSE(provider_->IsCoolingDown(0));
}

TEST(ShouldFallBackTest, OnlyOutagesAndOverloads) {
  EXPECT_TRUE(ShouldFallBack(absl::UnavailableError("x")));
  EXPECT_TRUE(ShouldFallBack(absl::ResourceExhaustedError("x")));
  EXPECT_FALSE(ShouldFallBack(absl::OkStatus()));
}

}  // namespace
}  // namespace chat::llm
