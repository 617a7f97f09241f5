// chat-gateway's configuration. Strategy: set flags as the command line or
// environment would (absl::SetFlag, restored by absl::FlagSaver;
// CHAT_GATEWAY_ variables through the real loading path), then check that
// GatewayConfigFromFlags accepts the defaults and refuses each bad value with
// a message naming the flag and its range.

#include "gateway/app/config.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::gateway {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

class GatewayConfigTest : public ::testing::Test {
 protected:
  absl::FlagSaver saver_;
};

TEST_F(GatewayConfigTest, DefaultsAreAccepted) {
  absl::StatusOr<GatewayConfig> config = GatewayConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->listen, "127.0.0.1:8000");
  EXPECT_EQ(config->listen_address.host, "127.0.0.1");
  EXPECT_EQ(config->listen_address.port, 8000);
  EXPECT_EQ(config->backend, "127.0.0.1:50051");
  EXPECT_EQ(config->http.io_threads, 2);
  EXPECT_EQ(config->http.max_body_bytes, size_t{1} << 20);
  EXPECT_EQ(config->http.read_timeout, absl::Seconds(30));
  EXPECT_EQ(config->http.header_timeout, absl::Seconds(10));
  EXPECT_EQ(config->http.idle_timeout, absl::Seconds(60));
  EXPECT_EQ(config->http.max_connections, 10000);
  EXPECT_EQ(config->http.max_connections_per_client, 1000);
  EXPECT_FALSE(config->http.access_log);
  EXPECT_EQ(config->gateway.request_timeout, absl::Minutes(5));
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(10));
  EXPECT_FALSE(config->allow_anonymous);
  EXPECT_EQ(config->backend_wait, absl::Seconds(30));
}

TEST_F(GatewayConfigTest, ValuesAreCarriedOver) {
  absl::SetFlag(&FLAGS_listen, "[::1]:0");
  absl::SetFlag(&FLAGS_backend, "127.0.0.1:1,127.0.0.1:2");
  absl::SetFlag(&FLAGS_io_threads, 8);
  absl::SetFlag(&FLAGS_access_log, true);
  absl::SetFlag(&FLAGS_cors_origins, "*");
  absl::SetFlag(&FLAGS_web_root, "clients");
  absl::SetFlag(&FLAGS_header_timeout, absl::Seconds(2));
  absl::SetFlag(&FLAGS_idle_timeout, absl::Seconds(5));
  absl::SetFlag(&FLAGS_max_connections, 50);
  absl::SetFlag(&FLAGS_max_connections_per_client, 7);
  absl::SetFlag(&FLAGS_allow_anonymous, true);
  absl::SetFlag(&FLAGS_backend_wait, absl::Seconds(5));
  absl::StatusOr<GatewayConfig> config = GatewayConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->listen_address.host, "::1");
  EXPECT_EQ(config->listen_address.port, 0);
  EXPECT_EQ(config->backend, "127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(config->http.io_threads, 8);
  EXPECT_TRUE(config->http.access_log);
  EXPECT_EQ(config->gateway.cors_origins, "*");
  EXPECT_EQ(config->gateway.web_root, "clients");
  EXPECT_EQ(config->http.header_timeout, absl::Seconds(2));
  EXPECT_EQ(config->http.idle_timeout, absl::Seconds(5));
  EXPECT_EQ(config->http.max_connections, 50);
  EXPECT_EQ(config->http.max_connections_per_client, 7);
  EXPECT_TRUE(config->allow_anonymous);
  EXPECT_EQ(config->backend_wait, absl::Seconds(5));
}

struct BadValueCase {
  std::string label;
  void (*set)();
  std::string message;
};

class GatewayConfigBadValueTest
    : public ::testing::TestWithParam<BadValueCase> {
 protected:
  absl::FlagSaver saver_;
};

TEST_P(GatewayConfigBadValueTest, IsRefusedNamingTheFlag) {
  GetParam().set();
  EXPECT_THAT(GatewayConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Table, GatewayConfigBadValueTest,
    ::testing::Values(
        BadValueCase{"ListenPortTooBig",
                     [] { absl::SetFlag(&FLAGS_listen, "127.0.0.1:99999"); },
                     "--listen must be HOST:PORT with a port between 0 and "
                     "65535; got '127.0.0.1:99999'"},
        BadValueCase{"IoThreadsZero",
                     [] { absl::SetFlag(&FLAGS_io_threads, 0); },
                     "--io_threads must be between 1 and 256; got 0"},
        BadValueCase{"MaxBodyBytesZero",
                     [] { absl::SetFlag(&FLAGS_max_body_bytes, 0); },
                     "--max_body_bytes must be between 1 and 1073741824; "
                     "got 0"},
        BadValueCase{"LogFormatUnknown",
                     [] { absl::SetFlag(&FLAGS_log_format, "xml"); },
                     "--log_format must be json or text"},
        BadValueCase{"LogLevelUnknown",
                     [] { absl::SetFlag(&FLAGS_log_level, "loud"); },
                     "--log_level must be debug, info, warning or error"},
        BadValueCase{"BackendEmpty", [] { absl::SetFlag(&FLAGS_backend, ""); },
                     "--backend must be HOST:PORT or several comma-separated"},
        BadValueCase{
            "RequestTimeoutZero",
            [] { absl::SetFlag(&FLAGS_request_timeout, absl::ZeroDuration()); },
            "--request_timeout must be between 1ms and 24h; got 0"},
        BadValueCase{
            "ReadTimeoutNegative",
            [] { absl::SetFlag(&FLAGS_read_timeout, absl::Seconds(-1)); },
            "--read_timeout must be between 1ms and 1h; got -1s"},
        BadValueCase{
            "HeaderTimeoutZero",
            [] { absl::SetFlag(&FLAGS_header_timeout, absl::ZeroDuration()); },
            "--header_timeout must be between 1ms and 1h; got 0"},
        BadValueCase{
            "IdleTimeoutTooLong",
            [] { absl::SetFlag(&FLAGS_idle_timeout, absl::Hours(25)); },
            "--idle_timeout must be between 1ms and 24h; got 25h"},
        BadValueCase{"MaxConnectionsZero",
                     [] { absl::SetFlag(&FLAGS_max_connections, 0); },
                     "--max_connections must be between 1 and 1000000; got 0"},
        BadValueCase{
            "MaxConnectionsPerClientNegative",
            [] { absl::SetFlag(&FLAGS_max_connections_per_client, -1); },
            "--max_connections_per_client must be between 1 and 1000000; "
            "got -1"},
        BadValueCase{"TlsCertWithoutKey",
                     [] { absl::SetFlag(&FLAGS_tls_cert, "/nonexistent.pem"); },
                     "--tls_key must be set with --tls_cert"},
        BadValueCase{"TlsKeyWithoutCert",
                     [] { absl::SetFlag(&FLAGS_tls_key, "/nonexistent.pem"); },
                     "--tls_cert must be set with --tls_key"},
        BadValueCase{"TlsCertUnreadable",
                     [] {
                       absl::SetFlag(&FLAGS_tls_cert, "/nonexistent/c.pem");
                       absl::SetFlag(&FLAGS_tls_key, "/nonexistent/k.pem");
                     },
                     "--tls_cert cannot read '/nonexistent/c.pem'"},
        BadValueCase{
            "ShutdownGraceTooLong",
            [] { absl::SetFlag(&FLAGS_shutdown_grace, absl::Hours(2)); },
            "--shutdown_grace must be between 0 and 1h; got 2h"},
        BadValueCase{
            "BackendWaitZero",
            [] { absl::SetFlag(&FLAGS_backend_wait, absl::ZeroDuration()); },
            "--backend_wait must be between 1ms and 1h; got 0"}),
    [](const ::testing::TestParamInfo<BadValueCase>& info) {
      return info.param.label;
    });

class GatewayConfigEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override { Unset(); }
  void TearDown() override { Unset(); }
  static void Unset() {
    unsetenv("CHAT_GATEWAY_IO_THREADS");
    unsetenv("CHAT_GATEWAY_READ_TIMEOUT");
    unsetenv("CHAT_IO_THREADS");
    unsetenv("CHAT_GATEWAY_ALLOW_ANONYMOUS");
    unsetenv("CHAT_GATEWAY_BACKEND_WAIT");
  }
  absl::StatusOr<GatewayConfig> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "chat-gateway");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    return ParseGatewayConfig(static_cast<int>(args.size()), argv.data());
  }
  absl::FlagSaver saver_;
};

TEST_F(GatewayConfigEnvironmentTest, ZeroIoThreadsFromEnvironment) {
  setenv("CHAT_GATEWAY_IO_THREADS", "0", 1);
  EXPECT_THAT(Parse({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                  "--io_threads must be between 1 and 256; "
                                  "got 0 (from CHAT_GATEWAY_IO_THREADS)"));
}

TEST_F(GatewayConfigEnvironmentTest, AuthFlagsFromEnvironment) {
  setenv("CHAT_GATEWAY_ALLOW_ANONYMOUS", "true", 1);
  setenv("CHAT_GATEWAY_BACKEND_WAIT", "2s", 1);
  absl::StatusOr<GatewayConfig> config = Parse({});
  ASSERT_THAT(config, IsOk());
  EXPECT_TRUE(config->allow_anonymous);
  EXPECT_EQ(config->backend_wait, absl::Seconds(2));
  setenv("CHAT_GATEWAY_BACKEND_WAIT", "2h", 1);
  EXPECT_THAT(Parse({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                  "--backend_wait must be between 1ms and 1h; "
                                  "got 2h (from CHAT_GATEWAY_BACKEND_WAIT)"));
}

TEST_F(GatewayConfigEnvironmentTest, ServerVariablesAreNotTheGateways) {
  setenv("CHAT_IO_THREADS", "0", 1);
  EXPECT_THAT(Parse({}), IsOk());
}

TEST_F(GatewayConfigEnvironmentTest, UnparsableEnvironmentValue) {
  setenv("CHAT_GATEWAY_READ_TIMEOUT", "30", 1);  // No unit.
  EXPECT_THAT(Parse({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("--read_timeout cannot be set from "
                                            "CHAT_GATEWAY_READ_TIMEOUT")));
}

TEST_F(GatewayConfigEnvironmentTest, BadCommandLineValue) {
  EXPECT_THAT(Parse({"--io_threads=0"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--io_threads must be between 1 and 256; got 0"));
}

// A flag left out of the list would silently ignore its environment
// variable: every flag this binary defines must be in it.
TEST(GatewayFlagNamesTest, ListsEveryFlagOfTheBinary) {
  const std::vector<std::string>& names = GatewayFlagNames();
  int defined = 0;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "gateway/app/")) continue;
    ++defined;
    EXPECT_THAT(names, ::testing::Contains(std::string(name)))
        << "--" << name << " has no environment variable";
  }
  EXPECT_EQ(defined, static_cast<int>(names.size()));
}

}  // namespace
}  // namespace chat::gateway
