#include "gateway/app/callback_threads.h"

#include <memory>

#include "absl/synchronization/notification.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

// What the gateway does when the last call on a replaced channel ends: the
// call's callback releases the channel's last reference. Without
// HoldCallbackThreads that release deletes the completion queue its own
// thread polls, which ASan reports as a double free (and glibc may abort on)
// as soon as the callback returns; the rounds give it the time to.
TEST(HoldCallbackThreadsTest, ALastChannelMayBeReleasedInItsCallsCallback) {
  HoldCallbackThreads();
  HoldCallbackThreads();  // A second call does nothing.
  for (int round = 0; round < 20; ++round) {
    auto channel = std::make_unique<std::shared_ptr<grpc::Channel>>(
        grpc::CreateChannel("unix:/nonexistent/chatd-callback-test",
                            grpc::InsecureChannelCredentials()));
    auto context = std::make_unique<grpc::ClientContext>();
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::StatusCode code = grpc::StatusCode::OK;
    {
      // The stub's reference goes before the call ends.
      grpc::GenericStub stub(*channel);
      stub.UnaryCall(context.get(), "/chat.test.Nowhere/Call",
                     grpc::StubOptions(), &request, &response,
                     [&](grpc::Status status) {
                       code = status.error_code();
                       context.reset();  // Held the channel too.
                       channel.reset();  // The last reference.
                       done.Notify();
                     });
    }
    done.WaitForNotification();
    EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE) << "round " << round;
  }
}

}  // namespace
}  // namespace chat::gateway
