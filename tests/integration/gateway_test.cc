// chat-gateway in front of chat-server, both real binaries on free loopback
// ports, driven with curl exactly as the README (and the Python template's
// documentation) tells users to. Node's tests (tests/gateway/*.test.mjs)
// cover the REST contract in depth; this one keeps the documented commands
// working even where Node is not installed. Skips if curl is missing.

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
    const std::string dir = MakeTempDir();
    server_ = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY,
        std::vector<std::string>{
            "--listen=127.0.0.1:0", "--provider=echo",
            absl::StrCat("--store=sqlite:", dir, "/chat.db"),
            "--echo_delay=1ms", "--shutdown_grace=5s"});
    ASSERT_TRUE(server_->Start().ok()) << server_->Log();
    gateway_ = std::make_unique<ServerProcess>(
        CHAT_GATEWAY_BINARY,
        std::vector<std::string>{
            "--listen=127.0.0.1:0",
            absl::StrCat("--backend=", server_->address())});
    ASSERT_TRUE(gateway_->Start().ok()) << gateway_->Log();
    base_ = absl::StrCat("http://localhost:", gateway_->port());
  }

  // Runs curl with `args`; returns what it printed (empty on failure).
  std::string Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    absl::StatusOr<int> code = RunCommand(argv, &output);
    EXPECT_TRUE(code.ok() && *code == 0) << output;
    return output;
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ServerProcess> gateway_;
  std::string base_;
};

TEST_F(GatewayTest, ReadmeCurlCommands) {
  nlohmann::json chat = nlohmann::json::parse(
      Curl({"-X", "POST", base_ + "/chat", "-H",
            "Content-Type: application/json", "-d",
            R"({"message":"Hello! What can you do?", "session_id":"test-1"})"}),
      nullptr, false);
  ASSERT_TRUE(chat.is_object()) << gateway_->Log();
  EXPECT_THAT(chat["response"].get<std::string>(),
              HasSubstr("Hello! What can you do?"));
  EXPECT_EQ(chat["session_id"], "test-1");
  EXPECT_TRUE(chat["timestamp"].is_string());
  EXPECT_EQ(chat["turn_count"], 1);

  nlohmann::json history =
      nlohmann::json::parse(Curl({base_ + "/history/test-1"}), nullptr, false);
  ASSERT_TRUE(history.is_object());
  EXPECT_EQ(history["session_id"], "test-1");
  ASSERT_EQ(history["messages"].size(), 2u);
  EXPECT_EQ(history["messages"][0]["role"], "user");
  EXPECT_EQ(history["messages"][0]["content"], "Hello! What can you do?");
  EXPECT_EQ(history["messages"][1]["role"], "assistant");
  EXPECT_EQ(history["turn_count"], 1);

  EXPECT_EQ(Curl({base_ + "/"}), R"({"status":"ok","service":"chat-api"})");
  EXPECT_EQ(Curl({"-o", "/dev/null", "-w", "%{http_code}",
                  base_ + "/history/nobody"}),
            "404");
  const std::string streamed =
      Curl({"-N", "-X", "POST", base_ + "/chat-stream", "-d",
            R"({"message":"And now?","session_id":"test-1"})"});
  EXPECT_THAT(streamed, HasSubstr("And now?"));
}

TEST_F(GatewayTest, StopsCleanlyOnSigterm) {
  absl::StatusOr<int> code = gateway_->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << gateway_->Log();
  EXPECT_THAT(gateway_->Log(), HasSubstr("chat-gateway stopped"));
}

}  // namespace
}  // namespace chat
