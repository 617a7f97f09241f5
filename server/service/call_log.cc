#include "server/service/call_log.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "common/logging.h"
#include "server/service/rate_limit_metadata.h"

namespace chat {
namespace {

std::string MetadataValue(const grpc::CallbackServerContext& context,
                          absl::string_view key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}
using ::chat::MetadataValue;  // The pairs' overload.

template <typename Metadata>
CallLog StartCallLogFrom(const Metadata& metadata, absl::string_view rpc) {
  CallLog log;
  log.rpc = std::string(rpc);
  log.request_id = MetadataValue(metadata, "x-request-id");
  std::optional<TraceContext> caller =
      ParseTraceparent(MetadataValue(metadata, "traceparent"));
  log.trace = caller.has_value() ? *std::move(caller) : NewTraceContext();
  log.trace.parent_id = NewSpanId();
  return log;
}

LogFields CommonFields(const CallLog& log, const absl::Status& status) {
  LogFields fields;
  fields.Add("rpc", log.rpc)
      .Add("request_id", log.request_id)
      .Add("trace_id", log.trace.trace_id)
      .Add("span_id", log.trace.parent_id)
      .Add("tenant", log.tenant)
      .Add("key_id", log.key_id)
      .Add("session", log.session_id)
      .Add("status", absl::StatusCodeToString(status.code()))
      .AddMillis("latency_ms", absl::Now() - log.started);
  if (!status.ok()) fields.Add("error", status.message());
  return fields;
}

}  // namespace

void CallLog::SetTurn(const ChatTurnRequest& request) {
  tenant = request.tenant;
  key_id = request.key_id;
  session_id = request.session_id;
  if (LogContentEnabled()) message = request.message;
}

CallLog StartCallLog(const grpc::CallbackServerContext& context,
                     absl::string_view rpc) {
  return StartCallLogFrom(context, rpc);
}

CallLog StartCallLog(
    const std::vector<std::pair<std::string, std::string>>& metadata,
    absl::string_view rpc) {
  return StartCallLogFrom(metadata, rpc);
}

std::string ProviderTraceparent(const CallLog& log) {
  if (log.trace.trace_id.empty()) return "";
  return FormatTraceparent(log.trace);
}

void LogTurnCall(const CallLog& log,
                 const absl::StatusOr<ChatTurnResult>& result) {
  LogFields fields = CommonFields(log, result.status());
  if (result.ok()) {
    if (result->time_to_first_token.has_value()) {
      fields.AddMillis("ttft_ms", *result->time_to_first_token);
    }
    fields.Add("input_tokens", result->input_tokens)
        .Add("output_tokens", result->output_tokens)
        .Add("model", result->model)
        .Add("provider", result->provider)
        .Add("provider_request_id", result->provider_request_id)
        .Add("retries", result->provider_retries);
    // Absent when the model has no price: no cost, not a zero cost.
    if (result->cost_usd.has_value()) fields.Add("cost_usd", *result->cost_usd);
  }
  if (LogContentEnabled()) {
    fields.Add("message", log.message);
    if (result.ok()) fields.Add("response", result->response);
  }
  Log(result.ok() ? LogSeverity::kInfo : LogSeverity::kWarning, "turn", fields);
}

void LogCall(const CallLog& log, const absl::Status& status) {
  Log(LogSeverity::kInfo, "call", CommonFields(log, status));
}

}  // namespace chat
