// CreateSession (issue 14): a session that exists before its first turn, so
// that an empty conversation (the OpenAI layer's POST /v1/conversations, the
// CLI's `new`) is a real session every client of the tenant sees. Stored
// with the store's ImportSession of an archive without turns: one
// transaction, ALREADY_EXISTS for a taken id, on every store.

#include "server/service/create_session.h"

#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/time_format.h"
#include "server/engine/chat_engine.h"
#include "server/engine/session_titler.h"
#include "server/engine/validation.h"
#include "server/service/authenticator.h"
#include "server/service/chat_service_impl.h"
#include "server/service/finish_on_pool.h"

namespace chat {
namespace {

// Server-made ids that were taken (by chance, or by a client that chose an
// id of the same shape) before one was free.
constexpr int kNewIdAttempts = 3;

}  // namespace

std::string NewSessionId() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device random;
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  std::string id = "s-";
  for (int i = 0; i < kNewSessionIdRandomChars; ++i)
    id += kAlphabet[pick(random)];
  return id;
}

absl::StatusOr<store::SessionArchive> EmptySessionFor(
    const chat::v1::CreateSessionRequest& request,
    const std::string& default_system_prompt, const RequestLimits& limits,
    absl::Time now) {
  store::SessionArchive archive;
  if (request.has_session_id()) {
    if (absl::Status s = ValidateSessionId(request.session_id()); !s.ok()) {
      return s;
    }
    archive.session_id = request.session_id();
  } else {
    archive.session_id = NewSessionId();
  }
  if (request.has_system_prompt()) {
    if (absl::Status s = ValidateSystemPrompt(request.system_prompt(), limits);
        !s.ok()) {
      return s;
    }
    archive.system_prompt = request.system_prompt();
  } else {
    archive.system_prompt = default_system_prompt;
  }
  if (request.has_title()) {
    absl::StatusOr<std::string> title = NormalizeTitle(request.title());
    if (!title.ok()) return title.status();
    archive.title = *std::move(title);
  }
  archive.created_at = now;
  archive.updated_at = now;
  return archive;
}

grpc::ServerUnaryReactor* ChatServiceImpl::CreateSession(
    grpc::CallbackServerContext* context,
    const chat::v1::CreateSessionRequest* request,
    chat::v1::CreateSessionResponse* response) {
  return FinishOnPool(
      context, "CreateSession", authenticator_, pool_,
      [this, context, request, response](const Caller& caller) -> absl::Status {
        const ChatEngineOptions& options = engine_->options();
        absl::StatusOr<store::SessionArchive> archive =
            EmptySessionFor(*request, options.default_system_prompt,
                            options.limits, absl::Now());
        if (!archive.ok()) return archive.status();
        // The tenant's room first, as a turn does: a refusal for it is not
        // a request charged to the key.
        if (absl::Status room = CheckRoomForSession(
                *store_, caller.tenant, options.max_sessions_per_tenant);
            !room.ok()) {
          return room;
        }
        if (absl::Status s = ChargeSessionWrite(caller, *context); !s.ok()) {
          return s;
        }
        absl::Status stored;
        for (int attempt = 0; attempt < kNewIdAttempts; ++attempt) {
          stored = store_->ImportSession(caller.tenant, *archive,
                                         /*replace=*/false);
          if (!absl::IsAlreadyExists(stored) || request->has_session_id()) {
            break;
          }
          archive->session_id = NewSessionId();
        }
        if (absl::IsAlreadyExists(stored)) {
          return absl::AlreadyExistsError(
              absl::StrCat("session ", archive->session_id, " already exists"));
        }
        if (!stored.ok()) return stored;
        absl::StatusOr<store::SessionInfo> info =
            store_->GetSession({caller.tenant, archive->session_id});
        if (!info.ok()) return info.status();
        chat::v1::SessionSummary* summary = response->mutable_session();
        summary->set_session_id(info->session_id);
        summary->set_turns(info->turn_count);
        summary->set_created_at(FormatTimestamp(info->created_at));
        summary->set_updated_at(FormatTimestamp(info->updated_at));
        summary->set_title(info->title);
        response->set_system_prompt(info->system_prompt);
        return absl::OkStatus();
      });
}

}  // namespace chat
