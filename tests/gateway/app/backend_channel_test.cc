// --backend values and the gRPC targets they become (one channel, or one
// per entry when names are among several); the backend TLS files
// (read at start and on each SIGHUP), checked with certificates openssl makes
// at test time: a good set loads, and every bad set is refused naming the
// flag and the file, never the key's contents.

#include "gateway/app/backend_channel.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_certificates.h"

namespace chat::gateway {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::MakeTempDir;
using ::chat::testing::MakeTestPki;
using ::chat::testing::ReadTextFile;
using ::chat::testing::StatusIs;
using ::chat::testing::TestPki;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using Targets = std::vector<std::string>;

TEST(BackendTargetsTest, OneAddressIsOneTarget) {
  EXPECT_EQ(*BackendTargets("127.0.0.1:50051"),
            Targets{"ipv4:127.0.0.1:50051"});
  EXPECT_EQ(*BackendTargets("localhost:50051"),
            Targets{"dns:///localhost:50051"});
  EXPECT_EQ(*BackendTargets("[::1]:50051"), Targets{"ipv6:[::1]:50051"});
  EXPECT_EQ(*BackendTargets("dns:///chat:50051"), Targets{"dns:///chat:50051"});
  // A name looked up on a DNS server of one's choice stays as given.
  EXPECT_EQ(*BackendTargets("dns://127.0.0.1:5353/chat:50051"),
            Targets{"dns://127.0.0.1:5353/chat:50051"});
}

TEST(BackendTargetsTest, SeveralIpAddressesAreOneTarget) {
  EXPECT_EQ(*BackendTargets("127.0.0.1:1, 127.0.0.1:2"),
            Targets{"ipv4:127.0.0.1:1,127.0.0.1:2"});
  EXPECT_EQ(*BackendTargets("[::1]:1,[::1]:2"),
            Targets{"ipv6:[::1]:1,[::1]:2"});
}

TEST(BackendTargetsTest, SeveralNamesAreATargetEach) {
  EXPECT_EQ(*BackendTargets("replica-a:50051,replica-b:50051"),
            (Targets{"dns:///replica-a:50051", "dns:///replica-b:50051"}));
  // Names and IPs mixed, IPv4 and IPv6 mixed: a channel each too.
  EXPECT_EQ(*BackendTargets(" localhost:1 , 127.0.0.1:2,"),
            (Targets{"dns:///localhost:1", "ipv4:127.0.0.1:2"}));
  EXPECT_EQ(*BackendTargets("127.0.0.1:1,[::1]:2"),
            (Targets{"ipv4:127.0.0.1:1", "ipv6:[::1]:2"}));
}

TEST(BackendTargetsTest, NoAddressIsRefused) {
  EXPECT_THAT(BackendTargets("").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BackendTargets(" , ").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MakeBackendChannelsTest, AChannelPerTarget) {
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      MakeBackendChannels("localhost:1,127.0.0.1:2");
  ASSERT_THAT(channels.status(), IsOk());
  EXPECT_EQ(channels->size(), 2u);
  channels = MakeBackendChannels("127.0.0.1:1,127.0.0.1:2");
  ASSERT_THAT(channels.status(), IsOk());
  EXPECT_EQ(channels->size(), 1u);
  // MakeBackendChannel is for one target only.
  EXPECT_THAT(MakeBackendChannel("localhost:1,127.0.0.1:2").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BackendServiceConfigTest, RoundRobinWithHealthChecks) {
  auto config = nlohmann::json::parse(
      BackendServiceConfig("chat.v1.ChatService"), nullptr, false);
  ASSERT_FALSE(config.is_discarded());
  EXPECT_EQ(config["loadBalancingConfig"][0].count("round_robin"), 1u);
  EXPECT_EQ(config["healthCheckConfig"]["serviceName"], "chat.v1.ChatService");
}

class LoadBackendTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = MakeTempDir();
    absl::StatusOr<TestPki> a = MakeTestPki(dir, "a");
    ASSERT_TRUE(a.ok()) << a.status();
    a_ = *a;
    absl::StatusOr<TestPki> b = MakeTestPki(dir, "b");
    ASSERT_TRUE(b.ok()) << b.status();
    b_ = *b;
  }

  BackendTlsFiles Files(const std::string& ca, const std::string& cert,
                        const std::string& key) {
    BackendTlsFiles files;
    files.ca_path = ca;
    files.client_cert_path = cert;
    files.client_key_path = key;
    return files;
  }

  // The base64 body of `pem_path`'s first line after BEGIN: what must never
  // appear in a message.
  static std::string SecretLine(const std::string& pem_path) {
    const std::string pem = ReadTextFile(pem_path);
    const size_t start = pem.find('\n') + 1;
    return pem.substr(start, pem.find('\n', start) - start);
  }

  TestPki a_;
  TestPki b_;
};

TEST_F(LoadBackendTlsTest, GoodSetLoads) {
  absl::StatusOr<BackendTlsOptions> tls =
      LoadBackendTls(Files(a_.ca_cert, a_.client_cert, a_.client_key));
  ASSERT_THAT(tls.status(), IsOk());
  EXPECT_EQ(tls->root_certs, ReadTextFile(a_.ca_cert));
  EXPECT_EQ(tls->client_cert_chain, ReadTextFile(a_.client_cert));
  EXPECT_EQ(tls->client_key, ReadTextFile(a_.client_key));
  EXPECT_THAT(DescribeBackendTls(*tls),
              AllOf(HasSubstr("subject=/CN=a client"), HasSubstr("serial=")));
  EXPECT_THAT(LoadBackendTls(Files(a_.ca_cert, "", "")).status(), IsOk());
  EXPECT_EQ(DescribeBackendTls(BackendTlsOptions{}), "plaintext");
}

TEST_F(LoadBackendTlsTest, KeyOfAnotherCertificateIsRefused) {
  absl::Status status =
      LoadBackendTls(Files(a_.ca_cert, a_.client_cert, b_.client_key)).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--backend_client_key: the key in '" +
                              b_.client_key + "' does not match"),
                    Not(HasSubstr(SecretLine(b_.client_key)))));
}

TEST_F(LoadBackendTlsTest, FilesOfTheWrongKindAreRefused) {
  // A certificate where the key belongs.
  absl::Status status =
      LoadBackendTls(Files(a_.ca_cert, a_.client_cert, a_.client_cert))
          .status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(status.message(),
              HasSubstr("--backend_client_key: '" + a_.client_cert +
                        "' holds no unencrypted PEM private key"));
  // A key where a certificate belongs, and the key is not echoed.
  status =
      LoadBackendTls(Files(a_.ca_cert, a_.client_key, a_.client_key)).status();
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--backend_client_cert: '" + a_.client_key +
                              "' holds no PEM certificate"),
                    Not(HasSubstr(SecretLine(a_.client_key)))));
  status = LoadBackendTls(Files(a_.client_key, "", "")).status();
  EXPECT_THAT(status.message(), HasSubstr("--backend_ca: '" + a_.client_key +
                                          "' holds no PEM certificate"));
}

}  // namespace
}  // namespace chat::gateway
