#include "tests/testing/new_bindings_service.h"

#include "chat/v1/chat.pb.h"
#include "google/api/annotations.pb.h"
#include "google/protobuf/descriptor.pb.h"

namespace chat::testing {

const google::protobuf::ServiceDescriptor* ChatServiceWithNewBindings() {
  static const google::protobuf::ServiceDescriptor* const service = [] {
    auto* pool = new google::protobuf::DescriptorPool(
        google::protobuf::DescriptorPool::generated_pool());
    google::protobuf::FileDescriptorProto file;
    file.set_name("test/chat_service_new_bindings.proto");
    file.set_package("chat.v1");
    file.set_syntax("proto3");
    file.add_dependency("chat/v1/chat.proto");
    file.add_dependency("google/api/annotations.proto");
    google::protobuf::ServiceDescriptorProto* service_proto =
        file.add_service();
    chat::v1::ChatRequest::descriptor()
        ->file()
        ->FindServiceByName("ChatService")
        ->CopyTo(service_proto);
    for (auto& method : *service_proto->mutable_method()) {
      google::api::HttpRule* rule =
          method.mutable_options()->MutableExtension(google::api::http);
      if (method.name() == "ChatStream") {
        google::api::HttpRule* extra = rule->add_additional_bindings();
        extra->set_post("/v2/chat-stream");
        extra->set_body("*");
      } else if (method.name() == "ListSessions") {
        rule->add_additional_bindings()->set_get("/v2/sessions");
      }
    }
    const google::protobuf::FileDescriptor* built = pool->BuildFile(file);
    return built == nullptr ? nullptr : built->service(0);
  }();
  return service;
}

}  // namespace chat::testing
