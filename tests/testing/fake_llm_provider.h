#ifndef CHAT_TESTS_TESTING_FAKE_LLM_PROVIDER_H_
#define CHAT_TESTS_TESTING_FAKE_LLM_PROVIDER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/llm/llm_provider.h"

namespace chat::testing {

// What the fake does with each call it starts.
struct FakeScript {
  std::vector<std::string> deltas = {"Hello", " there"};
  // OK: complete with `result` after the deltas; else fail with this status.
  absl::Status error;
  llm::CompletionResult result = {"fake-model", "end_turn", 10, 2};
  // Send the deltas, then wait for Release() (or Cancel) before completing:
  // lets a test act while a call is in flight.
  bool hold = false;
};

// A scripted LlmProvider. Each call runs on a thread of its own (fine for
// tests), so sinks are called from outside the caller's thread as with the
// real providers. Records every request. Thread-safe.
class FakeLlmProvider final : public llm::LlmProvider {
 public:
  FakeLlmProvider() = default;
  ~FakeLlmProvider() override;

  void SetScript(FakeScript script);
  // Lets held calls complete.
  void Release();
  // Blocks until `n` calls have started (sent their deltas).
  void WaitForStarted(int n);
  std::vector<llm::CompletionRequest> requests();
  int cancelled_calls();

  std::shared_ptr<llm::CompletionCall> Start(
      llm::CompletionRequest request,
      std::shared_ptr<llm::CompletionSink> sink) override;
  absl::string_view name() const override { return "fake"; }

 private:
  class Call;

  absl::Mutex mu_;
  FakeScript script_ ABSL_GUARDED_BY(mu_);
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<llm::CompletionRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_FAKE_LLM_PROVIDER_H_
