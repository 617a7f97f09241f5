#ifndef CHAT_SERVER_SERVICE_ADMIN_SERVICE_IMPL_H_
#define CHAT_SERVER_SERVICE_ADMIN_SERVICE_IMPL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "common/thread_pool.h"
#include "server/service/authenticator.h"
#include "server/store/conversation_store.h"

namespace chat {

// The gRPC edge of chat.admin.v1.AdminService, on the callback API: API keys
// and usage, for operators. Every RPC but GetAuthPolicy needs the admin key
// (UNAUTHENTICATED without it, before the request is looked at); store calls
// run on the pool. Keys created or revoked here are forgotten by this
// process's Authenticator at once; other replicas notice within its cache
// lifetime.
class AdminServiceImpl final
    : public chat::admin::v1::AdminService::CallbackService {
 public:
  // All three must outlive the service.
  AdminServiceImpl(store::ConversationStore* store, ThreadPool* pool,
                   Authenticator* authenticator);

  grpc::ServerUnaryReactor* CreateKey(
      grpc::CallbackServerContext* context,
      const chat::admin::v1::CreateKeyRequest* request,
      chat::admin::v1::CreateKeyResponse* response) override;
  grpc::ServerUnaryReactor* ListKeys(
      grpc::CallbackServerContext* context,
      const chat::admin::v1::ListKeysRequest* request,
      chat::admin::v1::ListKeysResponse* response) override;
  grpc::ServerUnaryReactor* RevokeKey(
      grpc::CallbackServerContext* context,
      const chat::admin::v1::RevokeKeyRequest* request,
      chat::admin::v1::RevokeKeyResponse* response) override;
  grpc::ServerUnaryReactor* GetUsage(
      grpc::CallbackServerContext* context,
      const chat::admin::v1::GetUsageRequest* request,
      chat::admin::v1::GetUsageResponse* response) override;
  grpc::ServerUnaryReactor* GetAuthPolicy(
      grpc::CallbackServerContext* context,
      const chat::admin::v1::GetAuthPolicyRequest* request,
      chat::admin::v1::GetAuthPolicyResponse* response) override;

 private:
  store::ConversationStore* const store_;
  ThreadPool* const pool_;
  Authenticator* const authenticator_;
};

// Checks shared with `chat-server keys`: INVALID_ARGUMENT naming `field`.
// A tenant is 1 to 64 characters of [A-Za-z0-9._-].
absl::Status ValidateTenant(absl::string_view field, absl::string_view tenant);
// A key's name is 1 to 128 bytes of printable UTF-8: no C0 or C1 control
// character, no DEL.
absl::Status ValidateKeyName(absl::string_view field, absl::string_view name);
// A key's lifetime (`text` such as "720h"): more than 0 and at most 100
// years, so that now + lifetime is a date every store and client can hold.
absl::StatusOr<absl::Duration> ParseKeyLifetime(absl::string_view field,
                                                absl::string_view text);

// The proto form of a stored key (never its hash).
void ToProto(const store::ApiKey& key, chat::admin::v1::ApiKey* proto);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_ADMIN_SERVICE_IMPL_H_
