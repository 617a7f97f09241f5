// TLS on chat-server's gRPC port and on the gateway's calls to it, through
// the real binaries. Strategy: each test makes its own CA and certificates
// with openssl, starts chat-server with them, and connects with real clients:
// the C++ gRPC client, `buf curl` (tests/node_modules; skipped if missing),
// curl through chat-gateway with --backend_ca. What must fail is checked as
// closely as what must work: a plaintext client, a client trusting another
// CA, a client without a certificate when mutual TLS is on. Certificate
// rotation replaces the files, sends SIGHUP, waits for the server's log line
// saying it re-read them, and then checks that a new connection gets the new
// certificate while a stream opened before goes on to its end.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/server_process.h"
#include "tests/testing/test_certificates.h"

namespace chat {
namespace {

using ::chat::testing::MakeTempDir;
using ::chat::testing::MakeTestPki;
using ::chat::testing::ReadTextFile;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;

const bool kPollOften = chat::testing::PollIdleChannelsOften();

// GetStatus over a fresh channel with `credentials`; the call's status.
grpc::Status CallGetStatus(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  // A fresh connection each time: never reuse a subchannel (and its TLS
  // session) from an earlier channel in this process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = chat::v1::ChatService::NewStub(
      grpc::CreateCustomChannel(target, credentials, args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  chat::v1::GetStatusRequest request;
  chat::v1::GetStatusResponse response;
  return stub->GetStatus(&context, request, &response);
}

std::shared_ptr<grpc::ChannelCredentials> TrustingCa(
    const TestPki& pki, bool with_client_cert = false) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadTextFile(pki.ca_cert);
  if (with_client_cert) {
    options.pem_cert_chain = ReadTextFile(pki.client_cert);
    options.pem_private_key = ReadTextFile(pki.client_key);
  }
  return grpc::SslCredentials(options);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    absl::StatusOr<TestPki> a = MakeTestPki(dir_, "a");
    ASSERT_TRUE(a.ok()) << a.status();
    a_ = *a;
    absl::StatusOr<TestPki> b = MakeTestPki(dir_, "b");
    ASSERT_TRUE(b.ok()) << b.status();
    b_ = *b;
  }

  // Starts chat-server with a's server certificate, plus `extra` flags.
  void StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0",
                                     "--provider=echo",
                                     "--store=memory",
                                     "--echo_delay=1ms",
                                     "--shutdown_grace=2s",
                                     "--tls_cert=" + a_.server_cert,
                                     "--tls_key=" + a_.server_key};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args);
    ASSERT_TRUE(server_->Start().ok()) << server_->Log();
    target_ = absl::StrCat("localhost:", server_->port());
  }

  // Runs `buf curl` with `args`, returning its exit code and output.
  int BufCurl(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {CHAT_BUF_BINARY, "curl", "--protocol",
                                     "grpc"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<int> code = RunCommand(argv, output);
    EXPECT_TRUE(code.ok()) << code.status();
    return code.ok() ? *code : -1;
  }

  std::string dir_;
  TestPki a_;
  TestPki b_;
  std::unique_ptr<ServerProcess> server_;
  std::string target_;
};

TEST_F(TlsTest, ClientTrustingTheCaIsServed) {
  StartServer();
  EXPECT_THAT(server_->Log(), HasSubstr("with TLS"));
  grpc::Status status = CallGetStatus(target_, TrustingCa(a_));
  EXPECT_TRUE(status.ok()) << status.error_message();
  // The certificate names 127.0.0.1 too.
  status = CallGetStatus(absl::StrCat("127.0.0.1:", server_->port()),
                         TrustingCa(a_));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, PlaintextClientAndUntrustingClientFail) {
  StartServer();
  EXPECT_EQ(
      CallGetStatus(target_, grpc::InsecureChannelCredentials()).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CallGetStatus(target_, TrustingCa(b_)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, BufCurlWithCacert) {
  if (access(CHAT_BUF_BINARY, X_OK) != 0) {
    GTEST_SKIP() << "no " << CHAT_BUF_BINARY << " (run: cd tests && npm ci)";
  }
  StartServer();
  const std::string url = absl::StrCat("https://localhost:", server_->port(),
                                       "/chat.v1.ChatService/GetStatus");
  std::string output;
  EXPECT_EQ(BufCurl({"--cacert", a_.ca_cert, "-d", "{}", url}, &output), 0)
      << output;
  EXPECT_THAT(output, HasSubstr("\"status\""));
  // Without the CA, the system's roots do not trust the test CA.
  output.clear();
  EXPECT_NE(BufCurl({"-d", "{}", url}, &output), 0) << output;
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  StartServer({"--tls_client_ca=" + a_.ca_cert});
  EXPECT_THAT(server_->Log(), HasSubstr("client certificates required"));
  EXPECT_EQ(CallGetStatus(target_, TrustingCa(a_)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // b's client certificate is signed by a CA the server does not trust.
  grpc::SslCredentialsOptions foreign;
  foreign.pem_root_certs = ReadTextFile(a_.ca_cert);
  foreign.pem_cert_chain = ReadTextFile(b_.client_cert);
  foreign.pem_private_key = ReadTextFile(b_.client_key);
  EXPECT_EQ(CallGetStatus(target_, grpc::SslCredentials(foreign)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  grpc::Status status =
      CallGetStatus(target_, TrustingCa(a_, /*with_client_cert=*/true));
  EXPECT_TRUE(status.ok()) << status.error_message();

  if (access(CHAT_BUF_BINARY, X_OK) == 0) {
    std::string output;
    EXPECT_EQ(BufCurl({"--cacert", a_.ca_cert, "--cert", a_.client_cert,
                       "--key", a_.client_key, "-d", "{}",
                       absl::StrCat("https://localhost:", server_->port(),
                                    "/chat.v1.ChatService/GetStatus")},
                      &output),
              0)
        << output;
  }
}

// Waits (bounded) for `text` in the server's log: the event itself.
bool LogShows(const ServerProcess& server, const std::string& text) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (server.Log().find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST_F(TlsTest, SighupSwapsCertificatesAndKeepsOpenStreams) {
  // Served from copies, so the test can replace them as an operator would.
  const std::string cert = dir_ + "/live.pem";
  const std::string key = dir_ + "/live.key";
  std::filesystem::copy_file(a_.server_cert, cert);
  std::filesystem::copy_file(a_.server_key, key);
  server_ = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{"--listen=127.0.0.1:0", "--provider=echo",
                               "--store=memory", "--echo_delay=20ms",
                               "--shutdown_grace=2s", "--tls_cert=" + cert,
                               "--tls_key=" + key});
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  target_ = absl::StrCat("localhost:", server_->port());

  // A stream of 200 words at 20 ms each outlives the swap by seconds.
  auto stub = chat::v1::ChatService::NewStub(
      grpc::CreateChannel(target_, TrustingCa(a_)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  std::vector<std::string> words(200, "word");
  chat::v1::ChatStreamRequest request;
  request.set_session_id("rotation");
  request.set_message(absl::StrJoin(words, " "));
  std::unique_ptr<grpc::ClientReader<chat::v1::ChatStreamResponse>> reader =
      stub->ChatStream(&context, request);
  chat::v1::ChatStreamResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_delta());

  // A bad set first: the old certificate stays.
  std::filesystem::copy_file(b_.server_key, key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(LogShows(*server_, "keeping the current TLS certificate"))
      << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("does not match"));
  EXPECT_TRUE(CallGetStatus(target_, TrustingCa(a_)).ok());

  std::filesystem::copy_file(b_.server_cert, cert,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(LogShows(*server_, "re-read the TLS certificate"))
      << server_->Log();

  grpc::Status status = CallGetStatus(target_, TrustingCa(b_));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(CallGetStatus(target_, TrustingCa(a_)).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // The stream opened under the old certificate runs to its end.
  int deltas = 1;
  bool done = false;
  while (reader->Read(&event)) {
    if (event.has_delta()) ++deltas;
    if (event.has_done()) done = true;
  }
  status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(done);
  EXPECT_GE(deltas, 2);
  EXPECT_THAT(server_->Log(), Not(HasSubstr("BEGIN")));

  absl::StatusOr<int> code = server_->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

// curl's answer (status line last) to POST /chat on `gateway`.
std::string PostChat(const ServerProcess& gateway) {
  std::string output;
  absl::StatusOr<int> code = RunCommand(
      {"/usr/bin/curl", "-sS", "-w", "\nHTTP %{http_code}", "-X", "POST",
       absl::StrCat("http://127.0.0.1:", gateway.port(), "/chat"), "-H",
       "Content-Type: application/json", "-d",
       R"({"message":"over tls","session_id":"tls-1"})"},
      &output);
  EXPECT_TRUE(code.ok()) << code.status();
  return output;
}

TEST_F(TlsTest, GatewayReachesTlsServerWithBackendCa) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
  StartServer({"--tls_client_ca=" + a_.ca_cert});
  const std::string backend = absl::StrCat("--backend=", server_->address());
  const std::vector<std::string> base = {"--listen=127.0.0.1:0",
                                         "--request_timeout=5s", backend};
  auto start_gateway = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    auto gateway = std::make_unique<ServerProcess>(CHAT_GATEWAY_BINARY, args);
    EXPECT_TRUE(gateway->Start().ok()) << gateway->Log();
    return gateway;
  };

  // Mutual TLS: the CA and the client certificate; by IP, and by the name in
  // the certificate.
  auto gateway = start_gateway({"--backend_ca=" + a_.ca_cert,
                                "--backend_client_cert=" + a_.client_cert,
                                "--backend_client_key=" + a_.client_key});
  std::string answer = PostChat(*gateway);
  EXPECT_THAT(answer, HasSubstr("over tls"));
  EXPECT_THAT(answer, HasSubstr("HTTP 200"));
  gateway = start_gateway({"--backend_ca=" + a_.ca_cert,
                           "--backend_client_cert=" + a_.client_cert,
                           "--backend_client_key=" + a_.client_key,
                           "--backend_tls_server_name=localhost"});
  EXPECT_THAT(PostChat(*gateway), HasSubstr("HTTP 200"));

  // Without a client certificate, and in plaintext: no answer from
  // chat-server.
  gateway = start_gateway({"--backend_ca=" + a_.ca_cert});
  EXPECT_THAT(PostChat(*gateway), Not(HasSubstr("HTTP 200")));
  gateway = start_gateway({});
  EXPECT_THAT(PostChat(*gateway), Not(HasSubstr("HTTP 200")));
}

TEST_F(TlsTest, GatewayRefusesBadBackendTlsFlags) {
  for (const auto& [flags, message] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--backend_ca=" + dir_ + "/missing.pem"},
            "--backend_ca: cannot read"},
           {{"--backend_ca=" + a_.ca_cert,
             "--backend_client_cert=" + a_.client_cert},
            "--backend_client_cert needs --backend_client_key"},
           {{"--backend_client_cert=" + a_.client_cert,
             "--backend_client_key=" + a_.client_key},
            "need --backend_ca"}}) {
    std::vector<std::string> argv = {CHAT_GATEWAY_BINARY,
                                     "--listen=127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    std::string output;
    absl::StatusOr<int> code = RunCommand(argv, &output, absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 2) << output;
    EXPECT_THAT(output, HasSubstr(message));
  }
}

struct BadTlsCase {
  std::string label;
  // Flags, with {a.cert}, {a.key}, {b.key}, {missing} replaced.
  std::vector<std::string> args;
  std::string message;
};

class BadTlsConfigTest : public ::testing::TestWithParam<BadTlsCase> {};

TEST_P(BadTlsConfigTest, ExitsTwoNamingTheFlag) {
  const std::string dir = MakeTempDir();
  absl::StatusOr<TestPki> a = MakeTestPki(dir, "a");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<TestPki> b = MakeTestPki(dir, "b");
  ASSERT_TRUE(b.ok()) << b.status();
  std::vector<std::string> argv = {CHAT_SERVER_BINARY, "--listen=127.0.0.1:0",
                                   "--store=memory"};
  for (std::string arg : GetParam().args) {
    for (const auto& [from, to] :
         std::vector<std::pair<std::string, std::string>>{
             {"{a.cert}", a->server_cert},
             {"{a.key}", a->server_key},
             {"{b.key}", b->server_key},
             {"{missing}", dir + "/missing.pem"}}) {
      if (size_t at = arg.find(from); at != std::string::npos) {
        arg.replace(at, from.size(), to);
      }
    }
    argv.push_back(arg);
  }
  std::string output;
  absl::StatusOr<int> code = RunCommand(argv, &output, absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output, HasSubstr(GetParam().message));
  EXPECT_THAT(output, Not(HasSubstr("listening on")));
  EXPECT_THAT(output, Not(HasSubstr("PRIVATE KEY")));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadTlsConfigTest,
    ::testing::Values(BadTlsCase{"CertWithoutKey",
                                 {"--tls_cert={a.cert}"},
                                 "--tls_cert needs --tls_key"},
                      BadTlsCase{"ClientCaWithoutCert",
                                 {"--tls_client_ca={a.cert}"},
                                 "--tls_client_ca needs --tls_cert"},
                      BadTlsCase{"UnreadableCert",
                                 {"--tls_cert={missing}", "--tls_key={a.key}"},
                                 "chat-server: --tls_cert: cannot read"},
                      BadTlsCase{"KeyOfAnotherCertificate",
                                 {"--tls_cert={a.cert}", "--tls_key={b.key}"},
                                 "chat-server: --tls_key: the key in"},
                      BadTlsCase{"KeyFileIsACertificate",
                                 {"--tls_cert={a.cert}", "--tls_key={a.cert}"},
                                 "--tls_key:"},
                      BadTlsCase{"UnreadableClientCa",
                                 {"--tls_cert={a.cert}", "--tls_key={a.key}",
                                  "--tls_client_ca={missing}"},
                                 "--tls_client_ca: cannot read"}),
    [](const ::testing::TestParamInfo<BadTlsCase>& info) {
      return info.param.label;
    });

}  // namespace
}  // namespace chat
