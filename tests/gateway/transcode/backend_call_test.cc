// NoBackendTookCall against gRPC 1.51's real failures on the gateway's own
// backend channels (round_robin with health checking): a call that no
// backend took is told apart from one a backend took and then lost, which
// the gateway must never send twice. And BackendCall's attempts.

#include "gateway/transcode/backend_call.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/app/backend_channel.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

constexpr char kMethod[] = "/chat.v1.ChatService/GetStatus";

// One unary call with `context` on `stub`, waited for; its status.
grpc::Status Call(grpc::GenericStub& stub, grpc::ClientContext& context) {
  grpc::Slice empty("");  // An empty message: GetStatusRequest has no field.
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, kMethod, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(status); });
  return done.get_future().get();
}

// One fail-fast unary call (as the gateway makes where its backend set
// waits for calls itself) on `channel`; its status.
grpc::Status CallOnce(const std::shared_ptr<grpc::Channel>& channel,
                      grpc::ClientContext& context) {
  context.set_wait_for_ready(false);
  if (context.deadline() == std::chrono::system_clock::time_point::max()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  }
  grpc::GenericStub stub(channel);
  return Call(stub, context);
}

grpc::Status CallOnce(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  return CallOnce(channel, context);
}

// A loopback TCP listener on a free port; -1 on failure.
int Listen(int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(fd, 4) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

bool ReadFully(int fd, char* out, size_t size) {
  while (size > 0) {
    const ssize_t n = read(fd, out, size);
    if (n <= 0) return false;
    out += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Plays a backend that takes a call and then dies: accepts one connection,
// says its HTTP/2 preface, reads frames until the call's HEADERS frame has
// arrived, and closes the connection. True if a HEADERS frame came.
bool TakeOneCallAndDrop(int listener) {
  const int fd = accept(listener, nullptr, nullptr);
  if (fd < 0) return false;
  // The server's preface: an empty SETTINGS frame.
  const char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
  char preface[24];
  bool headers = false;
  if (write(fd, settings, sizeof(settings)) == sizeof(settings) &&
      ReadFully(fd, preface, sizeof(preface))) {
    // Each frame: 3 bytes of length, 1 of type (1 = HEADERS), 1 of flags,
    // 4 of stream id, then the payload.
    unsigned char head[9];
    while (ReadFully(fd, reinterpret_cast<char*>(head), sizeof(head))) {
      const size_t length =
          (size_t{head[0]} << 16) | (size_t{head[1]} << 8) | size_t{head[2]};
      std::string payload(length, '\0');
      if (!ReadFully(fd, payload.data(), length)) break;
      if (head[3] == 1) {
        headers = true;
        break;
      }
    }
  }
  close(fd);
  return headers;
}

TEST(NoBackendTookCallTest, ABackendThatIsDownTookNothing) {
  int port = 0;
  const int fd = Listen(&port);
  ASSERT_GE(fd, 0);
  close(fd);  // Nothing listens on the port any more.
  auto channel = MakeBackendChannel(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(channel.ok()) << channel.status();
  grpc::Status status = CallOnce(*channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(NoBackendTookCall(status)) << status.error_message();
}

TEST(NoBackendTookCallTest, ABackendNotServingTookNothing) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::CallbackGenericService no_methods;  // A server needs a service.
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&no_methods);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  server->GetHealthCheckService()->SetServingStatus(false);
  auto channel = MakeBackendChannel(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(channel.ok()) << channel.status();
  // The channel fails calls only once its health watch said NOT_SERVING.
  grpc_connectivity_state state = (*channel)->GetState(true);
  while (state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
    ASSERT_TRUE((*channel)->WaitForStateChange(
        state, absl::ToChronoTime(absl::Now() + absl::Seconds(20))));
    state = (*channel)->GetState(false);
  }
  grpc::Status status = CallOnce(*channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(NoBackendTookCall(status)) << status.error_message();
  server->Shutdown();
}

TEST(NoBackendTookCallTest, ACallABackendTookAndThenLostIsNotResent) {
  int port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  bool took = false;
  std::thread backend([&] { took = TakeOneCallAndDrop(listener); });
  // Without the backend channels' health checking, whose Watch call would
  // come first and keep the channel from READY: the fake speaks no gRPC.
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  // It waits for the connection, then is sent, then loses it.
  context.set_wait_for_ready(true);
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  grpc::GenericStub stub(channel);
  grpc::Status status = Call(stub, context);
  backend.join();
  close(listener);
  ASSERT_TRUE(took);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_FALSE(NoBackendTookCall(status)) << status.error_message();
}

TEST(NoBackendTookCallTest, OnlyUnavailableFromThePickCounts) {
  EXPECT_FALSE(NoBackendTookCall(grpc::Status::OK));
  EXPECT_FALSE(NoBackendTookCall(grpc::Status(
      grpc::StatusCode::DEADLINE_EXCEEDED, "failed to connect to all")));
  EXPECT_FALSE(NoBackendTookCall(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed")));
  EXPECT_FALSE(NoBackendTookCall(grpc::Status(
      grpc::StatusCode::UNAVAILABLE, "chat-gateway is shutting down")));
  EXPECT_TRUE(NoBackendTookCall(
      grpc::Status(grpc::StatusCode::UNAVAILABLE,
                   "DNS resolution failed for chat:50051: NXDOMAIN")));
}

TEST(BackendCallTest, EachAttemptCarriesTheDeadlineAndMetadata) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  BackendCall call(deadline, {{"x-request-id", "r-1"}});
  std::shared_ptr<grpc::ClientContext> first = call.NewAttempt();
  std::shared_ptr<grpc::ClientContext> second = call.NewAttempt();
  EXPECT_EQ(call.attempts(), 2);
  for (const auto& context : {first, second}) {
    EXPECT_EQ(absl::FromChrono(context->deadline()), deadline);
  }
  EXPECT_NE(first, second);
}

TEST(BackendCallTest, AClientGoneCancelsTheCurrentAttemptAndEveryLaterOne) {
  int port = 0;
  const int fd = Listen(&port);
  ASSERT_GE(fd, 0);
  close(fd);
  auto channel = MakeBackendChannel(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(channel.ok()) << channel.status();
  BackendCall call(absl::Now() + absl::Seconds(20), {});
  std::shared_ptr<grpc::ClientContext> current = call.NewAttempt();
  EXPECT_FALSE(call.client_gone()->load());
  call.ClientGone();
  EXPECT_TRUE(call.client_gone()->load());
  EXPECT_EQ(CallOnce(*channel, *current).error_code(),
            grpc::StatusCode::CANCELLED);
  std::shared_ptr<grpc::ClientContext> later = call.NewAttempt();
  EXPECT_EQ(CallOnce(*channel, *later).error_code(),
            grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace chat::gateway
