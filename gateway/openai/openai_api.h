#ifndef CHAT_GATEWAY_OPENAI_OPENAI_API_H_
#define CHAT_GATEWAY_OPENAI_OPENAI_API_H_

// OpenAI's API on chat-gateway, so that OpenAI's SDKs work against chatd
// with only their base URL changed: a compatibility layer over chat.v1's
// RPCs, not a service of its own in proto/. The OpenAI JSON shapes belong
// to OpenAI and change on its schedule; keeping them here keeps chat.proto
// chatd's own API, while every call still goes through chat-server's gRPC
// API (keys, limits, budgets, metrics, fallback), as REST calls do.
//
//   POST /v1/chat/completions  -> Complete / CompleteStream (stateless)
//   GET  /v1/models            -> ListModels
//   GET  /v1/models/{id}       -> ListModels, one entry
//   POST /v1/responses         -> Chat / ChatStream on a session (stored),
//                                 Complete / CompleteStream (store: false),
//                                 after GetHistory for the earlier turns
//   GET  /v1/responses/{id}    -> GetHistory, one turn
//   POST /v1/conversations     -> ListModels (checks the key), then an id
//                                 (see openai_responses.h)
//   GET  /v1/conversations/{id}, .../items -> GetHistory
//   DELETE /v1/conversations/{id}          -> DeleteSession
//
// Keys travel as OpenAI's SDKs send them, `Authorization: Bearer KEY`,
// forwarded untouched (ForwardedMetadata) for chat-server to check. Errors on
// these routes, and only these, are OpenAI's shape
// (`{"error": {"message", "type", "param", "code"}}`), with the rate-limit
// headers chat-server sends.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/http/http_server.h"
#include "gateway/transcode/backend_call.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/status.h"

namespace chat::gateway {

// What a gRPC call needs from the gateway process: which backend to use and
// the bookkeeping of calls in flight (shutdown cancels them). The gateway
// (gateway/app) implements it; see Gateway for each method's contract.
class BackendCalls {
 public:
  virtual ~BackendCalls() = default;
  virtual void StartOnBackend(
      const BackendCall& call, grpc::ClientContext& context,
      std::function<void(grpc::GenericStub&)> start) = 0;
  virtual bool Resends(const BackendCall& call, const grpc::Status& status) = 0;
  virtual void CallStarted(grpc::ClientContext* context) = 0;
  virtual void CallFinished(grpc::ClientContext* context) = 0;
  virtual grpc::Status ClientVisibleStatus(const grpc::Status& status) = 0;
};

struct ResponsePlan;

// The OpenAI routes. Thread-safe; one instance serves every connection.
class OpenAiApi {
 public:
  // `backends` must outlive this object. `request_timeout`: the deadline of
  // every call.
  OpenAiApi(BackendCalls* backends, absl::Duration request_timeout);

  // Whether `path` is one of OpenAI's routes (above): Handle answers it,
  // unknown methods included.
  static bool Serves(absl::string_view path);
  // The methods `path` answers (for OPTIONS); empty if not Serves(path).
  static std::vector<std::string> AllowedMethods(absl::string_view path);

  // Answers `exchange`, whose path Serves. `headers` go on the answer
  // (request id, trace, CORS).
  void Handle(std::shared_ptr<HttpExchange> exchange, const std::string& method,
              const std::string& path, const std::string& request_id,
              HttpHeaders headers);

 private:
  void ChatCompletions(std::shared_ptr<HttpExchange> exchange,
                       const std::string& request_id, HttpHeaders headers);
  void Models(std::shared_ptr<HttpExchange> exchange, std::string model_id,
              const std::string& request_id, HttpHeaders headers);
  void CreateResponse(std::shared_ptr<HttpExchange> exchange,
                      const std::string& request_id, HttpHeaders headers);
  void RunResponse(std::shared_ptr<HttpExchange> exchange,
                   const std::string& request_id, HttpHeaders headers,
                   std::shared_ptr<ResponsePlan> plan);
  void GetResponse(std::shared_ptr<HttpExchange> exchange, std::string id,
                   const std::string& request_id, HttpHeaders headers);
  void CreateConversation(std::shared_ptr<HttpExchange> exchange,
                          const std::string& request_id, HttpHeaders headers);
  void GetConversation(std::shared_ptr<HttpExchange> exchange, std::string id,
                       const std::string& request_id, HttpHeaders headers);
  void DeleteConversation(std::shared_ptr<HttpExchange> exchange,
                          std::string id, const std::string& request_id,
                          HttpHeaders headers);
  void ConversationItems(std::shared_ptr<HttpExchange> exchange, std::string id,
                         const std::string& request_id, HttpHeaders headers);

  BackendCalls* const backends_;
  const absl::Duration request_timeout_;
};

// Answers `exchange` with `error` in OpenAI's shape.
void RespondOpenAiError(const std::shared_ptr<HttpExchange>& exchange,
                        HttpHeaders headers, int http_status,
                        grpc::StatusCode code, std::string message);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_OPENAI_OPENAI_API_H_
