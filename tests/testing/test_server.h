#ifndef CHAT_TESTS_TESTING_TEST_SERVER_H_
#define CHAT_TESTS_TESTING_TEST_SERVER_H_

// An in-process chat.v1.ChatService for tests of the gRPC edge: a real
// grpc::Server on 127.0.0.1:0 serving ChatServiceImpl over a real ChatEngine,
// the memory store, a ThreadPool and the scripted FakeLlmProvider. Tests drive
// it through a real channel (so cancellation, deadlines and flow control are
// gRPC's own) and look behind it at the provider and the store. The shape of
// userver's greeter_service_test fixture.

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "common/thread_pool.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/chat_engine.h"
#include "server/engine/resumable_streams.h"
#include "server/service/authenticator.h"
#include "server/service/chat_service_impl.h"
#include "server/store/memory_store.h"
#include "tests/testing/fake_llm_provider.h"

namespace chat::testing {

class TestServer {
 public:
  // Starts serving at once; the engine uses `options`. Authentication uses
  // `auth` over the memory store's keys; by default it is what a server on
  // loopback does: while the store holds no key, every call is tenant
  // "default".
  explicit TestServer(ChatEngineOptions options = {},
                      AuthenticatorOptions auth = DefaultAuthOptions(),
                      ResumableStreamOptions streams = {});
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  // Shutdown(), then frees the rest.
  ~TestServer();

  // Stops the server: calls still open are cancelled, then every reactor has
  // finished and every turn has ended (the engine is gone). The provider and
  // the store stay readable, so a test can check what the turns left behind.
  // Idempotent.
  void Shutdown();

  // A stub on a channel of its own to the server.
  std::unique_ptr<chat::v1::ChatService::Stub> NewStub();
  // One shared stub, for tests that need only one.
  chat::v1::ChatService::Stub& stub() { return *stub_; }
  const std::string& address() const { return address_; }

  static AuthenticatorOptions DefaultAuthOptions() {
    AuthenticatorOptions options;
    options.listener_is_loopback = true;
    return options;
  }

  FakeLlmProvider& provider() { return provider_; }
  Authenticator& authenticator() { return *authenticator_; }
  store::MemoryConversationStore& store() { return store_; }

  // Calls of `method` (e.g. "ChatStream") whose request the server has read:
  // its handler runs (or has run) and a chat turn is queued in the engine.
  // Lets a test act on a call it knows the server holds.
  int calls_received(const std::string& method);
  // Blocks until calls_received(method) >= n; false after `timeout`.
  bool WaitForCalls(const std::string& method, int n,
                    absl::Duration timeout = absl::Seconds(60));
  // Calls of `method` whose status the server has sent (Finish was called).
  // A client's own status comes first on a cancel; this is the server's side.
  int calls_finished(const std::string& method);
  // Blocks until calls_finished(method) >= n; false after `timeout`.
  bool WaitForFinished(const std::string& method, int n,
                       absl::Duration timeout = absl::Seconds(60));

  // The stored history of `session_id` of `tenant` (an anonymous caller's by
  // default); empty if there is no such session.
  std::vector<store::StoredMessage> History(
      const std::string& session_id, const std::string& tenant = "default");

 private:
  class CallCounterFactory;
  enum class Event { kReceived, kFinished };
  absl::flat_hash_map<std::string, int>& CountsLocked(Event event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return event == Event::kReceived ? calls_ : finished_;
  }
  int CountLocked(Event event, const std::string& method)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Note(Event event, const std::string& method);
  int Count(Event event, const std::string& method);
  bool WaitFor(Event event, const std::string& method, int n,
               absl::Duration timeout);

  // Declared in the order they are built; destroyed in reverse, the server
  // first.
  store::MemoryConversationStore store_;
  ThreadPool pool_{4};
  FakeLlmProvider provider_;
  std::unique_ptr<ChatEngine> engine_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<ChatServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<chat::v1::ChatService::Stub> stub_;

  absl::Mutex mu_;
  // Method name (the last part of the gRPC path) to calls received.
  absl::flat_hash_map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_TEST_SERVER_H_
