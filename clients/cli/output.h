#ifndef CHAT_CLIENTS_CLI_OUTPUT_H_
#define CHAT_CLIENTS_CLI_OUTPUT_H_

// What chat-cli prints, as strings: the text a person reads, the JSON a
// script reads (protobuf's JSON printer with the proto's field names, one
// object per line), and error lines. No I/O here, so every shape is tested
// as a string.

#include <string>

#include "chat/v1/chat.pb.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace chat::cli {

// `message` as one line of JSON with proto field names (session_id, not
// sessionId), fields at their default value included so scripts always find
// them, and a trailing newline.
std::string ToJsonLine(const google::protobuf::Message& message);

// Text for people, each ending in a newline.
std::string FormatHistory(const chat::v1::GetHistoryResponse& history);
std::string FormatSessions(const chat::v1::ListSessionsResponse& sessions);
std::string FormatStats(const chat::v1::GetStatsResponse& stats);
// "SESSION  title", one line.
std::string FormatUpdate(const chat::v1::UpdateSessionResponse& updated);
// One hit a line: session, message number, role, and the snippet with each
// match in [brackets].
std::string FormatSearch(const chat::v1::SearchMessagesResponse& found);
std::string FormatStatus(const chat::v1::GetStatusResponse& status);
std::string FormatReset(const chat::v1::ResetSessionResponse& reset);
std::string FormatDelete(const chat::v1::DeleteSessionResponse& deleted);

// "CODE: message" for a failed call, e.g. "UNAUTHENTICATED: invalid API
// key", and the ConnectionHint in parentheses if there is one. Any
// occurrence of `secret` (the API key; skipped when empty) is replaced, so
// no server or library message can echo the key to a terminal.
std::string FormatError(const grpc::Status& status, const std::string& secret);

// For an UNAVAILABLE whose message shows why the connection failed (a TLS
// handshake that failed on the server's certificate or name, TLS against a
// plaintext port, a connection the server closed), which flag to look at;
// else "".
std::string ConnectionHint(const grpc::Status& status);

// The status code's name as the gRPC spec spells it ("NOT_FOUND").
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_OUTPUT_H_
