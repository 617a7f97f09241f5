#ifndef CHAT_GATEWAY_APP_LOCAL_METHOD_H_
#define CHAT_GATEWAY_APP_LOCAL_METHOD_H_

// Methods the gateway answers without a gRPC call, in the process that
// serves them: chat-server's own HTTP port (server/app/embedded_http.*)
// calls its service directly for its hottest routes (/chat, its streams and
// their resumes).
// Every other method goes through the backend channels.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/transcode/backend_call.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace chat::gateway {

// Why the gateway cancels a local call.
enum class LocalCancelReason {
  kClientGone,  // The HTTP client left.
  kDeadline,    // The call's deadline passed (it ends DEADLINE_EXCEEDED).
  kShutdown,    // The gateway is shutting down (Gateway::CancelAll).
};

// A local call's cancel, as its method returns it: callable from any
// thread, more than once (with the same or another reason), and after the
// call ended.
using LocalCallCancel = std::function<void(LocalCancelReason)>;

// A local call's outcome, as the RPC would have answered.
struct LocalAnswer {
  grpc::Status status;
  // A message of the method's output type, when the status is OK.
  std::unique_ptr<google::protobuf::Message> response;
  // What the RPC would have sent as initial and trailing metadata.
  BackendCall::Metadata initial_metadata;
  BackendCall::Metadata trailing_metadata;
};

// One unary method served in this process. Thread-safe.
class LocalUnaryMethod {
 public:
  LocalUnaryMethod() = default;
  LocalUnaryMethod(const LocalUnaryMethod&) = delete;
  LocalUnaryMethod& operator=(const LocalUnaryMethod&) = delete;
  virtual ~LocalUnaryMethod() = default;

  // Starts a call with `request` (a message of the method's input type,
  // read during Start only: it passes as it is, never serialized) and the
  // metadata and deadline the RPC would carry; the deadline is the
  // gateway's to enforce (it cancels the call then). `done` runs exactly once,
  // on any thread, possibly before Start returns. Returns the call's cancel:
  // `done` then says CANCELLED unless it ran already.
  virtual LocalCallCancel Start(const google::protobuf::Message& request,
                                const BackendCall::Metadata& metadata,
                                absl::Time deadline,
                                std::function<void(LocalAnswer)> done) = 0;
};

// Local methods by the method's full name ("chat.v1.ChatService.Chat").
using LocalUnaryMethods =
    absl::flat_hash_map<std::string, std::shared_ptr<LocalUnaryMethod>>;

// The gateway's end of a local server-streaming call: what becomes of its
// events on the HTTP side, as of a stream's messages read from gRPC. The
// method calls Write and Finish one at a time, never concurrently (Finish
// may come inside a Write, from its `written`).
class LocalStreamSink {
 public:
  LocalStreamSink() = default;
  LocalStreamSink(const LocalStreamSink&) = delete;
  LocalStreamSink& operator=(const LocalStreamSink&) = delete;
  virtual ~LocalStreamSink() = default;
  // One event, a message of the method's output type (read during the call
  // only). `written(true)` once the client has it, `written(false)` if the
  // client is gone, on any thread, possibly before Write returns; the method
  // writes the next event only after either, as gRPC's flow control would.
  // A client that is gone also cancels the call (kClientGone), just before
  // or just after `written(false)`.
  // `initial_metadata`: what the RPC would send as its initial metadata,
  // the same on every call.
  virtual void Write(const google::protobuf::Message& event,
                     const BackendCall::Metadata& initial_metadata,
                     std::function<void(bool)> written) = 0;
  // The call's end, after the last write's `written`: its status and the
  // RPC's response metadata. Once, last.
  virtual void Finish(grpc::Status status,
                      const BackendCall::Metadata& initial_metadata,
                      const BackendCall::Metadata& trailing_metadata) = 0;
};

// One server-streaming method served in this process. Thread-safe.
class LocalStreamMethod {
 public:
  LocalStreamMethod() = default;
  LocalStreamMethod(const LocalStreamMethod&) = delete;
  LocalStreamMethod& operator=(const LocalStreamMethod&) = delete;
  virtual ~LocalStreamMethod() = default;

  // Starts a call with `request` (a message of the method's input type, read
  // during Start only) and the metadata and deadline the RPC would
  // carry, writing to `sink`; the deadline is the gateway's to enforce.
  // Returns the call's cancel, as LocalUnaryMethod::Start does; the call
  // then still ends through `sink`.
  virtual LocalCallCancel Start(const google::protobuf::Message& request,
                                const BackendCall::Metadata& metadata,
                                absl::Time deadline,
                                std::shared_ptr<LocalStreamSink> sink) = 0;
};

// Local streaming methods by the method's full name
// ("chat.v1.ChatService.ChatStream").
using LocalStreamMethods =
    absl::flat_hash_map<std::string, std::shared_ptr<LocalStreamMethod>>;

// A local call's cancel, known only once the call started: a Cancel() that
// comes first runs the cancel as it is set. Also the one record of whether
// the deadline cancelled the call. Thread-safe.
class LocalCancel {
 public:
  // The call's cancel, once it started; run at once, for every reason that
  // came, if Cancel() came first.
  void Set(LocalCallCancel cancel);
  // Runs the cancel if it is set (outside any lock: the call may answer
  // inside it), else leaves it to Set. Any thread, more than once.
  void Cancel(LocalCancelReason reason);
  // Cancel(kDeadline) came: a CANCELLED answer then becomes
  // DEADLINE_EXCEEDED, as an RPC past its deadline ends.
  bool deadline_passed() const { return deadline_passed_.load(); }

 private:
  absl::Mutex mu_;
  // The reasons given before Set, in order.
  std::vector<LocalCancelReason> early_ ABSL_GUARDED_BY(mu_);
  bool cancel_set_ ABSL_GUARDED_BY(mu_) = false;
  LocalCallCancel cancel_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> deadline_passed_{false};
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_LOCAL_METHOD_H_
