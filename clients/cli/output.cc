#include "clients/cli/output.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/util/json_util.h"

namespace chat::cli {

std::string ToJsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Printing a message we hold cannot fail; if it ever did, an empty object
  // keeps the output parseable.
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    json = "{}";
  }
  return json + "\n";
}

std::string FormatHistory(const chat::v1::GetHistoryResponse& history) {
  std::string out =
      absl::StrCat("session ", history.session_id(), ": ", history.turn_count(),
                   " turn", history.turn_count() == 1 ? "" : "s");
  if (!history.created_at().empty()) {
    absl::StrAppend(&out, ", created ", history.created_at());
  }
  absl::StrAppend(&out, "\n");
  if (!history.system_prompt().empty()) {
    absl::StrAppend(&out, "system: ", history.system_prompt(), "\n");
  }
  // Once a session has branches, turns are named by id (what edit,
  // regenerate and switch take) and their versions counted; a linear
  // history prints as it always did.
  bool branched = false;
  for (int i = 0; i < history.messages_size(); ++i) {
    const chat::v1::Message& message = history.messages(i);
    // 0: a server from before branches, whose histories are linear.
    if (message.turn_id() != 0 && (message.turn_id() != i / 2 + 1 ||
                                   message.sibling_turn_ids_size() > 1)) {
      branched = true;
    }
  }
  for (const chat::v1::Message& message : history.messages()) {
    absl::StrAppend(&out, "[", message.timestamp(), "] ");
    if (branched && message.role() == "user") {
      absl::StrAppend(&out, "(turn ", message.turn_id());
      if (message.sibling_turn_ids_size() > 1) {
        absl::StrAppend(&out, ", version ", message.sibling_index() + 1, "/",
                        message.sibling_turn_ids_size(), ": turns ",
                        absl::StrJoin(message.sibling_turn_ids(), ","));
      }
      absl::StrAppend(&out, ") ");
    }
    absl::StrAppend(&out, message.role(), ": ", message.content(), "\n");
  }
  return out;
}

std::string FormatSessions(const chat::v1::ListSessionsResponse& sessions) {
  if (sessions.sessions().empty()) return "no sessions\n";
  size_t width = 7;  // "SESSION"
  for (const chat::v1::SessionSummary& s : sessions.sessions()) {
    width = std::max(width, s.session_id().size());
  }
  std::string out =
      absl::StrFormat("%-*s  %5s  %s\n", width, "SESSION", "TURNS", "UPDATED");
  for (const chat::v1::SessionSummary& s : sessions.sessions()) {
    absl::StrAppend(&out,
                    absl::StrFormat("%-*s  %5d  %s\n", width, s.session_id(),
                                    s.turns(), s.updated_at()));
  }
  return out;
}

std::string FormatUpdate(const chat::v1::UpdateSessionResponse& updated) {
  const chat::v1::SessionSummary& s = updated.session();
  return absl::StrCat(s.session_id(), "  ",
                      s.title().empty() ? "(no title)" : s.title(), "\n");
}

std::string FormatSearch(const chat::v1::SearchMessagesResponse& found) {
  if (found.hits().empty()) return "no matches\n";
  std::string out;
  for (const chat::v1::SearchHit& hit : found.hits()) {
    // Markers U+E000 / U+E001 around each match; newlines kept out of the
    // one-line listing.
    std::string snippet = absl::StrReplaceAll(
        hit.snippet(),
        {{"\xEE\x80\x80", "["}, {"\xEE\x80\x81", "]"}, {"\n", " "}});
    absl::StrAppend(&out, hit.session_id(), " #", hit.message_index(), " ",
                    hit.role(), ": ", snippet, "\n");
  }
  if (!found.next_page_token().empty()) absl::StrAppend(&out, "(more)\n");
  return out;
}

std::string FormatStats(const chat::v1::GetStatsResponse& stats) {
  std::string out = absl::StrCat(
      "sessions:      ", stats.total_sessions(), "\n",
      "messages:      ", stats.total_messages(), "\n", "per session:   ",
      absl::StrFormat("%.2f", stats.avg_messages_per_session()), "\n",
      "input tokens:  ", stats.total_input_tokens(), "\n",
      "output tokens: ", stats.total_output_tokens(), "\n");
  if (stats.has_total_cost_usd()) {
    absl::StrAppend(&out, "cost:          $",
                    absl::StrFormat("%.6f", stats.total_cost_usd()), "\n");
  }
  return out;
}

std::string FormatStatus(const chat::v1::GetStatusResponse& status) {
  return absl::StrCat(status.status(), " (", status.service(), ")\n");
}

std::string FormatReset(const chat::v1::ResetSessionResponse& reset) {
  if (reset.status() == "not_found") {
    return absl::StrCat("no session ", reset.session_id(), "\n");
  }
  return absl::StrCat("reset ", reset.session_id(), " (had ",
                      reset.previous_turns(), " turn",
                      reset.previous_turns() == 1 ? "" : "s", ")\n");
}

std::string FormatDelete(const chat::v1::DeleteSessionResponse& deleted) {
  if (deleted.status() == "not_found") {
    return absl::StrCat("no session ", deleted.session_id(), "\n");
  }
  return absl::StrCat("deleted ", deleted.session_id(), "\n");
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

std::string ConnectionHint(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return "";
  // A server that requires a client certificate closes the connection
  // after the handshake (TLS 1.3), which the client sees either way.
  static constexpr absl::string_view kClosedHint =
      "the server closed the connection: it may want TLS (--tls), or a "
      "client certificate (--client_cert, --client_key)";
  // gRPC 1.51's words for a connection that failed, and what to do about it.
  static constexpr struct {
    absl::string_view seen;
    absl::string_view hint;
  } kHints[] = {
      {"certificate verify failed",
       "the server's certificate is not signed by a CA chat-cli trusts; "
       "--ca_file names the CA to trust"},
      {"is not in peer certificate",
       "the server's certificate does not name the host in --server; "
       "--server_name gives the name to check"},
      {"wrong version number",
       "the server does not speak TLS on that port; leave out --tls"},
      {"Socket closed", kClosedHint},
      {"Connection reset by peer", kClosedHint},
  };
  for (const auto& [seen, hint] : kHints) {
    if (absl::StrContains(status.error_message(), seen)) {
      return std::string(hint);
    }
  }
  return "";
}

std::string FormatError(const grpc::Status& status, const std::string& secret) {
  std::string message = status.error_message();
  if (!secret.empty()) {
    absl::StrReplaceAll({{secret, "[api key]"}}, &message);
  }
  std::string line =
      absl::StrCat(StatusCodeName(status.error_code()), ": ", message);
  const std::string hint = ConnectionHint(status);
  if (!hint.empty()) absl::StrAppend(&line, " (", hint, ")");
  return line;
}

}  // namespace chat::cli
