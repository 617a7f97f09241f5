// LoadTlsMaterial on certificates made by openssl at test time: what it
// accepts, and that each refusal names the flag and the path but never the
// key. Serving TLS is tested through the real binary in
// tests/integration/tls_test.cc.

#include "server/service/tls_server_credentials.h"

#include <filesystem>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_certificates.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::MakeTempDir;
using ::chat::testing::MakeTestPki;
using ::chat::testing::StatusIs;
using ::chat::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;

class LoadTlsMaterialTest : public ::testing::Test {
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
  std::string dir_;
  TestPki a_;
  TestPki b_;
};

TEST_F(LoadTlsMaterialTest, AcceptsAMatchingPairAndClientCa) {
  absl::StatusOr<TlsMaterial> m =
      LoadTlsMaterial({a_.server_cert, a_.server_key, a_.ca_cert});
  ASSERT_THAT(m.status(), IsOk());
  EXPECT_THAT(m->cert_chain, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(m->private_key, HasSubstr("PRIVATE KEY"));
  EXPECT_THAT(m->client_ca, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(LoadTlsMaterial({a_.server_cert, a_.server_key, ""}).status(),
              IsOk());
}

TEST_F(LoadTlsMaterialTest, RefusesNamingTheFlag) {
  struct Case {
    TlsFiles files;
    std::string message;
  };
  for (const Case& c : {
           Case{{dir_ + "/none.pem", a_.server_key, ""},
                "--tls_cert: cannot read"},
           Case{{a_.server_cert, dir_ + "/none.key", ""},
                "--tls_key: cannot read"},
           Case{{a_.server_key, a_.server_key, ""},
                "--tls_cert: '" + a_.server_key + "' holds no PEM certificate"},
           Case{{a_.server_cert, a_.server_cert, ""},
                "--tls_key: '" + a_.server_cert + "' holds no unencrypted"},
           Case{{a_.server_cert, b_.server_key, ""}, "does not match"},
           Case{{a_.server_cert, a_.server_key, a_.client_key},
                "--tls_client_ca: '" + a_.client_key +
                    "' holds no PEM certificate"},
       }) {
    absl::Status status = LoadTlsMaterial(c.files).status();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(status.message(), HasSubstr(c.message));
    EXPECT_THAT(status.message(), Not(HasSubstr("BEGIN")));
  }
}

TEST_F(LoadTlsMaterialTest, ReloadRevalidatesTheFiles) {
  const std::string cert = dir_ + "/live.pem";
  const std::string key = dir_ + "/live.key";
  std::filesystem::copy_file(a_.server_cert, cert);
  std::filesystem::copy_file(a_.server_key, key);
  absl::StatusOr<std::unique_ptr<ReloadableTlsCredentials>> creds =
      ReloadableTlsCredentials::Create({cert, key, ""});
  ASSERT_THAT(creds.status(), IsOk());
  EXPECT_NE((*creds)->credentials(), nullptr);

  // Half-way through a rotation: b's key, still a's certificate.
  std::filesystem::copy_file(b_.server_key, key,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_THAT((*creds)->Reload(), StatusIs(absl::StatusCode::kInvalidArgument));
  std::filesystem::copy_file(b_.server_cert, cert,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_THAT((*creds)->Reload(), IsOk());
}

}  // namespace
}  // namespace chat
