#ifndef CHAT_TESTS_TESTING_SERVICE_FIXTURE_H_
#define CHAT_TESTS_TESTING_SERVICE_FIXTURE_H_

// What the tests of the gRPC edge share: an in-process TestServer and the
// steps they all take around the call under test.

#include <string>
#include <utility>
#include <vector>

#include "chat/v1/chat.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/store/conversation_store.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/fake_llm_provider.h"
#include "tests/testing/test_server.h"

namespace chat::testing {

class ServiceFixture : public ::testing::Test {
 protected:
  // A script that sends `deltas`, then holds until Release() or a cancel.
  static FakeScript Held(std::vector<std::string> deltas) {
    FakeScript script;
    script.deltas = std::move(deltas);
    script.hold = true;
    return script;
  }

  // Serves one more turn on `session` with the default script ("Hello",
  // " there"). The engine starts it only after every earlier turn of the
  // session has ended, so afterwards those turns' effects are all visible.
  chat::v1::ChatResponse ServeNextTurn(const std::string& session) {
    server_.provider().SetScript(FakeScript());
    chat::v1::ChatResponse response;
    grpc::Status status =
        CallChat(server_.stub(), MakeChatRequest(session, "next"), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // The contents of the stored history of `session`.
  std::vector<std::string> Contents(const std::string& session) {
    std::vector<std::string> contents;
    for (const store::StoredMessage& m : server_.History(session)) {
      contents.push_back(m.content);
    }
    return contents;
  }

  TestServer server_;
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_SERVICE_FIXTURE_H_
