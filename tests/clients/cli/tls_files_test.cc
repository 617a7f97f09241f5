// LoadTlsFiles against files made by openssl at test time: what it accepts,
// and a table of what it refuses, each with the flag named and never the key
// file's path or contents.

#include "clients/cli/tls_files.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_certificates.h"

namespace chat::cli {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::MakeTempDir;
using ::chat::testing::MakeTestPki;
using ::chat::testing::ReadTextFile;
using ::chat::testing::RunCommand;
using ::chat::testing::StatusIs;
using ::chat::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    absl::StatusOr<TestPki> a = MakeTestPki(dir_, "a");
    ASSERT_THAT(a.status(), IsOk());
    a_ = *a;
    absl::StatusOr<TestPki> b = MakeTestPki(dir_, "b");
    ASSERT_THAT(b.status(), IsOk());
    b_ = *b;
  }

  CliOptions Options(std::string ca, std::string cert, std::string key) {
    CliOptions options;
    options.tls = true;
    options.ca_file = std::move(ca);
    options.client_cert = std::move(cert);
    options.client_key = std::move(key);
    return options;
  }

  std::string dir_;
  TestPki a_;
  TestPki b_;
};

TEST_F(TlsFilesTest, ReadsTheFilesItIsGiven) {
  absl::StatusOr<TlsFiles> none = LoadTlsFiles(Options("", "", ""));
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_EQ(none->root_certs, "");
  EXPECT_EQ(none->cert_chain, "");

  absl::StatusOr<TlsFiles> ca = LoadTlsFiles(Options(a_.ca_cert, "", ""));
  ASSERT_THAT(ca.status(), IsOk());
  EXPECT_EQ(ca->root_certs, ReadTextFile(a_.ca_cert));
  EXPECT_EQ(ca->private_key, "");

  absl::StatusOr<TlsFiles> mutual =
      LoadTlsFiles(Options(a_.ca_cert, a_.client_cert, a_.client_key));
  ASSERT_THAT(mutual.status(), IsOk());
  EXPECT_EQ(mutual->cert_chain, ReadTextFile(a_.client_cert));
  EXPECT_EQ(mutual->private_key, ReadTextFile(a_.client_key));
}

TEST_F(TlsFilesTest, RefusesWhatGrpcWouldOnlyFailAtTheHandshake) {
  // An encrypted copy of a's key: OpenSSL must fail, not ask for a
  // passphrase.
  const std::string encrypted = dir_ + "/encrypted.key";
  std::string output;
  absl::StatusOr<int> code = RunCommand(
      {"/usr/bin/openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout",
       "pass:secret", "-in", a_.client_key, "-out", encrypted},
      &output);
  ASSERT_THAT(code.status(), IsOk());
  ASSERT_EQ(*code, 0) << output;
  const std::string missing = dir_ + "/missing.pem";

  struct Case {
    CliOptions options;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {Options(missing, "", ""), "--ca_file cannot read '" + missing},
           {Options(a_.client_key, "", ""),
            "--ca_file '" + a_.client_key + "' holds no PEM certificate"},
           {Options("", missing, a_.client_key),
            "--client_cert cannot read '" + missing},
           {Options("", a_.client_key, a_.client_key),
            "--client_cert '" + a_.client_key + "' holds no PEM certificate"},
           {Options("", a_.client_cert, missing),
            "--client_key cannot read its file"},
           {Options("", a_.client_cert, a_.client_cert),
            "--client_key holds no unencrypted PEM private key"},
           {Options("", a_.client_cert, encrypted),
            "--client_key holds no unencrypted PEM private key"},
           {Options(a_.ca_cert, a_.client_cert, b_.client_key),
            "--client_key is not the key of --client_cert's certificate"},
       }) {
    absl::StatusOr<TlsFiles> files = LoadTlsFiles(c.options);
    EXPECT_THAT(files.status(), StatusIs(absl::StatusCode::kInvalidArgument))
        << c.message;
    const std::string message(files.status().message());
    EXPECT_THAT(message, HasSubstr(c.message));
    if (!c.options.client_key.empty() &&
        c.options.client_key != a_.client_key) {
      EXPECT_THAT(message, Not(HasSubstr(c.options.client_key)));
    }
    EXPECT_THAT(message, Not(HasSubstr("PRIVATE KEY-----")));
  }
}

}  // namespace
}  // namespace chat::cli
