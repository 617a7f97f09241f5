#ifndef CHAT_SERVER_SERVICE_CALL_LOG_H_
#define CHAT_SERVER_SERVICE_CALL_LOG_H_

// One log line per RPC: who called, which trace it belongs to, how it ended
// and, for a chat turn, what the provider did. Message content appears only
// with --log_content; API keys never (the key's public id does).

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/trace_context.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/chat_types.h"

namespace chat {

// What the line says about the call, gathered as it goes.
struct CallLog {
  std::string rpc;
  std::string request_id;
  // The caller's trace (or a new one if it sent no valid traceparent), with
  // this call's own span id as parent_id.
  TraceContext trace;
  std::string tenant;
  std::string key_id;
  std::string session_id;
  // The user's message, kept only with --log_content.
  std::string message;
  absl::Time started = absl::Now();

  // Fills in the caller's part from the engine request.
  void SetTurn(const ChatTurnRequest& request);
};

// Starts the record of a call to `rpc`: the x-request-id and traceparent
// metadata, and the time.
CallLog StartCallLog(const grpc::CallbackServerContext& context,
                     absl::string_view rpc);
// The same for a call made without gRPC (ChatServiceImpl::ChatLocal), from
// the metadata it would have carried.
CallLog StartCallLog(
    const std::vector<std::pair<std::string, std::string>>& metadata,
    absl::string_view rpc);

// The traceparent sent to the provider: the call's trace, this call's span
// as parent.
std::string ProviderTraceparent(const CallLog& log);

// Logs the line for a chat turn that ended with `result`.
void LogTurnCall(const CallLog& log,
                 const absl::StatusOr<ChatTurnResult>& result);

// Logs the line for any other call, ended with `status`.
void LogCall(const CallLog& log, const absl::Status& status);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_CALL_LOG_H_
