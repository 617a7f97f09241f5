// grpc_load: a closed-loop gRPC load generator for chat-server. Keeps
// --concurrency calls in flight (callback API, a few threads, no thread per
// call) for --duration or --calls, then prints throughput, latency
// percentiles and errors. Bounded: it stops by itself and only talks to the
// --target it is given (loopback in bench/*.sh).
//
//   grpc_load --target=127.0.0.1:50051 --mode=unary --concurrency=64
//   --duration=10s grpc_load --mode=stream --concurrency=10000 --calls=10000
//   grpc_load --rate=20 --duration=60s --api_key=...   (rate-limit accuracy)
//   grpc_load --start_at=2025-01-01T12:00:00Z ...     (a common start)

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "chat-server address");
ABSL_FLAG(std::string, mode, "unary", "unary (Chat) or stream (ChatStream)");
ABSL_FLAG(int, concurrency, 64, "calls in flight at once");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to send");
ABSL_FLAG(int64_t, calls, 0, "stop after this many calls (0: use --duration)");
ABSL_FLAG(int, sessions, 1000, "distinct session ids to spread calls over");
ABSL_FLAG(int, channels, 8, "gRPC connections to spread calls over");
ABSL_FLAG(int, message_bytes, 32, "size of each user message");
ABSL_FLAG(double, rate, 0,
          "open loop: start this many calls per second, whatever their "
          "answers (0: closed loop, --concurrency calls always in flight)");
ABSL_FLAG(std::string, api_key, "",
          "sent as `authorization: Bearer KEY` (or set CHAT_API_KEY)");
ABSL_FLAG(absl::Time, start_at, absl::InfinitePast(),
          "connect, then wait until this time (RFC 3339, e.g. "
          "2025-01-01T12:00:00Z) to send the first call; --duration counts "
          "from it, so several processes can load one exact window");
ABSL_FLAG(std::string, session_prefix, "bench-",
          "session ids are PREFIX0, PREFIX1, ...: give concurrent processes "
          "different prefixes, or their turns race on shared sessions");

namespace {

using chat::v1::ChatRequest;
using chat::v1::ChatResponse;
using chat::v1::ChatStreamResponse;

class Load {
 public:
  Load() {
    for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
      grpc::ChannelArguments args;
      args.SetInt("chatd.bench.channel",
                  i);  // Distinct args: one connection each.
      channels_.push_back(
          grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target),
                                    grpc::InsecureChannelCredentials(), args));
      stubs_.push_back(chat::v1::ChatService::NewStub(channels_.back()));
    }
    message_ = std::string(absl::GetFlag(FLAGS_message_bytes), 'm');
    api_key_ = absl::GetFlag(FLAGS_api_key);
    if (api_key_.empty() && std::getenv("CHAT_API_KEY") != nullptr) {
      api_key_ = std::getenv("CHAT_API_KEY");
    }
    max_calls_ = absl::GetFlag(FLAGS_calls);
  }

  void Run() {
    const absl::Time start_at = absl::GetFlag(FLAGS_start_at);
    if (start_at > absl::Now()) {
      // Connected first, so the first calls at start_at pay no handshake.
      for (auto& channel : channels_) {
        channel->WaitForConnected(absl::ToChronoTime(start_at));
      }
      absl::SleepFor(start_at - absl::Now());
      start_ = start_at;
    } else {
      start_ = absl::Now();
    }
    end_ = start_ + absl::GetFlag(FLAGS_duration);
    if (absl::GetFlag(FLAGS_rate) > 0) {
      RunOpenLoop();
      return;
    }
    const int concurrency = absl::GetFlag(FLAGS_concurrency);
    {
      absl::MutexLock lock(&mu_);
      in_flight_ = concurrency;
    }
    for (int i = 0; i < concurrency; ++i) StartCall(i);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &in_flight_));
    elapsed_ = absl::Now() - start_;
  }

  // Starts calls at --rate per second until the end; a worker id beyond the
  // in-flight cap waits for the slot, so the tool stays bounded.
  void RunOpenLoop() {
    open_loop_ = true;
    const absl::Duration interval =
        absl::Seconds(1) / absl::GetFlag(FLAGS_rate);
    for (int64_t n = 0;; ++n) {
      const absl::Time due = start_ + n * interval;
      if ((max_calls_ > 0 && n >= max_calls_) ||
          (max_calls_ == 0 && due >= end_)) {
        break;
      }
      absl::SleepFor(due - absl::Now());
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Load* load) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return load->in_flight_ < absl::GetFlag(FLAGS_concurrency);
            },
            this));
        ++in_flight_;
      }
      StartCall(static_cast<int>(n % absl::GetFlag(FLAGS_concurrency)));
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* in_flight) { return *in_flight == 0; }, &in_flight_));
    elapsed_ = absl::Now() - start_;
  }

  void Report() {
    absl::MutexLock lock(&mu_);
    std::sort(latencies_ms_.begin(), latencies_ms_.end());
    auto pct = [&](double p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (latencies_ms_.empty()) return 0.0;
      size_t i = static_cast<size_t>(p * (latencies_ms_.size() - 1));
      return latencies_ms_[i];
    };
    const double seconds = absl::ToDoubleSeconds(elapsed_);
    std::printf(
        "mode=%s concurrency=%d calls=%zu errors=%lld elapsed=%.2fs\n"
        "throughput=%.1f calls/s  p50=%.2fms p90=%.2fms p99=%.2fms "
        "max=%.2fms\n",
        absl::GetFlag(FLAGS_mode).c_str(), absl::GetFlag(FLAGS_concurrency),
        latencies_ms_.size(), static_cast<long long>(errors_), seconds,
        latencies_ms_.size() / seconds, pct(0.5), pct(0.9), pct(0.99),
        pct(1.0));
    if (!first_error_.empty())
      std::printf("first error: %s\n", first_error_.c_str());
    std::printf("ok=%zu resource_exhausted=%lld\n", latencies_ms_.size(),
                static_cast<long long>(resource_exhausted_));
  }

 private:
  // Starts the next call for worker `id`, or retires the worker.
  void StartCall(int id) {
    const int64_t n = started_.fetch_add(1);
    if (!open_loop_ && ((max_calls_ > 0 && n >= max_calls_) ||
                        (max_calls_ == 0 && absl::Now() >= end_))) {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      return;
    }
    const std::string session_id = absl::StrCat(
        absl::GetFlag(FLAGS_session_prefix), n % absl::GetFlag(FLAGS_sessions));
    auto* stub = stubs_[id % stubs_.size()].get();
    if (absl::GetFlag(FLAGS_mode) == "stream") {
      chat::v1::ChatStreamRequest request;
      request.set_session_id(session_id);
      request.set_message(message_);
      new StreamCall(this, id, stub, std::move(request));
    } else {
      auto* context = new grpc::ClientContext;
      Authorize(context);
      auto* response = new ChatResponse;
      auto* req = new ChatRequest;
      req->set_session_id(session_id);
      req->set_message(message_);
      const absl::Time begin = absl::Now();
      stub->async()->Chat(
          context, req, response,
          [this, id, context, response, req, begin](grpc::Status s) {
            Done(begin, s);
            delete context;
            delete response;
            delete req;
            Next(id);
          });
    }
  }

  void Authorize(grpc::ClientContext* context) const {
    if (!api_key_.empty()) {
      context->AddMetadata("authorization", "Bearer " + api_key_);
    }
  }

  // After a call ends: the closed loop starts the worker's next call; the
  // open loop frees its slot.
  void Next(int id) {
    if (!open_loop_) {
      StartCall(id);
      return;
    }
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

  void Done(absl::Time begin, const grpc::Status& status) {
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - begin);
    absl::MutexLock lock(&mu_);
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++resource_exhausted_;
    }
    if (status.ok()) {
      latencies_ms_.push_back(ms);
    } else {
      if (first_error_.empty()) first_error_ = status.error_message();
      ++errors_;
    }
  }

  // One ChatStream read to its end.
  class StreamCall final : public grpc::ClientReadReactor<ChatStreamResponse> {
   public:
    StreamCall(Load* load, int id, chat::v1::ChatService::Stub* stub,
               chat::v1::ChatStreamRequest request)
        : load_(load),
          id_(id),
          request_(std::move(request)),
          begin_(absl::Now()) {
      load_->Authorize(&context_);
      stub->async()->ChatStream(&context_, &request_, this);
      StartRead(&event_);
      StartCall();
    }
    void OnReadDone(bool ok) override {
      if (ok) StartRead(&event_);
    }
    void OnDone(const grpc::Status& status) override {
      load_->Done(begin_, status);
      Load* load = load_;
      int id = id_;
      delete this;
      load->Next(id);
    }

   private:
    Load* const load_;
    const int id_;
    grpc::ClientContext context_;
    chat::v1::ChatStreamRequest request_;
    ChatStreamResponse event_;
    const absl::Time begin_;
  };

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<chat::v1::ChatService::Stub>> stubs_;
  std::string message_;
  int64_t max_calls_ = 0;
  std::string api_key_;
  bool open_loop_ = false;
  absl::Time start_, end_;
  absl::Duration elapsed_;
  std::atomic<int64_t> started_{0};
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t resource_exhausted_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Load load;
  load.Run();
  load.Report();
  return 0;
}
