// The pure pieces of the HTTP provider: backoff, retry-after and error
// bodies; and, against the fake upstream (tests/fake_upstream/server.mjs),
// how deltas reach the sink and how a whole answer too large or cut off
// fails. The transfers themselves are tested end
// to end in tests/integration/llm_provider_test.cc.

#include "server/llm/http_streaming_provider.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/anthropic_provider.h"
#include "tests/testing/fake_upstream.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::FakeUpstream;
using ::chat::testing::StatusIs;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::SizeIs;

TEST(RetryDelayTest, DoublesWithJitterAndCap) {
  HttpProviderOptions options;
  options.retry_base_delay = absl::Milliseconds(100);
  options.retry_max_delay = absl::Milliseconds(350);
  EXPECT_EQ(RetryDelay(1, options, 0.0, std::nullopt), absl::Milliseconds(50));
  EXPECT_EQ(RetryDelay(1, options, 1.0, std::nullopt), absl::Milliseconds(100));
  EXPECT_EQ(RetryDelay(2, options, 1.0, std::nullopt), absl::Milliseconds(200));
  EXPECT_EQ(RetryDelay(3, options, 1.0, std::nullopt), absl::Milliseconds(350));
  EXPECT_EQ(RetryDelay(30, options, 1.0, std::nullopt),
            absl::Milliseconds(350));
}

TEST(RetryDelayTest, HonoursRetryAfter) {
  HttpProviderOptions options;
  options.retry_base_delay = absl::Milliseconds(100);
  EXPECT_EQ(RetryDelay(1, options, 0.5, absl::Seconds(2)), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(1, options, 1.0, absl::Milliseconds(10)),
            absl::Milliseconds(100));
}

TEST(ParseRetryAfterTest, SecondsMillisecondsAndDates) {
  EXPECT_EQ(ParseRetryAfter({{"retry-after", "3"}}), absl::Seconds(3));
  EXPECT_EQ(ParseRetryAfter({{"retry-after", "0.5"}}), absl::Milliseconds(500));
  EXPECT_EQ(ParseRetryAfter({{"retry-after-ms", "250"}, {"retry-after", "1"}}),
            absl::Milliseconds(250));
  EXPECT_EQ(ParseRetryAfter({{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}),
            std::nullopt);
  EXPECT_EQ(ParseRetryAfter({}), std::nullopt);
}

TEST(ParseErrorBodyTest, AnthropicOpenAiAndPlainShapes) {
  std::string type, message;
  ParseErrorBody(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
      &type, &message);
  EXPECT_EQ(type, "overloaded_error");
  EXPECT_EQ(message, "Overloaded");

  type.clear();
  message.clear();
  ParseErrorBody(
      R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})",
      &type, &message);
  EXPECT_EQ(type, "rate_limit_exceeded");
  EXPECT_EQ(message, "Rate limit reached");

  type.clear();
  message.clear();
  ParseErrorBody(R"({"error":"model 'x' not found"})", &type, &message);
  EXPECT_EQ(type, "");
  EXPECT_EQ(message, "model 'x' not found");

  type.clear();
  message.clear();
  ParseErrorBody("<html>Bad Gateway</html>", &type, &message);
  EXPECT_EQ(type, "");
  EXPECT_EQ(message, "");
}

// Anthropic's decoder, each delta of which comes out as two: its first
// byte, then the rest.
class SplittingDecoder final : public StreamDecoder {
 public:
  explicit SplittingDecoder(std::unique_ptr<StreamDecoder> inner)
      : inner_(std::move(inner)) {}
  absl::Status OnEvent(const SseEvent& event,
                       std::vector<std::string>* deltas) override {
    std::vector<std::string> mine;
    absl::Status s = inner_->OnEvent(event, &mine);
    for (const std::string& d : mine) {
      if (d.size() < 2) {
        deltas->push_back(d);
        continue;
      }
      deltas->push_back(d.substr(0, 1));
      deltas->push_back(d.substr(1));
    }
    return s;
  }
  absl::Status OnWholeBody(absl::string_view body,
                           std::vector<std::string>* deltas) override {
    return inner_->OnWholeBody(body, deltas);
  }
  bool done() const override { return inner_->done(); }
  absl::StatusOr<CompletionResult> Finish() override {
    return inner_->Finish();
  }

 private:
  std::unique_ptr<StreamDecoder> inner_;
};

class SplittingProtocol final : public WireProtocol {
 public:
  explicit SplittingProtocol(AnthropicConfig config)
      : inner_(std::move(config)) {}
  absl::string_view name() const override { return inner_.name(); }
  HttpRequest BuildRequest(const CompletionRequest& request) const override {
    return inner_.BuildRequest(request);
  }
  std::unique_ptr<StreamDecoder> NewDecoder() const override {
    return std::make_unique<SplittingDecoder>(inner_.NewDecoder());
  }
  absl::string_view request_id_header() const override {
    return inner_.request_id_header();
  }

 private:
  AnthropicProtocol inner_;
};

class RecordingSink final : public CompletionSink {
 public:
  void OnDelta(absl::string_view text) override {
    absl::MutexLock lock(&mu_);
    deltas_.emplace_back(text);
  }
  void OnComplete(absl::StatusOr<CompletionResult> result) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = result.status();
    }
    done_.Notify();
  }
  bool WaitDone() {
    return done_.WaitForNotificationWithTimeout(absl::Seconds(60));
  }
  std::vector<std::string> deltas() {
    absl::MutexLock lock(&mu_);
    return deltas_;
  }
  absl::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> deltas_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

// A provider on a loop of its own, and the node fake it talks to.
class HttpStreamingProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(CHAT_NODE_BINARY).empty())
      GTEST_SKIP() << "node was not found at configure time";
    absl::StatusOr<std::unique_ptr<FakeUpstream>> upstream =
        FakeUpstream::Start(CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR);
    ASSERT_TRUE(upstream.ok()) << upstream.status();
    upstream_ = *std::move(upstream);
    config_.api_key = "k";
    config_.base_url = upstream_->base_url();
  }

  // Runs `request` through a provider speaking `protocol` (Anthropic's by
  // default); the sink once the completion has ended.
  std::shared_ptr<RecordingSink> Complete(
      const CompletionRequest& request,
      std::unique_ptr<WireProtocol> protocol = nullptr) {
    if (protocol == nullptr)
      protocol = std::make_unique<AnthropicProtocol>(config_);
    absl::StatusOr<std::unique_ptr<CurlMultiLoop>> loop =
        CurlMultiLoop::Create();
    EXPECT_TRUE(loop.ok()) << loop.status();
    auto sink = std::make_shared<RecordingSink>();
    if (!loop.ok()) return sink;
    HttpStreamingProvider provider(std::move(protocol), HttpProviderOptions(),
                                   *std::move(loop));
    std::shared_ptr<CompletionCall> call = provider.Start(request, sink);
    if (!sink->WaitDone()) {
      // The provider must outlive its calls: end this one before it goes.
      ADD_FAILURE() << "the completion did not end";
      call->Cancel();
      sink->WaitDone();
    }
    return sink;
  }

  std::unique_ptr<FakeUpstream> upstream_;
  AnthropicConfig config_;
};

// The deltas decoded from one read of the body reach the sink in one
// OnDelta (each is a write down the caller's stream): a delta the decoder
// split in two never arrives in halves, and the text is whole.
TEST_F(HttpStreamingProviderTest, TheDeltasOfOneReadReachTheSinkAsOne) {
  CompletionRequest request;
  request.model = "ok@provider-split";
  request.messages.push_back({"user", "hello there", std::nullopt});
  std::shared_ptr<RecordingSink> sink =
      Complete(request, std::make_unique<SplittingProtocol>(config_));
  ASSERT_TRUE(sink->status().ok()) << sink->status();
  std::vector<std::string> deltas = sink->deltas();
  EXPECT_EQ(absl::StrJoin(deltas, ""), "Echo of 1 messages: hello there");
  // Every word of the reply is 2 bytes or more, so a lone byte is the first
  // half of a split delta.
  EXPECT_THAT(deltas, Each(SizeIs(::testing::Gt(1u))));
}

// A whole answer past the 16 MiB it may hold fails as too large, once: not
// cut short and then reported as JSON that does not parse.
TEST_F(HttpStreamingProviderTest, AWholeAnswerLargerThan16MiBIsRefusedAsSuch) {
  // The fake echoes the message: its answer is a little over 17 MiB.
  CompletionRequest request;
  request.model = "ok@provider-huge";
  request.stream = false;
  request.messages.push_back(
      {"user", std::string(17 * 1024 * 1024, 'x'), std::nullopt});
  std::shared_ptr<RecordingSink> sink = Complete(request);
  EXPECT_THAT(sink->status(), StatusIs(absl::StatusCode::kInternal,
                                       HasSubstr("larger than 16 MiB")));
  EXPECT_TRUE(sink->deltas().empty());
  EXPECT_EQ(upstream_->Stats("ok@provider-huge")["attempts"], 1);
}

// A whole answer cut off halfway (the fake sends half its Content-Length,
// then closes) fails UNAVAILABLE with curl's reason, and is not asked for
// again: the upstream had answered, so the model's work was done and paid.
TEST_F(HttpStreamingProviderTest, AWholeAnswerCutOffFailsOnceAndSaysSo) {
  CompletionRequest request;
  request.model = "truncated@provider-cut";
  request.stream = false;
  request.messages.push_back({"user", "hello there", std::nullopt});
  std::shared_ptr<RecordingSink> sink = Complete(request);
  EXPECT_THAT(sink->status(), StatusIs(absl::StatusCode::kUnavailable,
                                       HasSubstr("bytes remaining to read")));
  EXPECT_TRUE(sink->deltas().empty());
  EXPECT_EQ(upstream_->Stats("truncated@provider-cut")["attempts"], 1);
}

}  // namespace
}  // namespace chat::llm
