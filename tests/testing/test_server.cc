#include "tests/testing/test_server.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/server_interceptor.h"

namespace chat::testing {

// Counts each call once the server has read its request (every ChatService
// method takes exactly one), which is just before its handler runs, and once
// it sends its status.
class TestServer::CallCounterFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(TestServer* server) : server_(server) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new Counter(server_, info->method());
  }

 private:
  class Counter final : public grpc::experimental::Interceptor {
   public:
    Counter(TestServer* server, absl::string_view path) : server_(server) {
      const size_t slash = path.rfind('/');
      method_ = std::string(
          slash == absl::string_view::npos ? path : path.substr(slash + 1));
    }
    void Intercept(
        grpc::experimental::InterceptorBatchMethods* methods) override {
      if (methods->QueryInterceptionHookPoint(
              grpc::experimental::InterceptionHookPoints::POST_RECV_MESSAGE)) {
        server_->Note(Event::kReceived, method_);
      }
      if (methods->QueryInterceptionHookPoint(
              grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
        server_->Note(Event::kFinished, method_);
      }
      methods->Proceed();
    }

   private:
    TestServer* const server_;
    std::string method_;
  };

  TestServer* const server_;
};

TestServer::TestServer(ChatEngineOptions options, AuthenticatorOptions auth,
                       ResumableStreamOptions streams)
    : engine_(std::make_unique<ChatEngine>(&store_, &provider_, &pool_,
                                           std::move(options))),
      authenticator_(std::make_unique<Authenticator>(&store_.keys(), &pool_,
                                                     std::move(auth))),
      service_(std::make_unique<ChatServiceImpl>(engine_.get(), &store_, &pool_,
                                                 authenticator_.get(),
                                                 ModelCatalog(), streams)) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service_.get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<CallCounterFactory>(this));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    // A test cannot run without its server; nothing to recover.
    std::fprintf(stderr, "TestServer: could not listen on 127.0.0.1\n");
    std::abort();
  }
  address_ = absl::StrCat("127.0.0.1:", port);
  stub_ = NewStub();
}

TestServer::~TestServer() { Shutdown(); }

void TestServer::Shutdown() {
  if (server_ == nullptr) return;
  // A deadline of now: calls still open are cancelled at once (their
  // reactors see OnCancel) and Shutdown returns once all have finished.
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  // Held provider calls of cancelled turns end by themselves; release any
  // other so the engine's destructor, which waits for every turn, returns.
  // Streamed answers outlive their calls (a client may resume them):
  // cancel them before held calls are let go, so they store nothing.
  service_->StopStreams();
  provider_.Release();
  engine_.reset();
  server_.reset();
}

std::unique_ptr<chat::v1::ChatService::Stub> TestServer::NewStub() {
  grpc::ChannelArguments args;
  // A channel of its own: calls on separate stubs never share a connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return chat::v1::ChatService::NewStub(grpc::CreateCustomChannel(
      address_, grpc::InsecureChannelCredentials(), args));
}

int TestServer::CountLocked(Event event, const std::string& method) {
  const absl::flat_hash_map<std::string, int>& counts = CountsLocked(event);
  auto it = counts.find(method);
  return it == counts.end() ? 0 : it->second;
}

void TestServer::Note(Event event, const std::string& method) {
  absl::MutexLock lock(&mu_);
  ++CountsLocked(event)[method];
}

int TestServer::Count(Event event, const std::string& method) {
  absl::MutexLock lock(&mu_);
  return CountLocked(event, method);
}

bool TestServer::WaitFor(Event event, const std::string& method, int n,
                         absl::Duration timeout) {
  struct Arg {
    TestServer* server;
    Event event;
    const std::string* method;
    int n;
  } arg{this, event, &method, n};
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          // Evaluated by Await with mu_ held; the analysis cannot see that.
          +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return a->server->CountLocked(a->event, *a->method) >= a->n;
          },
          &arg),
      timeout);
}

int TestServer::calls_received(const std::string& method) {
  return Count(Event::kReceived, method);
}

bool TestServer::WaitForCalls(const std::string& method, int n,
                              absl::Duration timeout) {
  return WaitFor(Event::kReceived, method, n, timeout);
}

int TestServer::calls_finished(const std::string& method) {
  return Count(Event::kFinished, method);
}

bool TestServer::WaitForFinished(const std::string& method, int n,
                                 absl::Duration timeout) {
  return WaitFor(Event::kFinished, method, n, timeout);
}

std::vector<store::StoredMessage> TestServer::History(
    const std::string& session_id, const std::string& tenant) {
  absl::StatusOr<std::vector<store::StoredMessage>> history =
      store_.LoadHistory({tenant, session_id});
  if (!history.ok()) return {};
  return *std::move(history);
}

}  // namespace chat::testing
