// MessageToJson's one-pass printer against its reference
// (MessageToJsonViaProtobuf) on arbitrary messages. The input's first byte
// picks a message type among those the two services' RPCs reach; the rest
// is that message in the binary wire format (ParseFromString), so any
// value the gateway can receive from the server is reachable. Check: both
// printers give the same bytes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "chat/admin/v1/admin.pb.h"
#include "chat/v1/chat.pb.h"
#include "gateway/transcode/transcoder.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::Message;

void Collect(const Descriptor* type, std::set<const Descriptor*>* seen,
             std::vector<const Message*>* out) {
  if (!seen->insert(type).second) return;
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  FUZZ_CHECK(prototype != nullptr, "a reachable type has no generated class");
  out->push_back(prototype);
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->message_type() != nullptr) {
      Collect(type->field(i)->message_type(), seen, out);
    }
  }
}

// Prototypes of every type the services take or return, in a fixed order.
const std::vector<const Message*>& Types() {
  static const std::vector<const Message*>* const types = [] {
    auto* out = new std::vector<const Message*>;
    std::set<const Descriptor*> seen;
    for (const google::protobuf::ServiceDescriptor* service :
         {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
              "ChatService"),
          chat::admin::v1::KeyLimits::descriptor()->file()->FindServiceByName(
              "AdminService")}) {
      FUZZ_CHECK(service != nullptr, "a service is missing");
      for (int i = 0; i < service->method_count(); ++i) {
        Collect(service->method(i)->input_type(), &seen, out);
        Collect(service->method(i)->output_type(), &seen, out);
      }
    }
    return out;
  }();
  return *types;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // Invalid wire data is logged by protobuf; the log is noise here.
  google::protobuf::LogSilencer quiet;
  const std::vector<const Message*>& types = Types();
  const Message* prototype = types[data[0] % types.size()];
  std::unique_ptr<Message> message(prototype->New());
  absl::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!message->ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    return 0;
  }
  const std::string fast = chat::gateway::MessageToJson(*message);
  const std::string reference =
      chat::gateway::MessageToJsonViaProtobuf(*message);
  if (fast != reference) {
    std::fprintf(stderr, "type %s\nfast:      %s\nreference: %s\n",
                 message->GetDescriptor()->full_name().c_str(), fast.c_str(),
                 reference.c_str());
  }
  FUZZ_CHECK(fast == reference, "the one-pass printer differs");
  return 0;
}
