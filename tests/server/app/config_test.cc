// chat-server's configuration. Strategy: set flags as the command line or
// environment would (absl::SetFlag, restored by absl::FlagSaver; CHAT_
// variables through the real loading path), then check that
// ServerConfigFromFlags accepts the defaults and refuses each bad value with
// a message naming the flag and its range, never clamping it.

#include "server/app/config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/memory_store.h"
#include "server/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class ServerConfigTest : public ::testing::Test {
 protected:
  absl::FlagSaver saver_;
};

TEST_F(ServerConfigTest, DefaultsAreAccepted) {
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->listen, "127.0.0.1:50051");
  EXPECT_EQ(config->store_url, "sqlite:./data/chat.db");
  EXPECT_EQ(config->store_threads, 0);
  EXPECT_EQ(config->store_options.max_connections, 8);
  EXPECT_EQ(config->provider.name, "auto");
  EXPECT_EQ(config->provider.http.max_retries, 2);
  EXPECT_EQ(config->engine.limits.max_message_bytes, 64u * 1024);
  EXPECT_EQ(config->engine.limits.max_tokens_ceiling, 65536);
  EXPECT_EQ(config->engine.max_context_tokens, 100000);
  EXPECT_EQ(config->session_ttl, absl::ZeroDuration());
  EXPECT_EQ(config->engine.idempotency.ttl, absl::Hours(24));
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(10));
}

TEST_F(ServerConfigTest, ValuesAreCarriedOver) {
  absl::SetFlag(&FLAGS_listen, "[::1]:0");
  absl::SetFlag(&FLAGS_store, "memory");
  absl::SetFlag(&FLAGS_store_threads, 256);
  absl::SetFlag(&FLAGS_provider, "echo");
  absl::SetFlag(&FLAGS_provider_retries, 0);
  absl::SetFlag(&FLAGS_session_ttl, absl::Hours(720));
  absl::SetFlag(&FLAGS_idempotency_ttl, absl::Minutes(5));
  absl::SetFlag(&FLAGS_allowed_models, std::vector<std::string>{"a", "b"});
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->listen, "[::1]:0");
  EXPECT_EQ(config->store_url, "memory");
  EXPECT_EQ(config->store_threads, 256);
  EXPECT_EQ(config->provider.name, "echo");
  EXPECT_EQ(config->provider.http.max_retries, 0);
  EXPECT_EQ(config->session_ttl, absl::Hours(720));
  EXPECT_EQ(config->engine.idempotency.ttl, absl::Minutes(5));
  EXPECT_THAT(config->engine.limits.allowed_models,
              ::testing::ElementsAre("a", "b"));
}

// One bad value per row: the flag, and what its error must say.
struct BadValueCase {
  std::string label;
  void (*set)();
  std::string message;
};

class ServerConfigBadValueTest : public ::testing::TestWithParam<BadValueCase> {
 protected:
  absl::FlagSaver saver_;
};

TEST_P(ServerConfigBadValueTest, IsRefusedNamingTheFlag) {
  GetParam().set();
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ServerConfigBadValueTest,
    ::testing::Values(
        BadValueCase{"ListenPortTooBig",
                     [] { absl::SetFlag(&FLAGS_listen, "127.0.0.1:99999"); },
                     "--listen must be HOST:PORT with a port between 0 and "
                     "65535; got '127.0.0.1:99999'"},
        BadValueCase{"ListenNoPort",
                     [] { absl::SetFlag(&FLAGS_listen, "localhost"); },
                     "--listen must be HOST:PORT"},
        BadValueCase{"StoreThreadsNegative",
                     [] { absl::SetFlag(&FLAGS_store_threads, -1); },
                     "--store_threads must be between 0 and 256; got -1"},
        BadValueCase{"StoreConnectionsZero",
                     [] { absl::SetFlag(&FLAGS_store_connections, 0); },
                     "--store_connections must be between 1 and 1000; got 0"},
        BadValueCase{"LogFormatUnknown",
                     [] { absl::SetFlag(&FLAGS_log_format, "xml"); },
                     "--log_format must be json or text"},
        BadValueCase{"LogLevelUnknown",
                     [] { absl::SetFlag(&FLAGS_log_level, "loud"); },
                     "--log_level must be debug, info, warning or error"},
        BadValueCase{"TitleModelControlCharacter",
                     [] { absl::SetFlag(&FLAGS_title_model, "gpt\n4"); },
                     "--title_model must be a model name"},
        BadValueCase{"StoreEmpty", [] { absl::SetFlag(&FLAGS_store, ""); },
                     "--store must not be empty"},
        BadValueCase{"ProviderUnknown",
                     [] { absl::SetFlag(&FLAGS_provider, "gemini"); },
                     "--provider must be one of auto, anthropic, openai, "
                     "echo; got 'gemini'"},
        BadValueCase{"MaxMessageBytesZero",
                     [] { absl::SetFlag(&FLAGS_max_message_bytes, 0); },
                     "--max_message_bytes must be between 1 and 16777216; "
                     "got 0"},
        BadValueCase{"ProviderRetriesNegative",
                     [] { absl::SetFlag(&FLAGS_provider_retries, -1); },
                     "--provider_retries must be between 0 and 10; got -1"},
        BadValueCase{"MaxTokensCeilingZero",
                     [] { absl::SetFlag(&FLAGS_max_tokens_ceiling, 0); },
                     "--max_tokens_ceiling must be between 1 and 1000000; "
                     "got 0"},
        BadValueCase{"MaxTokensZero",
                     [] { absl::SetFlag(&FLAGS_max_tokens, 0); },
                     "--max_tokens must be between 1 and 1000000; got 0"},
        BadValueCase{"MaxTurnsNegative",
                     [] { absl::SetFlag(&FLAGS_max_turns_per_session, -1); },
                     "--max_turns_per_session must be between 0 and"},
        BadValueCase{"MaxSessionsNegative",
                     [] { absl::SetFlag(&FLAGS_max_sessions_per_tenant, -1); },
                     "--max_sessions_per_tenant must be between 0 and"},
        BadValueCase{"MaxContextTokensNegative",
                     [] { absl::SetFlag(&FLAGS_max_context_tokens, -5); },
                     "--max_context_tokens must be between 0 and"},
        BadValueCase{
            "ShutdownGraceNegative",
            [] { absl::SetFlag(&FLAGS_shutdown_grace, absl::Seconds(-1)); },
            "--shutdown_grace must be between 0 and 1h; got -1s"},
        BadValueCase{
            "SessionTtlNegative",
            [] { absl::SetFlag(&FLAGS_session_ttl, absl::Minutes(-1)); },
            "--session_ttl must be between 0 and 87600h; got -1m"},
        BadValueCase{
            "IdempotencyTtlZero",
            [] { absl::SetFlag(&FLAGS_idempotency_ttl, absl::ZeroDuration()); },
            "--idempotency_ttl must be between 1us and 87600h; got 0"},
        BadValueCase{
            "IdempotencyTtlNegative",
            [] { absl::SetFlag(&FLAGS_idempotency_ttl, absl::Hours(-1)); },
            "--idempotency_ttl must be between 1us and 87600h; got -1h"},
        BadValueCase{"EchoDelayTooLong",
                     [] { absl::SetFlag(&FLAGS_echo_delay, absl::Minutes(1)); },
                     "--echo_delay must be between 0 and 10s; got 1m"},
        BadValueCase{
            "ConnectTimeoutZero",
            [] { absl::SetFlag(&FLAGS_connect_timeout, absl::ZeroDuration()); },
            "--connect_timeout must be between 1ms and 10m; got 0"},
        BadValueCase{"FirstByteTimeoutInfinite",
                     [] {
                       absl::SetFlag(&FLAGS_first_byte_timeout,
                                     absl::InfiniteDuration());
                     },
                     "--first_byte_timeout must be between 1ms and 1h; got "
                     "inf"},
        BadValueCase{
            "IdleTimeoutNegative",
            [] { absl::SetFlag(&FLAGS_idle_timeout, absl::Seconds(-5)); },
            "--idle_timeout must be between 1ms and 1h"},
        BadValueCase{
            "RetryDelayTooLong",
            [] { absl::SetFlag(&FLAGS_provider_retry_delay, absl::Hours(1)); },
            "--provider_retry_delay must be between 0 and 1m"},
        BadValueCase{"AllowedModelsEmptyEntry",
                     [] {
                       absl::SetFlag(&FLAGS_allowed_models,
                                     std::vector<std::string>{"a", ""});
                     },
                     "--allowed_models must not be empty"},
        BadValueCase{"SystemPromptTooLong",
                     [] {
                       absl::SetFlag(&FLAGS_default_system_prompt,
                                     std::string(16385, 'x'));
                     },
                     "--default_system_prompt must be at most 16384 bytes; "
                     "got 16385"}),
    [](const ::testing::TestParamInfo<BadValueCase>& info) {
      return info.param.label;
    });

TEST_F(ServerConfigTest, SessionTitlesAreOnByDefaultWithTheTitleModel) {
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_TRUE(config->engine.titles.enabled);
  EXPECT_EQ(config->engine.titles.model, "");
  absl::SetFlag(&FLAGS_session_titles, false);
  absl::SetFlag(&FLAGS_title_model, "claude-haiku-4-5");
  config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_FALSE(config->engine.titles.enabled);
  EXPECT_EQ(config->engine.titles.model, "claude-haiku-4-5");
}

TEST_F(ServerConfigTest, EveryBadFlagIsReported) {
  absl::SetFlag(&FLAGS_listen, "127.0.0.1:99999");
  absl::SetFlag(&FLAGS_store_threads, -1);
  EXPECT_THAT(
      ServerConfigFromFlags(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("--listen"), HasSubstr("--store_threads"))));
}

// --http_*: chat-server's own REST/JSON port.
TEST_F(ServerConfigTest, NoHttpPortByDefault) {
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->http.listen, "");
  EXPECT_EQ(config->http.http.io_threads, 2);
  // chat-gateway's --max_connections* defaults.
  EXPECT_EQ(config->http.http.max_connections, 10000);
  EXPECT_EQ(config->http.http.max_connections_per_client, 1000);
  EXPECT_FALSE(config->http.http.access_log);
  EXPECT_FALSE(config->http.allow_anonymous);
  // As chat-gateway: /metrics on the HTTP port unless it has its own.
  EXPECT_TRUE(config->http.gateway.serve_metrics);
}

TEST_F(ServerConfigTest, HttpValuesAreCarriedOver) {
  absl::SetFlag(&FLAGS_http_listen, "0.0.0.0:8000");
  absl::SetFlag(&FLAGS_http_web_root, "clients");
  absl::SetFlag(&FLAGS_http_cors_origins, "https://app.example");
  absl::SetFlag(&FLAGS_http_access_log, true);
  absl::SetFlag(&FLAGS_http_io_threads, 256);
  absl::SetFlag(&FLAGS_http_max_connections, 50);
  absl::SetFlag(&FLAGS_http_max_connections_per_client, 7);
  absl::SetFlag(&FLAGS_http_allow_anonymous, true);
  absl::SetFlag(&FLAGS_metrics_listen, "127.0.0.1:9464");
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->http.listen, "0.0.0.0:8000");
  EXPECT_EQ(config->http.address.host, "0.0.0.0");
  EXPECT_EQ(config->http.address.port, 8000);
  EXPECT_EQ(config->http.gateway.web_root, "clients");
  EXPECT_EQ(config->http.gateway.cors_origins, "https://app.example");
  EXPECT_TRUE(config->http.http.access_log);
  EXPECT_EQ(config->http.http.io_threads, 256);
  EXPECT_EQ(config->http.http.max_connections, 50);
  EXPECT_EQ(config->http.http.max_connections_per_client, 7);
  EXPECT_TRUE(config->http.allow_anonymous);
  EXPECT_FALSE(config->http.gateway.serve_metrics);
}

TEST_F(ServerConfigTest, BadHttpFlagsAreRefusedNamingThem) {
  absl::SetFlag(&FLAGS_http_listen, "localhost");
  absl::SetFlag(&FLAGS_http_io_threads, 0);
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--http_listen"),
                             HasSubstr("--http_io_threads must be between 1 "
                                       "and 256; got 0"))));
}

TEST_F(ServerConfigTest, BadHttpConnectionCapsAreRefusedNamingThem) {
  absl::SetFlag(&FLAGS_http_max_connections, 0);
  absl::SetFlag(&FLAGS_http_max_connections_per_client, 1000001);
  EXPECT_THAT(
      ServerConfigFromFlags(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("--http_max_connections must be between 1 "
                               "and 1000000; got 0"),
                     HasSubstr("--http_max_connections_per_client must be "
                               "between 1 and 1000000; got 1000001"))));
}

// --fallback: each entry parsed, its provider's key required at start-up.
class FallbackConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables) unsetenv(name);
  }
  void TearDown() override {
    for (const char* name : kVariables) unsetenv(name);
  }
  static constexpr const char* kVariables[] = {
      "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY",
      "OPENAI_BASE_URL"};
  absl::FlagSaver saver_;
};

TEST_F(FallbackConfigTest, NoneByDefault) {
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_TRUE(config->provider.fallbacks.empty());
  EXPECT_EQ(config->provider.fallback_cooldown, absl::Seconds(30));
}

TEST_F(FallbackConfigTest, EntriesAndCooldownAreCarriedOver) {
  setenv("OPENAI_API_KEY", "sk-openai-secret", 1);
  absl::SetFlag(&FLAGS_fallback,
                {"openai:gpt-4o-mini", "openai:llama3:8b", "echo:echo"});
  absl::SetFlag(&FLAGS_fallback_cooldown, absl::Seconds(5));
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  ASSERT_EQ(config->provider.fallbacks.size(), 3u);
  EXPECT_EQ(config->provider.fallbacks[0].provider, "openai");
  EXPECT_EQ(config->provider.fallbacks[0].model, "gpt-4o-mini");
  EXPECT_EQ(config->provider.fallbacks[1].model, "llama3:8b");
  EXPECT_EQ(config->provider.fallbacks[2].provider, "echo");
  EXPECT_EQ(config->provider.fallback_cooldown, absl::Seconds(5));
}

TEST_F(FallbackConfigTest, BadEntriesAreRefusedNamingTheFlag) {
  absl::SetFlag(&FLAGS_fallback, {"gemini:pro"});
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--fallback"), HasSubstr("gemini"))));
  absl::SetFlag(&FLAGS_fallback, {"openai"});
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--fallback"), HasSubstr("no model"))));
  absl::SetFlag(&FLAGS_fallback, {"openai:"});
  EXPECT_THAT(
      ServerConfigFromFlags(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--fallback")));
  absl::SetFlag(&FLAGS_fallback, {});
  absl::SetFlag(&FLAGS_fallback_cooldown, absl::Seconds(-1));
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--fallback_cooldown")));
}

TEST_F(ServerConfigTest, PricesAreBuiltInUnlessAFileAddsTo) {
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  ASSERT_NE(config->engine.prices, nullptr);
  EXPECT_NE(config->engine.prices->Find("claude-sonnet-4-6"), std::nullopt);
  EXPECT_EQ(config->engine.prices->Find("my-model"), std::nullopt);

  const std::string path = ::testing::TempDir() + "config_test_prices.json";
  std::ofstream(path) << R"({"my-model": {"input": 1, "output": 2}})";
  absl::SetFlag(&FLAGS_prices_file, path);
  config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  ASSERT_NE(config->engine.prices, nullptr);
  EXPECT_NE(config->engine.prices->Find("my-model"), std::nullopt);
  EXPECT_NE(config->engine.prices->Find("claude-sonnet-4-6"), std::nullopt);

  std::ofstream(path) << "not json";
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--prices_file"), HasSubstr(path))));
  std::remove(path.c_str());
}

TEST_F(FallbackConfigTest, AFallbackWithoutItsKeyIsRefusedWithoutQuotingKeys) {
  setenv("OPENAI_API_KEY", "sk-openai-secret", 1);
  absl::SetFlag(&FLAGS_fallback, {"anthropic:claude-haiku-4-5"});
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  EXPECT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("--fallback"),
                                     HasSubstr("ANTHROPIC_API_KEY"),
                                     Not(HasSubstr("secret")))));
  setenv("ANTHROPIC_API_KEY", "sk-ant-secret", 1);
  EXPECT_THAT(ServerConfigFromFlags(), IsOk());
}

// The real path from the environment: CHAT_<NAME>, refused values blaming
// the variable, the command line winning.
class ServerConfigEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override { Unset(); }
  void TearDown() override { Unset(); }
  static void Unset() {
    unsetenv("CHAT_STORE_THREADS");
    unsetenv("CHAT_SHUTDOWN_GRACE");
  }
  absl::StatusOr<ServerConfig> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "chat-server");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    return ParseServerConfig(static_cast<int>(args.size()), argv.data());
  }
  absl::FlagSaver saver_;
};

TEST_F(ServerConfigEnvironmentTest, NegativeStoreThreadsFromEnvironment) {
  setenv("CHAT_STORE_THREADS", "-1", 1);
  EXPECT_THAT(Parse({}), StatusIs(absl::StatusCode::kInvalidArgument,
                                  "--store_threads must be between 0 and 256; "
                                  "got -1 (from CHAT_STORE_THREADS)"));
}

TEST_F(ServerConfigEnvironmentTest, UnparsableEnvironmentValue) {
  setenv("CHAT_SHUTDOWN_GRACE", "ten seconds", 1);
  EXPECT_THAT(Parse({}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--shutdown_grace cannot be set from "
                                 "CHAT_SHUTDOWN_GRACE")));
}

TEST_F(ServerConfigEnvironmentTest, HttpListenFromEnvironment) {
  setenv("CHAT_HTTP_LISTEN", "127.0.0.1:0", 1);
  absl::StatusOr<ServerConfig> config = Parse({});
  unsetenv("CHAT_HTTP_LISTEN");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->http.listen, "127.0.0.1:0");
}

TEST_F(ServerConfigEnvironmentTest, BadHttpIoThreadsFromEnvironment) {
  setenv("CHAT_HTTP_IO_THREADS", "1000", 1);
  absl::StatusOr<ServerConfig> config = Parse({});
  unsetenv("CHAT_HTTP_IO_THREADS");
  EXPECT_THAT(config,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--http_io_threads must be between 1 and 256; got 1000 "
                       "(from CHAT_HTTP_IO_THREADS)"));
}

TEST_F(ServerConfigEnvironmentTest, HttpConnectionCapsFromEnvironment) {
  setenv("CHAT_HTTP_MAX_CONNECTIONS", "20000", 1);
  setenv("CHAT_HTTP_MAX_CONNECTIONS_PER_CLIENT", "20000", 1);
  absl::StatusOr<ServerConfig> config = Parse({});
  unsetenv("CHAT_HTTP_MAX_CONNECTIONS");
  unsetenv("CHAT_HTTP_MAX_CONNECTIONS_PER_CLIENT");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->http.http.max_connections, 20000);
  EXPECT_EQ(config->http.http.max_connections_per_client, 20000);
}

TEST_F(ServerConfigEnvironmentTest, CommandLineWins) {
  setenv("CHAT_STORE_THREADS", "-1", 1);
  absl::StatusOr<ServerConfig> config = Parse({"--store_threads=3"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->store_threads, 3);
}

TEST_F(ServerConfigEnvironmentTest, BadCommandLineDuration) {
  EXPECT_THAT(Parse({"--shutdown_grace=10"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--shutdown_grace cannot be '10'")));
}

// Authentication settings: the admin key (file or CHAT_ADMIN_KEY), never
// quoted in an error, and the safe default.
class AdminKeyConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("CHAT_ADMIN_KEY"); }
  void TearDown() override { unsetenv("CHAT_ADMIN_KEY"); }
  // A file holding `contents`; its path.
  static std::string WriteFile(const std::string& contents) {
    std::string path =
        ::testing::TempDir() + "/admin_key_" + std::to_string(counter_++);
    std::ofstream(path) << contents;
    return path;
  }
  static inline int counter_ = 0;
  absl::FlagSaver saver_;
};

TEST_F(AdminKeyConfigTest, NoneByDefault) {
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->admin_key, "");
  EXPECT_FALSE(config->allow_anonymous);
  EXPECT_TRUE(config->listener_is_loopback);
}

TEST_F(AdminKeyConfigTest, FromAFileWithTrailingWhitespaceTrimmed) {
  absl::SetFlag(&FLAGS_admin_key_file,
                WriteFile("file-admin-key-0123456789abcdef \n\n"));
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->admin_key, "file-admin-key-0123456789abcdef");
}

// Presented Bearer tokens are stripped on both sides, so the configured key
// must be too, or a key file with leading whitespace never matches.
TEST_F(AdminKeyConfigTest, LeadingWhitespaceTrimmedToo) {
  absl::SetFlag(&FLAGS_admin_key_file,
                WriteFile(" \tfile-admin-key-0123456789abcdef\n"));
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->admin_key, "file-admin-key-0123456789abcdef");
  absl::SetFlag(&FLAGS_admin_key_file, "");
  setenv("CHAT_ADMIN_KEY", "  env-admin-key-0123456789abcdef ", 1);
  config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->admin_key, "env-admin-key-0123456789abcdef");
}

TEST_F(AdminKeyConfigTest, FromTheEnvironmentUnlessAFileIsGiven) {
  setenv("CHAT_ADMIN_KEY", "env-admin-key-0123456789abcdef", 1);
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->admin_key, "env-admin-key-0123456789abcdef");
  absl::SetFlag(&FLAGS_admin_key_file,
                WriteFile("file-admin-key-0123456789abcdef\n"));
  config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->admin_key, "file-admin-key-0123456789abcdef");
}

TEST_F(AdminKeyConfigTest, AShortKeyIsRefusedWithoutQuotingIt) {
  absl::SetFlag(&FLAGS_admin_key_file, WriteFile("tiny-secret\n"));
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  EXPECT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("--admin_key_file"),
                                     HasSubstr("at least 24 characters"),
                                     Not(HasSubstr("tiny-secret")))));
  absl::SetFlag(&FLAGS_admin_key_file, "");
  setenv("CHAT_ADMIN_KEY", "tiny-secret", 1);
  EXPECT_THAT(
      ServerConfigFromFlags(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("CHAT_ADMIN_KEY"), HasSubstr("--admin_key_file"),
                     Not(HasSubstr("tiny-secret")))));
}

TEST_F(AdminKeyConfigTest, AnUnreadableFileIsRefused) {
  absl::SetFlag(&FLAGS_admin_key_file, "/nonexistent/admin.key");
  EXPECT_THAT(ServerConfigFromFlags(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--admin_key_file cannot be read")));
}

struct SafeDefaultCase {
  std::string label;
  std::string listen;
  bool allow_anonymous;
  bool admin_key;
  bool has_active_keys;
  bool starts;
};

class SafeDefaultTest : public ::testing::TestWithParam<SafeDefaultCase> {};

TEST_P(SafeDefaultTest, RefusesOnlyAnOpenNetworkListener) {
  const SafeDefaultCase& c = GetParam();
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_listen, c.listen);
  absl::SetFlag(&FLAGS_allow_anonymous, c.allow_anonymous);
  absl::StatusOr<ServerConfig> config = ServerConfigFromFlags();
  ASSERT_THAT(config, IsOk());
  if (c.admin_key) config->admin_key = "admin-key-0123456789abcdef";
  absl::Status status = CheckSafeDefault(*config, c.has_active_keys);
  if (c.starts) {
    EXPECT_THAT(status, IsOk());
  } else {
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 AllOf(HasSubstr("chat-server keys create"),
                                       HasSubstr("--admin_key_file"),
                                       HasSubstr("--allow_anonymous"))));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SafeDefaultTest,
    ::testing::Values(
        SafeDefaultCase{"Loopback", "127.0.0.1:0", false, false, false, true},
        SafeDefaultCase{"LoopbackV6", "[::1]:0", false, false, false, true},
        SafeDefaultCase{"Localhost", "localhost:0", false, false, false, true},
        SafeDefaultCase{"AnyNoAuth", "0.0.0.0:0", false, false, false, false},
        SafeDefaultCase{"EmptyHostNoAuth", ":0", false, false, false, false},
        SafeDefaultCase{"V6AnyNoAuth", "[::]:0", false, false, false, false},
        SafeDefaultCase{"AnyAllowAnonymous", "0.0.0.0:0", true, false, false,
                        true},
        SafeDefaultCase{"AnyAdminKey", "0.0.0.0:0", false, true, false, true},
        SafeDefaultCase{"AnyWithKeys", "0.0.0.0:0", false, false, true, true}),
    [](const ::testing::TestParamInfo<SafeDefaultCase>& info) {
      return info.param.label;
    });

// A flag left out of the list would silently ignore its environment
// variable: every flag this binary defines must be in it.
TEST(ServerFlagNamesTest, ListsEveryFlagOfTheBinary) {
  const std::vector<std::string>& names = ServerFlagNames();
  int defined = 0;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "server/app/")) continue;
    ++defined;
    EXPECT_THAT(names, ::testing::Contains(std::string(name)))
        << "--" << name << " has no environment variable";
  }
  EXPECT_EQ(defined, static_cast<int>(names.size()));
}

// --store_threads=0 sizes the pool by the store: group commit on a blocking
// store gathers one turn per waiting thread.
TEST(StoreThreadsForTest, ZeroPicksByWhetherTheStoreBlocks) {
  store::MemoryConversationStore memory;
  ASSERT_FALSE(memory.MayBlock());
  EXPECT_EQ(StoreThreadsFor(0, memory), 4);
  absl::StatusOr<std::unique_ptr<store::SqliteConversationStore>> sqlite =
      store::SqliteConversationStore::Open(":memory:");
  ASSERT_THAT(sqlite.status(), IsOk());
  EXPECT_EQ(StoreThreadsFor(0, **sqlite), 64);
  EXPECT_EQ(StoreThreadsFor(3, **sqlite), 3);
  EXPECT_EQ(StoreThreadsFor(3, memory), 3);
}

}  // namespace
}  // namespace chat
