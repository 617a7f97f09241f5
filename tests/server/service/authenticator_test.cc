// The Authenticator. Strategy: a real memory KeyStore behind a counting
// wrapper (to see which answers came from the cache), a real ThreadPool, and a
// fake clock that the test moves, so cache lifetimes are crossed by setting
// the time, never by sleeping. Each call waits on the notification its `done`
// fires. Refusals are checked for the exact fixed message.

#include "server/service/authenticator.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/api_key.h"
#include "server/store/memory_key_quota_store.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

// The memory KeyStore, counting the lookups that reach it.
class CountingKeyStore final : public store::KeyStore {
 public:
  absl::Status CreateKey(const store::ApiKey& key) override {
    return keys_.CreateKey(key);
  }
  absl::StatusOr<store::ApiKey> GetKey(absl::string_view id) override {
    ++get_key_calls;
    gate_mu_.Lock();
    ++get_key_started_;
    gate_mu_.Await(absl::Condition(&gate_open_));
    gate_mu_.Unlock();
    return keys_.GetKey(id);
  }
  absl::StatusOr<std::vector<store::ApiKey>> ListKeys(
      absl::string_view tenant) override {
    return keys_.ListKeys(tenant);
  }
  absl::StatusOr<bool> RevokeKey(absl::string_view id,
                                 absl::Time now) override {
    return keys_.RevokeKey(id, now);
  }
  absl::StatusOr<bool> HasActiveKeys(absl::Time now) override {
    ++has_active_keys_calls;
    return keys_.HasActiveKeys(now);
  }

  // While closed, each GetKey waits (having counted itself) until opened.
  void CloseGate() {
    absl::MutexLock lock(&gate_mu_);
    gate_open_ = false;
  }
  void OpenGate() {
    absl::MutexLock lock(&gate_mu_);
    gate_open_ = true;
  }
  // Returns once `n` GetKey calls have started.
  void AwaitGetKeyStarted(int n) {
    auto started = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_) {
      return get_key_started_ >= n;
    };
    absl::MutexLock lock(&gate_mu_, absl::Condition(&started));
  }

  std::atomic<int> get_key_calls{0};
  std::atomic<int> has_active_keys_calls{0};

 private:
  store::MemoryKeyStore keys_;
  absl::Mutex gate_mu_;
  bool gate_open_ ABSL_GUARDED_BY(gate_mu_) = true;
  int get_key_started_ ABSL_GUARDED_BY(gate_mu_) = 0;
};

// A clock the test sets; read from pool threads too.
class FakeClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1700000000);
};

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorOptions Options() {
    AuthenticatorOptions options;
    options.listener_is_loopback = true;
    options.admin_key = "admin-key-0123456789abcdef";
    options.clock = [this] { return clock_.Now(); };
    return options;
  }

  // Authenticates and waits for the answer.
  absl::StatusOr<Caller> Authenticate(Authenticator& auth,
                                      CallCredentials credentials,
                                      bool* answered_inline = nullptr) {
    absl::Notification done;
    absl::StatusOr<Caller> result;
    // Which thread answered, not whether the answer came before Authenticate
    // returned: a fast pool thread can finish first.
    const std::thread::id caller_thread = std::this_thread::get_id();
    std::thread::id answered_on;
    auth.Authenticate(credentials, [&](absl::StatusOr<Caller> caller) {
      result = std::move(caller);
      answered_on = std::this_thread::get_id();
      done.Notify();
    });
    done.WaitForNotification();
    if (answered_inline != nullptr) {
      *answered_inline = answered_on == caller_thread;
    }
    return result;
  }

  static CallCredentials WithKey(std::string key, bool loopback = true) {
    CallCredentials credentials;
    credentials.key = std::move(key);
    credentials.from_loopback = loopback;
    return credentials;
  }
  static CallCredentials NoKey(bool loopback) {
    CallCredentials credentials;
    credentials.from_loopback = loopback;
    return credentials;
  }

  // Stores a key for `tenant`; returns its plaintext.
  GeneratedApiKey AddKey(const std::string& tenant,
                         absl::Time expires_at = absl::InfiniteFuture()) {
    store::KeyLimits limits;
    limits.requests_per_minute = 60;
    absl::StatusOr<GeneratedApiKey> key = CreateStoredApiKey(
        keys_, tenant, "test", clock_.Now(), expires_at, limits);
    EXPECT_THAT(key, IsOk());
    return *std::move(key);
  }

  FakeClock clock_;
  CountingKeyStore keys_;
  ThreadPool pool_{2};
};

TEST_F(AuthenticatorTest, AValidKeyIsItsTenantWithItsIdAndLimits) {
  Authenticator auth(&keys_, &pool_, Options());
  GeneratedApiKey key = AddKey("acme");
  absl::StatusOr<Caller> caller =
      Authenticate(auth, WithKey(key.plaintext, /*loopback=*/false));
  ASSERT_THAT(caller, IsOk());
  EXPECT_EQ(caller->tenant, "acme");
  EXPECT_EQ(caller->key_id, key.record.id);
  EXPECT_EQ(caller->limits.requests_per_minute, 60);
}

TEST_F(AuthenticatorTest, EveryBadKeyGetsTheSameAnswer) {
  Authenticator auth(&keys_, &pool_, Options());
  GeneratedApiKey good = AddKey("acme");
  GeneratedApiKey revoked = AddKey("acme");
  ASSERT_THAT(keys_.RevokeKey(revoked.record.id, clock_.Now()), IsOk());
  GeneratedApiKey expired = AddKey("acme", clock_.Now() + absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  std::string wrong_secret = good.plaintext;
  wrong_secret.back() = wrong_secret.back() == 'a' ? 'b' : 'a';
  const std::string unknown = "chatd_000000000000_" + std::string(64, 'a');

  for (const std::string& key :
       {wrong_secret, unknown, revoked.plaintext, expired.plaintext,
        std::string("chatd_garbage"), std::string(""),
        std::string("Bearer x")}) {
    SCOPED_TRACE(key);
    absl::StatusOr<Caller> caller = Authenticate(auth, WithKey(key));
    EXPECT_THAT(caller, StatusIs(absl::StatusCode::kUnauthenticated,
                                 "invalid API key"));
  }
}

TEST_F(AuthenticatorTest, NoKeyOnLoopbackWithNoKeysIsTheDefaultTenant) {
  Authenticator auth(&keys_, &pool_, Options());
  absl::StatusOr<Caller> caller = Authenticate(auth, NoKey(true));
  ASSERT_THAT(caller, IsOk());
  EXPECT_EQ(caller->tenant, "default");
  EXPECT_EQ(caller->key_id, "");
}

TEST_F(AuthenticatorTest, NoKeyFromAnotherHostIsRefused) {
  Authenticator auth(&keys_, &pool_, Options());
  EXPECT_THAT(Authenticate(auth, NoKey(false)),
              StatusIs(absl::StatusCode::kUnauthenticated, "missing API key"));
}

TEST_F(AuthenticatorTest, NoKeyIsRefusedWhenTheListenerIsNotLoopback) {
  AuthenticatorOptions options = Options();
  options.listener_is_loopback = false;
  Authenticator auth(&keys_, &pool_, std::move(options));
  EXPECT_THAT(Authenticate(auth, NoKey(true)),
              StatusIs(absl::StatusCode::kUnauthenticated, "missing API key"));
}

TEST_F(AuthenticatorTest, AllowAnonymousServesNoKeyFromAnywhere) {
  AuthenticatorOptions options = Options();
  options.listener_is_loopback = false;
  options.allow_anonymous = true;
  Authenticator auth(&keys_, &pool_, std::move(options));
  AddKey("acme");
  absl::StatusOr<Caller> caller = Authenticate(auth, NoKey(false));
  ASSERT_THAT(caller, IsOk());
  EXPECT_EQ(caller->tenant, "default");
  EXPECT_TRUE(auth.anonymous_remote_allowed());
  // A key that is presented is still checked.
  EXPECT_THAT(Authenticate(auth, WithKey("chatd_x")),
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API key"));
}

TEST_F(AuthenticatorTest, AnonymousStopsWithinTheCacheLifetimeOfTheFirstKey) {
  Authenticator auth(&keys_, &pool_, Options());
  ASSERT_THAT(Authenticate(auth, NoKey(true)), IsOk());
  AddKey("acme");
  // Still the cached "no keys" answer, from the cache, on this thread.
  bool answered_inline = false;
  EXPECT_THAT(Authenticate(auth, NoKey(true), &answered_inline), IsOk());
  EXPECT_TRUE(answered_inline);
  EXPECT_EQ(keys_.has_active_keys_calls, 1);
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(Authenticate(auth, NoKey(true)),
              StatusIs(absl::StatusCode::kUnauthenticated, "missing API key"));
  EXPECT_EQ(keys_.has_active_keys_calls, 2);
}

TEST_F(AuthenticatorTest, ARevokedKeyStopsWhenItsCacheEntryExpires) {
  Authenticator auth(&keys_, &pool_, Options());
  GeneratedApiKey key = AddKey("acme");
  bool answered_inline = true;
  ASSERT_THAT(Authenticate(auth, WithKey(key.plaintext), &answered_inline),
              IsOk());
  EXPECT_FALSE(answered_inline);  // A miss: looked up on the pool.
  ASSERT_THAT(keys_.RevokeKey(key.record.id, clock_.Now()), IsOk());
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_THAT(Authenticate(auth, WithKey(key.plaintext), &answered_inline),
              IsOk());
  EXPECT_TRUE(answered_inline);
  EXPECT_EQ(keys_.get_key_calls, 1);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(Authenticate(auth, WithKey(key.plaintext)),
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API key"));
  EXPECT_EQ(keys_.get_key_calls, 2);
}

TEST_F(AuthenticatorTest, ForgetDropsTheCachedKeyAtOnce) {
  Authenticator auth(&keys_, &pool_, Options());
  GeneratedApiKey key = AddKey("acme");
  ASSERT_THAT(Authenticate(auth, WithKey(key.plaintext)), IsOk());
  ASSERT_THAT(keys_.RevokeKey(key.record.id, clock_.Now()), IsOk());
  auth.Forget(key.record.id);
  EXPECT_THAT(Authenticate(auth, WithKey(key.plaintext)),
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API key"));
}

TEST_F(AuthenticatorTest, UnknownIdsAreCachedToo) {
  Authenticator auth(&keys_, &pool_, Options());
  const std::string unknown = "chatd_000000000000_" + std::string(64, 'a');
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(Authenticate(auth, WithKey(unknown)),
                StatusIs(absl::StatusCode::kUnauthenticated));
  }
  EXPECT_EQ(keys_.get_key_calls, 1);
}

TEST_F(AuthenticatorTest, TheCacheStaysWithinItsBound) {
  AuthenticatorOptions options = Options();
  options.max_cache_entries = 2;
  Authenticator auth(&keys_, &pool_, std::move(options));
  GeneratedApiKey key = AddKey("acme");
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("00000000000", i);
    EXPECT_THAT(
        Authenticate(auth, WithKey("chatd_" + id + "_" + std::string(64, 'a'))),
        StatusIs(absl::StatusCode::kUnauthenticated));
  }
  // Still correct after evictions.
  EXPECT_THAT(Authenticate(auth, WithKey(key.plaintext)), IsOk());
  EXPECT_EQ(keys_.get_key_calls, 6);
}

// Made-up ids are remembered apart from real keys: a flood of them, however
// long, never pushes a real key out of the cache.
TEST_F(AuthenticatorTest, AFloodOfUnknownIdsDoesNotEvictRealKeys) {
  AuthenticatorOptions options = Options();
  options.max_cache_entries = 2;
  Authenticator auth(&keys_, &pool_, std::move(options));
  GeneratedApiKey key = AddKey("acme");
  ASSERT_THAT(Authenticate(auth, WithKey(key.plaintext)), IsOk());
  for (int i = 0; i < 10; ++i) {
    const std::string id = absl::StrCat("0000000000", 10 + i);
    EXPECT_THAT(
        Authenticate(auth, WithKey("chatd_" + id + "_" + std::string(64, 'a'))),
        StatusIs(absl::StatusCode::kUnauthenticated));
  }
  bool inline_answer = false;
  EXPECT_THAT(Authenticate(auth, WithKey(key.plaintext), &inline_answer),
              IsOk());
  EXPECT_TRUE(inline_answer);
  EXPECT_EQ(keys_.get_key_calls, 11);
}

// Calls that present the same id while its lookup runs wait for that lookup
// instead of starting their own: one store read answers them all, each by
// its own secret.
TEST_F(AuthenticatorTest, ConcurrentLookupsOfOneIdShareOneStoreRead) {
  Authenticator auth(&keys_, &pool_, Options());
  GeneratedApiKey key = AddKey("acme");
  const std::string wrong_secret =
      absl::StrCat("chatd_", key.record.id, "_", std::string(64, 'b'));
  keys_.CloseGate();
  absl::Notification first_done;
  absl::Notification second_done;
  absl::StatusOr<Caller> first;
  absl::StatusOr<Caller> second;
  auth.Authenticate(WithKey(key.plaintext), [&](absl::StatusOr<Caller> c) {
    first = std::move(c);
    first_done.Notify();
  });
  keys_.AwaitGetKeyStarted(1);
  auth.Authenticate(WithKey(wrong_secret), [&](absl::StatusOr<Caller> c) {
    second = std::move(c);
    second_done.Notify();
  });
  keys_.OpenGate();
  first_done.WaitForNotification();
  second_done.WaitForNotification();
  EXPECT_THAT(first, IsOk());
  EXPECT_THAT(second,
              StatusIs(absl::StatusCode::kUnauthenticated, "invalid API key"));
  EXPECT_EQ(keys_.get_key_calls, 1);
}

// A Forget during a lookup keeps that lookup's (maybe older) answer out of
// the cache: the next call reads the store again.
TEST_F(AuthenticatorTest, ForgetDuringALookupKeepsItsAnswerOutOfTheCache) {
  Authenticator auth(&keys_, &pool_, Options());
  GeneratedApiKey key = AddKey("acme");
  keys_.CloseGate();
  absl::Notification done;
  auth.Authenticate(WithKey(key.plaintext),
                    [&](absl::StatusOr<Caller>) { done.Notify(); });
  keys_.AwaitGetKeyStarted(1);
  auth.Forget(key.record.id);
  keys_.OpenGate();
  done.WaitForNotification();
  ASSERT_THAT(Authenticate(auth, WithKey(key.plaintext)), IsOk());
  EXPECT_EQ(keys_.get_key_calls, 2);
}

TEST_F(AuthenticatorTest, AdminKey) {
  Authenticator auth(&keys_, &pool_, Options());
  EXPECT_THAT(
      auth.CheckAdmin(NoKey(true)),
      StatusIs(absl::StatusCode::kUnauthenticated, "missing admin key"));
  EXPECT_THAT(
      auth.CheckAdmin(WithKey("admin-key-0123456789abcdeX")),
      StatusIs(absl::StatusCode::kUnauthenticated, "invalid admin key"));
  GeneratedApiKey key = AddKey("acme");
  EXPECT_THAT(
      auth.CheckAdmin(WithKey(key.plaintext)),
      StatusIs(absl::StatusCode::kUnauthenticated, "invalid admin key"));
  EXPECT_THAT(auth.CheckAdmin(WithKey("admin-key-0123456789abcdef")), IsOk());

  AuthenticatorOptions none = Options();
  none.admin_key = "";
  Authenticator no_admin(&keys_, &pool_, std::move(none));
  EXPECT_THAT(
      no_admin.CheckAdmin(WithKey("")),
      StatusIs(absl::StatusCode::kUnauthenticated, "invalid admin key"));
}

TEST(LoopbackPeerTest, ReadsGrpcPeerStrings) {
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.0.0.1:5555"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::1]:5555"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:10.1.2.3:5555"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[2001:db8::1]:5555"));
  EXPECT_FALSE(IsLoopbackPeer("unix:/tmp/socket"));
  EXPECT_FALSE(IsLoopbackPeer("127.0.0.1:5555"));
}

TEST(LoopbackPeerTest, InProcessPeersAreNotAddresses) {
  EXPECT_TRUE(IsInProcessPeer("unknown"));
  EXPECT_TRUE(IsInProcessPeer("inproc"));
  EXPECT_FALSE(IsLoopbackPeer("unknown"));
  EXPECT_FALSE(IsInProcessPeer("ipv4:127.0.0.1:5555"));
  EXPECT_FALSE(IsInProcessPeer("unix:/tmp/socket"));
}

// The credentials of calls from chat-server's own HTTP port (--http_listen):
// CredentialsOf on calls through a real server's in-process channel (true),
// or LocalCallCredentials on the metadata of a call the port makes without
// gRPC (false; ChatServiceImpl::ChatLocal). Either way the peer is no
// address, so x-forwarded-for (the HTTP client's address) alone decides.
class InProcessCredentialsTest : public ::testing::TestWithParam<bool> {
 protected:
  // Answers every method with an empty message, keeping the credentials of
  // the last call.
  class CaptureService final : public grpc::CallbackGenericService {
   public:
    grpc::ServerGenericBidiReactor* CreateReactor(
        grpc::GenericCallbackServerContext* context) override {
      {
        absl::MutexLock lock(&mu_);
        credentials_ = CredentialsOf(*context);
        peer_ = context->peer();
      }
      class Reactor final : public grpc::ServerGenericBidiReactor {
       public:
        Reactor() { Finish(grpc::Status::OK); }
        void OnDone() override { delete this; }
      };
      return new Reactor();
    }
    CallCredentials credentials() {
      absl::MutexLock lock(&mu_);
      return credentials_;
    }
    std::string peer() {
      absl::MutexLock lock(&mu_);
      return peer_;
    }

   private:
    absl::Mutex mu_;
    CallCredentials credentials_ ABSL_GUARDED_BY(mu_);
    std::string peer_ ABSL_GUARDED_BY(mu_);
  };

  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // One call with `metadata`; the credentials the server read from it.
  CallCredentials CallWith(
      const std::vector<std::pair<std::string, std::string>>& metadata) {
    if (!GetParam()) return LocalCallCredentials(metadata);
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, "/test.Capture/Call", grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return service_.credentials();
  }

  CaptureService service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_P(InProcessCredentialsTest, ThePeerIsInProcess) {
  CallWith({});
  EXPECT_TRUE(IsInProcessPeer(GetParam() ? service_.peer() : kLocalCallPeer))
      << service_.peer();
}

TEST_P(InProcessCredentialsTest, TheKeyIsRead) {
  EXPECT_EQ(CallWith({{"authorization", "Bearer chatd_abc"}}).key, "chatd_abc");
  EXPECT_EQ(CallWith({{"x-api-key", "chatd_def"}}).key, "chatd_def");
  EXPECT_EQ(CallWith({}).key, std::nullopt);
}

TEST_P(InProcessCredentialsTest, ALoopbackHttpClientIsLoopback) {
  EXPECT_TRUE(CallWith({{"x-forwarded-for", "127.0.0.1"}}).from_loopback);
  EXPECT_TRUE(CallWith({{"x-forwarded-for", "::1"}}).from_loopback);
}

TEST_P(InProcessCredentialsTest, ARemoteHttpClientIsNotLoopback) {
  EXPECT_FALSE(CallWith({{"x-forwarded-for", "203.0.113.7"}}).from_loopback);
  EXPECT_FALSE(
      CallWith({{"x-forwarded-for", "127.0.0.1, 203.0.113.7"}}).from_loopback);
}

TEST_P(InProcessCredentialsTest, AnUnknownHttpClientIsNotLoopback) {
  // What the gateway forwards when the socket cannot tell.
  EXPECT_FALSE(CallWith({{"x-forwarded-for", "unknown"}}).from_loopback);
}

TEST_P(InProcessCredentialsTest, NoForwardedAddressIsNotLoopback) {
  EXPECT_FALSE(CallWith({}).from_loopback);
  EXPECT_FALSE(CallWith({{"x-forwarded-for", ""}}).from_loopback);
}

TEST_P(InProcessCredentialsTest, TheRemoteCallerNeedsAKeyWhileNoKeyExists) {
  // The whole rule: a loopback listener with no key in the store serves a
  // keyless call from a loopback HTTP client, and refuses a remote one.
  CountingKeyStore keys;
  ThreadPool pool(1);
  AuthenticatorOptions options;
  options.listener_is_loopback = true;
  Authenticator authenticator(&keys, &pool, std::move(options));
  auto authenticate = [&](const CallCredentials& credentials) {
    absl::StatusOr<Caller> caller;
    absl::Notification done;
    authenticator.Authenticate(credentials, [&](absl::StatusOr<Caller> c) {
      caller = std::move(c);
      done.Notify();
    });
    done.WaitForNotification();
    return caller;
  };
  absl::StatusOr<Caller> local =
      authenticate(CallWith({{"x-forwarded-for", "127.0.0.1"}}));
  ASSERT_THAT(local, IsOk());
  EXPECT_EQ(local->tenant, kAnonymousTenant);
  EXPECT_THAT(authenticate(CallWith({{"x-forwarded-for", "198.51.100.2"}})),
              StatusIs(absl::StatusCode::kUnauthenticated, kMissingApiKey));
}

INSTANTIATE_TEST_SUITE_P(Transports, InProcessCredentialsTest,
                         ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "InProcessChannel" : "LocalCall";
                         });

}  // namespace
}  // namespace chat
