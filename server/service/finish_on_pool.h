#ifndef CHAT_SERVER_SERVICE_FINISH_ON_POOL_H_
#define CHAT_SERVER_SERVICE_FINISH_ON_POOL_H_

// The shape of every unary RPC that does store I/O: authenticate, then run
// the work on a thread pool, log the call and finish it with the work's
// status, so no gRPC thread waits on the store.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/thread_pool.h"
#include "grpcpp/grpcpp.h"
#include "server/service/authenticator.h"
#include "server/service/call_log.h"
#include "server/service/grpc_status.h"
#include "server/service/rate_limit_metadata.h"

namespace chat {

// Authenticates the call, then runs `work(caller)` (returning the call's
// status; it fills the response) on `pool` and finishes the call with it. A
// call refused by a rate limit says when to retry (RefusalMetadata).
template <typename Work>
grpc::ServerUnaryReactor* FinishOnPool(grpc::CallbackServerContext* context,
                                       absl::string_view rpc,
                                       Authenticator* authenticator,
                                       ThreadPool* pool, Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  authenticator->Authenticate(
      CredentialsOf(*context), [context, reactor, pool, work = std::move(work),
                                log = StartCallLog(*context, rpc)](
                                   absl::StatusOr<Caller> caller) mutable {
        if (!caller.ok()) {
          LogCall(log, caller.status());
          reactor->Finish(ToGrpcStatus(caller.status()));
          return;
        }
        log.tenant = caller->tenant;
        log.key_id = caller->key_id;
        pool->Schedule([context, reactor, work, log = std::move(log),
                        caller = *std::move(caller)]() mutable {
          absl::Status status = work(caller);
          LogCall(log, status);
          for (const auto& [key, value] : RefusalMetadata(status)) {
            context->AddTrailingMetadata(key, value);
          }
          reactor->Finish(ToGrpcStatus(status));
        });
      });
  return reactor;
}

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_FINISH_ON_POOL_H_
