// Start-up of the real binaries. Strategy: a bad flag or CHAT_ variable must
// stop the process before it listens, with exit code 2 and a message naming
// the flag; a second server on the port of a running one must exit non-zero
// (1: not a configuration error) saying which address it could not listen
// on, while the first keeps answering. gRPC's default SO_REUSEPORT would
// otherwise let the second bind and take half the connections.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;

// Runs `binary` with `args` and the extra `env` ("NAME=VALUE") through
// /usr/bin/env; returns the exit code and fills `output`.
int RunBinary(const std::string& binary, const std::vector<std::string>& env,
              const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(binary);
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<int> code = RunCommand(argv, output, absl::Seconds(30));
  EXPECT_TRUE(code.ok()) << code.status() << "\n" << *output;
  return code.ok() ? *code : -1;
}

struct BadConfigCase {
  std::string label;
  std::string binary;
  std::vector<std::string> env;
  std::vector<std::string> args;
  std::string message;
};

class BadConfigTest : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(BadConfigTest, ExitsTwoNamingTheFlag) {
  const BadConfigCase& c = GetParam();
  std::string output;
  EXPECT_EQ(RunBinary(c.binary, c.env, c.args, &output), 2) << output;
  EXPECT_THAT(output, HasSubstr(c.message));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("listening on")));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfigTest,
    ::testing::Values(
        BadConfigCase{"ServerListenPort99999",
                      CHAT_SERVER_BINARY,
                      {},
                      {"--listen=127.0.0.1:99999", "--store=memory"},
                      "chat-server: --listen must be HOST:PORT with a port "
                      "between 0 and 65535; got '127.0.0.1:99999'"},
        BadConfigCase{"ServerStoreThreadsNegative",
                      CHAT_SERVER_BINARY,
                      {},
                      {"--store_threads=-1", "--store=memory"},
                      "chat-server: --store_threads must be between 0 and "
                      "256; got -1"},
        BadConfigCase{"ServerStoreThreadsNegativeFromEnvironment",
                      CHAT_SERVER_BINARY,
                      {"CHAT_STORE_THREADS=-1"},
                      {"--store=memory"},
                      "chat-server: --store_threads must be between 0 and "
                      "256; got -1 (from CHAT_STORE_THREADS)"},
        BadConfigCase{"ServerUnparsableDuration",
                      CHAT_SERVER_BINARY,
                      {},
                      {"--shutdown_grace=10", "--store=memory"},
                      "chat-server: --shutdown_grace cannot be '10'"},
        BadConfigCase{"ServerUnknownFlag",
                      CHAT_SERVER_BINARY,
                      {},
                      {"--store_thread=2", "--store=memory"},
                      "chat-server: unknown flag --store_thread"},
        BadConfigCase{"GatewayIoThreadsZero",
                      CHAT_GATEWAY_BINARY,
                      {},
                      {"--io_threads=0", "--listen=127.0.0.1:0"},
                      "chat-gateway: --io_threads must be between 1 and 256; "
                      "got 0"},
        BadConfigCase{"GatewayListenPort99999",
                      CHAT_GATEWAY_BINARY,
                      {},
                      {"--listen=127.0.0.1:99999"},
                      "chat-gateway: --listen must be HOST:PORT"},
        BadConfigCase{"GatewayIoThreadsZeroFromEnvironment",
                      CHAT_GATEWAY_BINARY,
                      {"CHAT_GATEWAY_IO_THREADS=0"},
                      {"--listen=127.0.0.1:0"},
                      "(from CHAT_GATEWAY_IO_THREADS)"}),
    [](const ::testing::TestParamInfo<BadConfigCase>& info) {
      return info.param.label;
    });

TEST(HelpTest, ListsFlagsRangesAndVariables) {
  std::string output;
  RunBinary(CHAT_SERVER_BINARY, {}, {"--help"}, &output);
  EXPECT_THAT(output, HasSubstr("--store_threads"));
  EXPECT_THAT(output, HasSubstr("1 to 256"));
  EXPECT_THAT(output, HasSubstr("CHAT_STORE_THREADS"));
  RunBinary(CHAT_GATEWAY_BINARY, {}, {"--help"}, &output);
  EXPECT_THAT(output, HasSubstr("--io_threads"));
  EXPECT_THAT(output, HasSubstr("CHAT_GATEWAY_"));
}

std::unique_ptr<ServerProcess> StartServer() {
  auto server = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{"--listen=127.0.0.1:0", "--store=memory",
                               "--provider=echo", "--shutdown_grace=5s"});
  absl::Status started = server->Start();
  EXPECT_TRUE(started.ok()) << started;
  return started.ok() ? std::move(server) : nullptr;
}

// GetStatus on `address` over a fresh channel.
grpc::Status GetStatus(const std::string& address) {
  auto stub = v1::ChatService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetStatusResponse response;
  grpc::Status status =
      stub->GetStatus(&context, v1::GetStatusRequest(), &response);
  if (status.ok() && response.status() != "ok") {
    return grpc::Status(grpc::StatusCode::INTERNAL, response.status());
  }
  return status;
}

// One HTTP/1.1 GET on 127.0.0.1:`port`; the whole response, "" on failure.
std::string HttpGet(int port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    const std::string request = absl::StrCat(
        "GET ", target,
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if (write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n = 0;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0)
        response.append(buffer, n);
    }
  }
  close(fd);
  return response;
}

TEST(BusyPortTest, SecondServerExitsAndFirstKeepsServing) {
  std::unique_ptr<ServerProcess> first = StartServer();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(GetStatus(first->address()).ok());

  std::string output;
  EXPECT_EQ(RunBinary(CHAT_SERVER_BINARY, {},
                      {absl::StrCat("--listen=", first->address()),
                       "--store=memory", "--provider=echo"},
                      &output),
            1)
      << output;
  EXPECT_THAT(output,
              HasSubstr(absl::StrCat("cannot listen on ", first->address())));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("listening on")));

  // Several fresh connections: none may land on a second listener.
  for (int i = 0; i < 5; ++i) {
    grpc::Status status = GetStatus(first->address());
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  absl::StatusOr<int> code = first->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << first->Log();
}

TEST(BusyPortTest, SecondGatewayExitsAndFirstKeepsServing) {
  std::unique_ptr<ServerProcess> server = StartServer();
  ASSERT_NE(server, nullptr);
  ServerProcess first(
      CHAT_GATEWAY_BINARY,
      {"--listen=127.0.0.1:0", absl::StrCat("--backend=", server->address())});
  ASSERT_TRUE(first.Start().ok()) << first.Log();
  ASSERT_THAT(HttpGet(first.port(), "/v1/status"), HasSubstr("200 OK"));

  std::string output;
  EXPECT_EQ(RunBinary(CHAT_GATEWAY_BINARY, {},
                      {absl::StrCat("--listen=", first.address()),
                       absl::StrCat("--backend=", server->address())},
                      &output),
            1)
      << output;
  EXPECT_THAT(output,
              HasSubstr(absl::StrCat("cannot listen on ", first.address())));
  EXPECT_THAT(output, HasSubstr("in use"));

  const std::string response = HttpGet(first.port(), "/v1/status");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("\"ok\""));
  absl::StatusOr<int> code = first.Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << first.Log();
}

// The store's URL is logged (at start-up, and when it cannot be opened), but
// never its password. Nothing listens on port 1, so the open fails at once.
TEST(StoreUrlTest, PasswordStaysOutOfTheLog) {
  std::string output;
  EXPECT_EQ(RunBinary(CHAT_SERVER_BINARY, {},
                      {"--listen=127.0.0.1:0",
                       "--store=postgres://chat:hunter2@127.0.0.1:1/chat"},
                      &output),
            1)
      << output;
  EXPECT_THAT(output, HasSubstr("cannot open store postgres://chat:***@"));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace chat
