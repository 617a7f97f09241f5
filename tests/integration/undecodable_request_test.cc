// Requests whose message does not decode, sent to the real chat-server as
// hand-built bytes through gRPC's generic stub. Strategy: each kind of bad
// message (truncated, invalid UTF-8 in a string field) to each kind of
// method (unary, server-streaming) must answer INVALID_ARGUMENT with a
// message, not gRPC's UNIMPLEMENTED with none; then 1,000 of them must add
// only a few lines to the log (one a second at most, per source of lines),
// where gRPC 1.51 with protobuf's default handler logged one per request.

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;

// Sends `bytes` as the request message of `method`; returns the status.
grpc::Status CallRaw(grpc::GenericStub& stub, const std::string& method,
                     const std::string& bytes) {
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> call =
      stub.PrepareUnaryCall(&context, method, request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Field 1 (`message` or `session_id`, a string) claims 10 bytes, has 2.
const char kTruncated[] =
    "\x0a\x0a"
    "ab";
// Field 1 holds bytes that are not UTF-8.
const char kInvalidUtf8[] = "\x0a\x02\xff\xfe";

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class UndecodableRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY,
        std::vector<std::string>{"--listen=127.0.0.1:0", "--provider=echo",
                                 "--store=memory", "--echo_delay=0s"});
    ASSERT_TRUE(server_->Start().ok()) << server_->Log();
    stub_ = std::make_unique<grpc::GenericStub>(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

TEST_F(UndecodableRequestTest, AnswersInvalidArgumentWithAMessage) {
  for (const char* method :
       {"/chat.v1.ChatService/Chat", "/chat.v1.ChatService/ChatStream",
        "/chat.v1.ChatService/GetHistory"}) {
    for (const std::string& bytes :
         {std::string(kTruncated, sizeof(kTruncated) - 1),
          std::string(kInvalidUtf8, sizeof(kInvalidUtf8) - 1)}) {
      grpc::Status status = CallRaw(*stub_, method, bytes);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << method << ": " << status.error_message();
      EXPECT_THAT(status.error_message(), HasSubstr(method));
      EXPECT_THAT(status.error_message(), HasSubstr("does not decode"));
    }
  }
  // A well-formed message still works, and an unknown method is still
  // UNIMPLEMENTED.
  EXPECT_TRUE(CallRaw(*stub_, "/chat.v1.ChatService/GetStatus", "").ok());
  EXPECT_EQ(
      CallRaw(*stub_, "/chat.v1.ChatService/NoSuchMethod", "").error_code(),
      grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(UndecodableRequestTest, AThousandAddOnlyAFewLogLines) {
  const int before = CountLines(server_->Log());
  const absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) {
    const bool utf8 = i % 2 == 0;
    grpc::Status status =
        CallRaw(*stub_, "/chat.v1.ChatService/Chat",
                utf8 ? std::string(kInvalidUtf8, sizeof(kInvalidUtf8) - 1)
                     : std::string(kTruncated, sizeof(kTruncated) - 1));
    ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  const int64_t seconds = absl::ToInt64Seconds(absl::Now() - start) + 1;
  const std::string log = server_->Log();
  const int added = CountLines(log) - before;
  // Two sources (our line, protobuf's UTF-8 line), each at most one a second.
  EXPECT_LE(added, 2 * (seconds + 1)) << log;
  EXPECT_GE(added, 1) << log;
  EXPECT_THAT(log, HasSubstr("does not decode"));
}

}  // namespace
}  // namespace chat
