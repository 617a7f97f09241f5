// ChatServiceImpl's export and import RPCs (issue 13.5), apart from the
// chat RPCs in chat_service_impl.cc: ExportSession, ExportSessions (a server
// stream, one session per message) and ImportSession.

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/time_format.h"
#include "server/engine/validation.h"
#include "server/service/authenticator.h"
#include "server/service/call_log.h"
#include "server/service/chat_service_impl.h"
#include "server/service/finish_on_pool.h"
#include "server/service/grpc_status.h"
#include "server/service/session_export.h"

namespace chat {
namespace {

// Sessions listed per store call while ExportSessions walks a tenant.
constexpr int kExportListPageSize = 100;

absl::Status NotFoundOrStatus(const absl::Status& status,
                              const std::string& session_id) {
  if (absl::IsNotFound(status)) {
    return absl::NotFoundError(
        absl::StrCat("session ", session_id, " not found"));
  }
  return status;
}

// Streams every session of one tenant, one per message. The store is read
// on the pool, one session at a time, and only once the previous message
// was written, so a slow client holds no more than one session in memory
// and no thread. Exactly one of (a pool job, a write) is pending at any
// time, which orders every use of the members below; OnCancel only sets
// `cancelled_`. Deletes itself in OnDone.
class ExportSessionsReactor final
    : public grpc::ServerWriteReactor<chat::v1::ExportSessionsResponse> {
 public:
  ExportSessionsReactor(store::ConversationStore* store, ThreadPool* pool,
                        CallLog log)
      : store_(store), pool_(pool), log_(std::move(log)) {}

  // Called once authentication has answered.
  void Start(absl::StatusOr<Caller> caller) {
    if (!caller.ok()) return End(caller.status());
    tenant_ = caller->tenant;
    log_.tenant = caller->tenant;
    log_.key_id = caller->key_id;
    pool_->Schedule([this] { WriteNext(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(absl::CancelledError("the client went away"));
    pool_->Schedule([this] { WriteNext(); });
  }

  void OnCancel() override { cancelled_.store(true); }

  void OnDone() override { delete this; }

 private:
  // On the pool: exports the next session and starts its write, or ends the
  // stream.
  void WriteNext() {
    for (;;) {
      if (cancelled_.load()) {
        return End(absl::CancelledError("the call was cancelled"));
      }
      if (pending_.empty()) {
        if (listed_all_) return End(absl::OkStatus());
        absl::StatusOr<store::SessionPage> page =
            store_->ListSessions(tenant_, kExportListPageSize, page_token_);
        if (!page.ok()) return End(page.status());
        for (store::SessionInfo& info : page->sessions) {
          pending_.push_back(std::move(info.session_id));
        }
        page_token_ = std::move(page->next_page_token);
        listed_all_ = page_token_.empty();
        continue;
      }
      const std::string session_id = std::move(pending_.front());
      pending_.pop_front();
      absl::StatusOr<store::SessionArchive> archive =
          store_->ExportSession({tenant_, session_id});
      // Deleted since it was listed: it is no longer the tenant's.
      if (absl::IsNotFound(archive.status())) continue;
      if (!archive.ok()) return End(archive.status());
      *response_.mutable_session() = ToSessionExport(*archive);
      StartWrite(&response_);
      return;
    }
  }

  void End(const absl::Status& status) {
    LogCall(log_, status);
    Finish(ToGrpcStatus(status));
  }

  store::ConversationStore* const store_;
  ThreadPool* const pool_;
  CallLog log_;
  std::string tenant_;
  // Listed and not yet exported, in listing order.
  std::deque<std::string> pending_;
  std::string page_token_;
  bool listed_all_ = false;
  // The message being written; untouched until OnWriteDone.
  chat::v1::ExportSessionsResponse response_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

grpc::ServerUnaryReactor* ChatServiceImpl::ExportSession(
    grpc::CallbackServerContext* context,
    const chat::v1::ExportSessionRequest* request,
    chat::v1::ExportSessionResponse* response) {
  return FinishOnPool(
      context, "ExportSession", authenticator_, pool_,
      [this, request, response](const Caller& caller) -> absl::Status {
        if (absl::Status s = ValidateSessionId(request->session_id());
            !s.ok()) {
          return s;
        }
        const std::string& format = request->format();
        if (!format.empty() && format != "json" && format != "markdown") {
          return absl::InvalidArgumentError(absl::StrCat(
              "format must be \"json\" or \"markdown\", got \"", format, "\""));
        }
        absl::StatusOr<store::SessionArchive> archive =
            store_->ExportSession({caller.tenant, request->session_id()});
        if (!archive.ok()) {
          return NotFoundOrStatus(archive.status(), request->session_id());
        }
        if (format == "markdown") {
          response->set_markdown(RenderSessionMarkdown(*archive));
        } else {
          *response->mutable_session() = ToSessionExport(*archive);
        }
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<chat::v1::ExportSessionsResponse>*
ChatServiceImpl::ExportSessions(
    grpc::CallbackServerContext* context,
    const chat::v1::ExportSessionsRequest* /*request*/) {
  auto* reactor = new ExportSessionsReactor(
      store_, pool_, StartCallLog(*context, "ExportSessions"));
  authenticator_->Authenticate(CredentialsOf(*context),
                               [reactor](absl::StatusOr<Caller> caller) {
                                 reactor->Start(std::move(caller));
                               });
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::ImportSession(
    grpc::CallbackServerContext* context,
    const chat::v1::ImportSessionRequest* request,
    chat::v1::ImportSessionResponse* response) {
  return FinishOnPool(
      context, "ImportSession", authenticator_, pool_,
      [this, context, request, response](const Caller& caller) -> absl::Status {
        if (!request->has_session()) {
          return absl::InvalidArgumentError("session: required");
        }
        absl::StatusOr<store::SessionArchive> archive =
            FromSessionExport(request->session());
        if (!archive.ok()) return archive.status();
        // A session that does not exist yet must fit under the tenant's
        // limit, as one made by a turn or CreateSession must (and is checked
        // before the key is charged, as theirs is). Without a limit there is
        // nothing to look up.
        const int64_t max_sessions = engine_->options().max_sessions_per_tenant;
        if (max_sessions > 0) {
          absl::StatusOr<store::SessionInfo> existing =
              store_->GetSession({caller.tenant, archive->session_id});
          if (!existing.ok() && !absl::IsNotFound(existing.status())) {
            return existing.status();
          }
          if (!existing.ok()) {
            if (absl::Status room =
                    CheckRoomForSession(*store_, caller.tenant, max_sessions);
                !room.ok()) {
              return room;
            }
          }
        }
        if (absl::Status s = ChargeSessionWrite(caller, *context); !s.ok()) {
          return s;
        }
        if (absl::Status s = store_->ImportSession(caller.tenant, *archive,
                                                   request->replace());
            !s.ok()) {
          return s;
        }
        absl::StatusOr<store::SessionInfo> info =
            store_->GetSession({caller.tenant, archive->session_id});
        if (!info.ok()) return info.status();
        chat::v1::SessionSummary* summary = response->mutable_session();
        summary->set_session_id(info->session_id);
        summary->set_turns(info->turn_count);
        summary->set_created_at(FormatTimestamp(info->created_at));
        summary->set_updated_at(FormatTimestamp(info->updated_at));
        summary->set_title(info->title);
        return absl::OkStatus();
      });
}

}  // namespace chat
