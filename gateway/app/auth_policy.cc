#include "gateway/app/auth_policy.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "common/net_address.h"
#include "grpcpp/client_context.h"

namespace chat::gateway {
namespace {

// Between attempts that failed at once (chat-server answering UNAVAILABLE
// while it starts or stops): not a busy loop, and well below --backend_wait.
constexpr absl::Duration kRetryPause = absl::Milliseconds(200);
// The longest one attempt waits, so that a stop request is noticed.
constexpr absl::Duration kAttemptWait = absl::Seconds(1);

constexpr char kWhatToDo[] =
    "create an API key on chat-server (`chat-server keys create "
    "--tenant=NAME --name=NAME`, or POST /v1/admin/keys with the admin key) "
    "so that callers must present one, or pass --allow_anonymous "
    "(CHAT_GATEWAY_ALLOW_ANONYMOUS=true) to serve without keys on purpose";

}  // namespace

bool KeysCrossNetworkInClear(absl::string_view backend, bool backend_tls) {
  if (backend_tls) return false;
  for (absl::string_view address :
       absl::StrSplit(backend, ',', absl::SkipWhitespace())) {
    if (!IsLoopbackHost(address)) return true;
  }
  return false;
}

absl::Status CheckBackendAuthPolicy(
    BackendSet& backends, absl::Duration wait,
    const std::function<bool()>& stop_requested) {
  const absl::Time deadline = absl::Now() + wait;
  grpc::Status last;
  while (true) {
    if (stop_requested()) {
      return absl::CancelledError(
          "stopped while waiting for chat-server's answer");
    }
    grpc::ClientContext context;
    context.set_deadline(
        absl::ToChronoTime(std::min(deadline, absl::Now() + kAttemptWait)));
    // Waits for the channel to connect (and for chat-server's health check
    // to say SERVING) instead of failing at once while it starts.
    context.set_wait_for_ready(true);
    chat::admin::v1::GetAuthPolicyRequest request;
    chat::admin::v1::GetAuthPolicyResponse response;
    // Picked again for each attempt: with several backends, the one that
    // comes up first answers.
    chat::admin::v1::AdminService::Stub stub(backends.Pick());
    last = stub.GetAuthPolicy(&context, request, &response);
    if (last.ok()) {
      if (!response.anonymous_remote_allowed()) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat(
          "chat-server serves callers that have no API key, and --listen is "
          "not a loopback address, so anyone who reaches this gateway could "
          "use it: ",
          kWhatToDo));
    }
    if (last.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "chat-server has no chat.admin.v1.AdminService (it predates API "
          "keys and serves everyone), and --listen is not a loopback "
          "address: upgrade chat-server and ",
          kWhatToDo));
    }
    if (absl::Now() >= deadline) break;
    // An attempt that ran out its own wait already paused; one refused at
    // once (UNAVAILABLE) pauses here.
    if (last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      if (absl::Now() + kRetryPause >= deadline) break;
      absl::SleepFor(kRetryPause);
    }
  }
  return absl::UnavailableError(absl::StrCat(
      "chat-server did not say whether it requires API keys within "
      "--backend_wait=",
      absl::FormatDuration(wait),
      " (last error: ", static_cast<int>(last.error_code()), " ",
      last.error_message(), "); is --backend right and chat-server up?"));
}

}  // namespace chat::gateway
