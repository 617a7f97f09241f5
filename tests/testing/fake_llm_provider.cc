#include "tests/testing/fake_llm_provider.h"

#include <atomic>
#include <utility>

namespace chat::testing {

class FakeLlmProvider::Call final : public llm::CompletionCall {
 public:
  void Cancel() override { cancelled.store(true); }
  std::atomic<bool> cancelled{false};
};

FakeLlmProvider::~FakeLlmProvider() {
  Release();
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void FakeLlmProvider::SetScript(FakeScript script) {
  absl::MutexLock lock(&mu_);
  script_ = std::move(script);
  released_ = false;
}

void FakeLlmProvider::Release() {
  absl::MutexLock lock(&mu_);
  released_ = true;
}

void FakeLlmProvider::WaitForStarted(int n) {
  std::pair<FakeLlmProvider*, int> arg(this, n);
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::pair<FakeLlmProvider*, int>* arg) {
        arg->first->mu_.AssertHeld();  // Conditions run under mu_.
        return arg->first->started_ >= arg->second;
      },
      &arg));
}

std::vector<llm::CompletionRequest> FakeLlmProvider::requests() {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int FakeLlmProvider::cancelled_calls() {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

std::shared_ptr<llm::CompletionCall> FakeLlmProvider::Start(
    llm::CompletionRequest request, std::shared_ptr<llm::CompletionSink> sink) {
  auto call = std::make_shared<Call>();
  absl::MutexLock lock(&mu_);
  requests_.push_back(std::move(request));
  FakeScript script = script_;
  threads_.emplace_back(
      [this, call, sink = std::move(sink), script = std::move(script)] {
        for (const std::string& delta : script.deltas) {
          if (call->cancelled.load()) break;
          sink->OnDelta(delta);
        }
        {
          absl::MutexLock lock(&mu_);
          ++started_;
        }
        if (script.hold) {
          absl::MutexLock lock(&mu_);
          // Polls for cancellation too: Cancel() does not signal mu_.
          while (!released_ && !call->cancelled.load()) {
            mu_.AwaitWithTimeout(absl::Condition(&released_),
                                 absl::Milliseconds(5));
          }
        }
        if (call->cancelled.load()) {
          {
            absl::MutexLock lock(&mu_);
            ++cancelled_;
          }
          sink->OnComplete(absl::CancelledError("cancelled"));
        } else if (!script.error.ok()) {
          sink->OnComplete(script.error);
        } else {
          sink->OnComplete(script.result);
        }
      });
  return call;
}

}  // namespace chat::testing
