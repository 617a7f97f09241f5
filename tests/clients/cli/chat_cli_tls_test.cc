// chat-cli over TLS, through the real binary against a real chat-server.
//
// Strategy: each test makes its CAs and certificates with openssl
// (tests/testing/test_certificates.h), starts chat-server with --tls_cert and
// --tls_key (and --tls_client_ca for mutual TLS), and runs chat-cli with its
// TLS flags as a person would. What must fail is checked as closely as what
// must work: another CA, no --tls, no client certificate or another CA's, the
// wrong name; each exits with the code docs/CLI.md gives (8: UNAVAILABLE, as
// any connection that could not be made) and says which flag to look at. No
// run may show the client key's path or contents.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/clients/cli/cli_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_certificates.h"

namespace chat {
namespace {

using ::chat::testing::CliResult;
using ::chat::testing::IsOk;
using ::chat::testing::MakeTempDir;
using ::chat::testing::MakeTestPki;
using ::chat::testing::ReadTextFile;
using ::chat::testing::ServerProcess;
using ::chat::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kReply[] =
    "You said: \"over tls\". This is the start of our conversation.\n";

class ChatCliTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    for (auto [name, pki] : {std::pair{"a", &a_}, std::pair{"b", &b_}}) {
      absl::StatusOr<TestPki> made = MakeTestPki(dir_, name);
      ASSERT_THAT(made.status(), IsOk());
      *pki = *made;
    }
  }

  // chat-server serving `pki`'s server certificate, plus `extra` flags.
  void StartServer(const TestPki& pki, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--provider=echo",
                                     "--store=memory",
                                     "--echo_delay=0s",
                                     "--listen=127.0.0.1:0",
                                     "--shutdown_grace=1s",
                                     "--tls_cert=" + pki.server_cert,
                                     "--tls_key=" + pki.server_key};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args);
    ASSERT_THAT(server_->Start(), IsOk());
  }

  // chat-cli with `args` against `host`:PORT of the test's server. Checks
  // that nothing it printed shows a client key (path or contents).
  CliResult Cli(const std::string& host, std::vector<std::string> args) {
    args.insert(args.begin(),
                absl::StrCat("--server=", host, ":", server_->port()));
    absl::StatusOr<CliResult> result =
        chat::testing::RunCli(CHAT_CLI_BINARY, args);
    EXPECT_THAT(result.status(), IsOk());
    if (!result.ok()) return CliResult();
    const std::string printed = result->out + result->err;
    for (const TestPki* pki : {&a_, &b_}) {
      EXPECT_THAT(printed, Not(HasSubstr(pki->client_key)));
      // A line from the middle of the key's base64.
      const std::string key = ReadTextFile(pki->client_key);
      const size_t line = key.find('\n') + 1;
      EXPECT_THAT(printed, Not(HasSubstr(key.substr(line, 40))));
    }
    EXPECT_THAT(printed, Not(HasSubstr("PRIVATE KEY")));
    return *result;
  }

  std::vector<std::string> ClientCert(const TestPki& pki) {
    return {"--client_cert=" + pki.client_cert,
            "--client_key=" + pki.client_key};
  }

  std::string dir_;
  TestPki a_;
  TestPki b_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ChatCliTlsTest, OneMessageAndASubcommandWithCaFile) {
  StartServer(a_);
  CliResult chat = Cli("localhost", {"--tls", "--ca_file=" + a_.ca_cert, "-s",
                                     "t1", "over tls"});
  EXPECT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_EQ(chat.out, kReply);
  EXPECT_EQ(chat.err, "");
  // By IP too: the certificate names 127.0.0.1.
  CliResult history =
      Cli("127.0.0.1", {"--tls", "--ca_file", a_.ca_cert, "history", "t1"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_THAT(history.out, HasSubstr("user: over tls"));
}

TEST_F(ChatCliTlsTest, AnotherCaExits8SayingTheCertificateIsNotTrusted) {
  StartServer(a_);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--tls", "--ca_file=" + b_.ca_cert, "-s", "t1", "over tls"},
           {"--tls", "--ca_file=" + b_.ca_cert, "status"},
           // The system's CAs do not know the test's CA either.
           {"--tls", "status"}}) {
    CliResult result = Cli("localhost", args);
    EXPECT_EQ(result.exit_code, 8) << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_THAT(result.err, StartsWith("chat-cli: UNAVAILABLE: "));
    EXPECT_THAT(result.err, HasSubstr("certificate verify failed"));
    EXPECT_THAT(result.err, HasSubstr("--ca_file names the CA to trust"));
    // One line: gRPC's own log lines are not shown.
    EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << result.err;
  }
}

TEST_F(ChatCliTlsTest, PlaintextAndTlsMismatchExit8) {
  StartServer(a_);
  CliResult plain = Cli("localhost", {"status"});
  EXPECT_EQ(plain.exit_code, 8) << plain.err;
  EXPECT_THAT(plain.err, HasSubstr("it may want TLS (--tls)"));

  server_ = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{"--provider=echo", "--store=memory",
                               "--listen=127.0.0.1:0", "--shutdown_grace=1s"});
  ASSERT_THAT(server_->Start(), IsOk());
  CliResult tls =
      Cli("localhost", {"--tls", "--ca_file=" + a_.ca_cert, "status"});
  EXPECT_EQ(tls.exit_code, 8) << tls.err;
  EXPECT_THAT(tls.err, HasSubstr("does not speak TLS on that port"));
}

TEST_F(ChatCliTlsTest, MutualTlsWithClientCertAndKey) {
  StartServer(a_, {"--tls_client_ca=" + a_.ca_cert});
  std::vector<std::string> args = {"--tls", "--ca_file=" + a_.ca_cert};
  std::vector<std::string> with_a = args;
  for (const std::string& flag : ClientCert(a_)) with_a.push_back(flag);
  with_a.insert(with_a.end(), {"-s", "m1", "over tls"});
  CliResult served = Cli("localhost", with_a);
  EXPECT_EQ(served.exit_code, 0) << served.err;
  EXPECT_EQ(served.out, kReply);

  // No client certificate, or one from a CA the server does not trust: the
  // server closes the connection.
  std::vector<std::string> without = args;
  without.push_back("status");
  std::vector<std::string> with_b = args;
  for (const std::string& flag : ClientCert(b_)) with_b.push_back(flag);
  with_b.push_back("status");
  for (const std::vector<std::string>& refused : {without, with_b}) {
    CliResult result = Cli("localhost", refused);
    EXPECT_EQ(result.exit_code, 8) << result.err;
    EXPECT_THAT(result.err, StartsWith("chat-cli: UNAVAILABLE: "));
    EXPECT_THAT(result.err, HasSubstr("--client_cert, --client_key"));
  }
}

TEST_F(ChatCliTlsTest, BadClientKeyExits2BeforeConnecting) {
  StartServer(a_, {"--tls_client_ca=" + a_.ca_cert});
  // b's key with a's certificate; a certificate given as the key.
  for (const std::string& key : {b_.client_key, a_.client_cert}) {
    CliResult result = Cli("localhost", {"--tls", "--ca_file=" + a_.ca_cert,
                                         "--client_cert=" + a_.client_cert,
                                         "--client_key=" + key, "status"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_THAT(result.err, StartsWith("chat-cli: --client_key "));
  }
}

TEST_F(ChatCliTlsTest, ServerNameChecksAnotherNameThanTheHost) {
  // A certificate for chat.internal only, served on 127.0.0.1.
  absl::StatusOr<TestPki> internal =
      MakeTestPki(dir_, "internal", "DNS:chat.internal");
  ASSERT_THAT(internal.status(), IsOk());
  StartServer(*internal);
  const std::vector<std::string> base = {"--tls",
                                         "--ca_file=" + internal->ca_cert};

  std::vector<std::string> named = base;
  named.insert(named.end(),
               {"--server_name=chat.internal", "-s", "n1", "over tls"});
  CliResult served = Cli("127.0.0.1", named);
  EXPECT_EQ(served.exit_code, 0) << served.err;
  EXPECT_EQ(served.out, kReply);

  for (const std::string& name :
       {std::string(), std::string("other.internal")}) {
    std::vector<std::string> args = base;
    if (!name.empty()) args.push_back("--server_name=" + name);
    args.push_back("status");
    CliResult result = Cli("127.0.0.1", args);
    EXPECT_EQ(result.exit_code, 8) << result.err;
    EXPECT_THAT(result.err, HasSubstr("is not in peer certificate"));
    EXPECT_THAT(result.err, HasSubstr("--server_name gives the name"));
  }
}

}  // namespace
}  // namespace chat
