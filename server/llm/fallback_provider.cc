#include "server/llm/fallback_provider.h"

#include <cstdlib>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"

namespace chat::llm {

bool ShouldFallBack(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

// One call across the entries. Attempts run one after another: the next is
// started from the previous one's OnComplete, so deltas and completions
// reach `sink_` in order and never overlap, as the sink contract requires.
// Owned by the caller's handle and by the current attempt's sink; it holds
// the current inner call until the end, when it lets go (breaking the cycle
// call -> inner call -> attempt sink -> call).
class FallbackProvider::Call final
    : public CompletionCall,
      public std::enable_shared_from_this<FallbackProvider::Call> {
 public:
  Call(FallbackProvider* provider, CompletionRequest request,
       std::shared_ptr<CompletionSink> sink)
      : provider_(provider),
        request_(std::move(request)),
        sink_(std::move(sink)) {}

  void Cancel() override {
    std::shared_ptr<CompletionCall> current;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      current = current_;
    }
    // Outside mu_: the inner provider may hold its own lock while it calls
    // our sink, which takes mu_.
    if (current != nullptr) current->Cancel();
  }

  // Starts the first entry that admits the call, from `first` on. From
  // Start (first == 0) something is always started: the primary, forced,
  // if every breaker refuses. Later, with nothing left, `last_error` ends
  // the call.
  void StartFrom(size_t first, absl::Status last_error);

  // The attempt on entry `index` ended; see AttemptSink.
  void OnAttemptFailed(size_t index, absl::Status status);

  void Deliver(absl::string_view text) { sink_->OnDelta(text); }
  void Finish(absl::StatusOr<CompletionResult> result) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      current_.reset();
    }
    sink_->OnComplete(std::move(result));
  }

  FallbackProvider* provider() const { return provider_; }

 private:
  void StartAttempt(size_t index, CircuitBreaker::Admission admission);

  FallbackProvider* const provider_;
  // The caller's request; each attempt starts from a copy.
  const CompletionRequest request_;
  const std::shared_ptr<CompletionSink> sink_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // The running attempt (or the last one); reset at the end.
  std::shared_ptr<CompletionCall> current_ ABSL_GUARDED_BY(mu_);
  // Attempts started so far. An attempt may end (and the next begin) on
  // another thread before its Start has returned: only the latest attempt
  // becomes current_, and none after Finish (which would keep the call
  // alive through its own attempt's sink).
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Watches one attempt: its first delta proves the entry healthy and commits
// the call to it; a failure before that may move the call on.
class FallbackProvider::AttemptSink final : public CompletionSink {
 public:
  AttemptSink(std::shared_ptr<Call> call, size_t index,
              CircuitBreaker::Admission admission, std::string model)
      : call_(std::move(call)),
        index_(index),
        admission_(admission),
        model_(std::move(model)) {}

  void OnDelta(absl::string_view text) override {
    // Deltas of one attempt never overlap with each other or OnComplete.
    if (!saw_delta_) {
      saw_delta_ = true;
      breaker().Record(admission_, CircuitBreaker::Outcome::kSuccess);
    }
    call_->Deliver(text);
  }

  void OnComplete(absl::StatusOr<CompletionResult> result) override {
    if (result.ok()) {
      if (!saw_delta_) {
        breaker().Record(admission_, CircuitBreaker::Outcome::kSuccess);
      }
      if (result->model.empty()) result->model = model_;
      if (index_ > 0) {
        const FallbackProvider& p = *call_->provider();
        LogInfo("provider fallback: ", p.entries_[index_]->name,
                " served model ", result->model, " after ", p.entries_[0]->name,
                " failed");
      }
      call_->Finish(std::move(result));
      return;
    }
    const absl::Status status = std::move(result).status();
    if (saw_delta_) {
      call_->Finish(status);
      return;
    }
    if (!ShouldFallBack(status)) {
      breaker().Record(admission_, CircuitBreaker::Outcome::kNeutral);
      call_->Finish(status);
      return;
    }
    breaker().Record(admission_, CircuitBreaker::Outcome::kFailure);
    call_->OnAttemptFailed(index_, status);
  }

 private:
  CircuitBreaker& breaker() {
    return call_->provider()->entries_[index_]->breaker;
  }

  const std::shared_ptr<Call> call_;
  const size_t index_;
  const CircuitBreaker::Admission admission_;
  // The model asked for, in case the provider's result names none.
  const std::string model_;
  bool saw_delta_ = false;
};

void FallbackProvider::Call::StartFrom(size_t first, absl::Status last_error) {
  const auto& entries = provider_->entries_;
  for (size_t i = first; i < entries.size(); ++i) {
    CircuitBreaker::Admission admission = entries[i]->breaker.TryAdmit();
    if (admission != CircuitBreaker::Admission::kRefused) {
      StartAttempt(i, admission);
      return;
    }
  }
  if (first == 0) {
    StartAttempt(0, entries[0]->breaker.Force());
    return;
  }
  Finish(std::move(last_error));
}

void FallbackProvider::Call::OnAttemptFailed(size_t index,
                                             absl::Status status) {
  bool stop = provider_->shutting_down_.load();
  if (!stop) {
    absl::MutexLock lock(&mu_);
    stop = cancelled_;
  }
  if (stop) {
    Finish(std::move(status));
    return;
  }
  StartFrom(index + 1, std::move(status));
}

void FallbackProvider::Call::StartAttempt(size_t index,
                                          CircuitBreaker::Admission admission) {
  Entry& entry = *provider_->entries_[index];
  CompletionRequest request = request_;
  if (!entry.model.empty()) request.model = entry.model;
  auto sink = std::make_shared<AttemptSink>(shared_from_this(), index,
                                            admission, request.model);
  int attempt;
  {
    absl::MutexLock lock(&mu_);
    attempt = ++attempts_;
  }
  // Not under mu_: Start may take the inner provider's lock.
  std::shared_ptr<CompletionCall> call =
      entry.provider->Start(std::move(request), std::move(sink));
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    if (attempt == attempts_ && !finished_) current_ = call;
    cancelled = cancelled_;
  }
  // A Cancel that came while the attempt was being started did not see it.
  if (cancelled) call->Cancel();
}

FallbackProvider::FallbackProvider(std::vector<FallbackEntry> entries,
                                   CircuitBreakerOptions breaker) {
  for (FallbackEntry& e : entries) {
    if (e.provider == nullptr) break;
    entries_.push_back(std::make_unique<Entry>(std::move(e), breaker));
  }
  // A bug in the caller (MakeLlmProvider always passes a primary).
  if (entries_.empty() || entries_.size() != entries.size()) {
    LogError("FallbackProvider needs a primary and no null provider");
    std::abort();
  }
}

FallbackProvider::~FallbackProvider() {
  shutting_down_.store(true);
  // The inner providers end their calls as they go (their final callbacks
  // may still read the entries, so those stay); none starts another.
  for (std::unique_ptr<Entry>& entry : entries_) entry->provider.reset();
}

std::shared_ptr<CompletionCall> FallbackProvider::Start(
    CompletionRequest request, std::shared_ptr<CompletionSink> sink) {
  auto call = std::make_shared<Call>(this, std::move(request), std::move(sink));
  call->StartFrom(0, absl::OkStatus());
  return call;
}

absl::string_view FallbackProvider::name() const { return entries_[0]->name; }

bool FallbackProvider::IsCoolingDown(size_t i) {
  return entries_[i]->breaker.IsOpen();
}

}  // namespace chat::llm
