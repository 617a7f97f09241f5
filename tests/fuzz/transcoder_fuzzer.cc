// The gateway's JSON transcoding on arbitrary requests to chat.v1's REST
// routes. The input is "METHOD PATH[?QUERY]\nBODY": the route table matches
// METHOD and PATH (or, when nothing matches, the input's size picks a route
// and nothing is bound), then BuildRequest reads the body, query and path
// variables into the request message. The same body is also read as the
// route's response message, which is printed back (MessageToJson,
// SplitStreamEvent) as the gateway prints answers. Checks: CheckJsonObject
// agrees with a JSON parser; whatever BuildRequest accepts prints as JSON
// that reads back into an equal message; whatever the flat fast path
// (ReadFlatJsonObject) reads, protobuf's parser reads into the same bytes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "chat/v1/chat.pb.h"
#include "gateway/transcode/flat_json.h"
#include "gateway/transcode/path_template.h"
#include "gateway/transcode/routes.h"
#include "gateway/transcode/transcoder.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_check.h"

namespace {

using chat::gateway::Binding;
using chat::gateway::BuildRequest;
using chat::gateway::MessageToJson;
using google::protobuf::Descriptor;
using google::protobuf::Message;

const chat::gateway::RouteTable& Routes() {
  static const chat::gateway::RouteTable* const table = [] {
    absl::StatusOr<chat::gateway::RouteTable> t =
        chat::gateway::RouteTable::FromServices(
            {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
                "ChatService")});
    FUZZ_CHECK(t.ok() && !t->routes().empty(), "chat.v1's routes do not load");
    return new chat::gateway::RouteTable(*std::move(t));
  }();
  return *table;
}

bool Equal(const Message& a, const Message& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  return differencer.Compare(a, b);
}

// Prints `message` as the gateway does and reads the JSON back.
void CheckRoundTrip(const Message& message) {
  const std::string json = MessageToJson(message);
  absl::StatusOr<std::unique_ptr<Message>> again =
      BuildRequest(message.GetDescriptor(), "*", json, {}, {});
  FUZZ_CHECK(again.ok(), "printed JSON does not read back");
  FUZZ_CHECK(Equal(message, **again),
             "printed JSON reads back as another message");
}

// The fast path may only take a body protobuf's parser reads the same way.
void CheckFlatAgrees(const Descriptor* type, absl::string_view body) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  std::unique_ptr<Message> fast(prototype->New());
  if (!chat::gateway::ReadFlatJsonObject(body, fast.get())) return;
  FUZZ_CHECK(chat::gateway::CheckJsonObject(body).ok(),
             "the flat reader took malformed JSON");
  std::unique_ptr<Message> slow(prototype->New());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(std::string(body),
                                                         slow.get(), options)
                 .ok(),
             "the flat reader took what protobuf refuses");
  FUZZ_CHECK(fast->SerializeAsString() == slow->SerializeAsString(),
             "the flat reader and protobuf read different messages");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::pair<absl::string_view, absl::string_view> head_body =
      absl::StrSplit(input, absl::MaxSplits('\n', 1));
  std::pair<absl::string_view, absl::string_view> method_target =
      absl::StrSplit(head_body.first, absl::MaxSplits(' ', 1));
  std::pair<absl::string_view, absl::string_view> path_query =
      absl::StrSplit(method_target.second, absl::MaxSplits('?', 1));
  const absl::string_view body = head_body.second;

  const bool is_object = chat::gateway::CheckJsonObject(body).ok();
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  FUZZ_CHECK(is_object == (!parsed.is_discarded() && parsed.is_object()),
             "CheckJsonObject disagrees with the JSON parser");

  const chat::gateway::RouteTable& routes = Routes();
  chat::gateway::RouteMatch match =
      routes.Match(method_target.first, path_query.first);
  const chat::gateway::Route* route = match.route;
  if (match.kind != chat::gateway::RouteMatch::kFound) {
    route = &routes.routes()[size % routes.routes().size()];
    match.bindings.clear();
  }

  CheckFlatAgrees(route->method->input_type(), body);
  absl::StatusOr<std::unique_ptr<Message>> request = BuildRequest(
      route->method->input_type(), route->body, body, match.bindings,
      chat::gateway::ParseQueryString(path_query.second));
  if (request.ok()) {
    CheckRoundTrip(**request);
  } else {
    FUZZ_CHECK(!request.status().message().empty(),
               "a refusal that says nothing");
  }

  const Descriptor* response_type = route->method->output_type();
  absl::StatusOr<std::unique_ptr<Message>> response =
      BuildRequest(response_type, "*", body, {}, {});
  if (response.ok()) {
    CheckRoundTrip(**response);
    (void)chat::gateway::SplitStreamEvent(**response);
  }
  return 0;
}
