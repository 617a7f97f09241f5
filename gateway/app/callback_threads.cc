#include "gateway/app/callback_threads.h"

#include <memory>

#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "grpcpp/support/status.h"

namespace chat::gateway {
namespace {

// A channel counts as a user of the callback queue from its first callback
// call until it is destroyed; this one is never destroyed.
struct Holder {
  std::shared_ptr<grpc::Channel> channel;
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

}  // namespace

void HoldCallbackThreads() {
  static Holder* const holder = [] {
    auto* h = new Holder;
    // A socket path, so that nothing is looked up; and the call is cancelled
    // before it starts, so that the channel never even tries to connect.
    h->channel = grpc::CreateChannel("unix:/nonexistent/chatd-callback-hold",
                                     grpc::InsecureChannelCredentials());
    h->context.TryCancel();
    grpc::Slice empty("");
    h->request = grpc::ByteBuffer(&empty, 1);
    grpc::GenericStub stub(h->channel);
    stub.UnaryCall(&h->context, "/chat.internal.CallbackHold/Hold",
                   grpc::StubOptions(), &h->request, &h->response,
                   [](grpc::Status /*cancelled*/) {});
    return h;
  }();
  (void)holder;
}

}  // namespace chat::gateway
