#ifndef CHAT_TESTS_TESTING_NEW_BINDINGS_SERVICE_H_
#define CHAT_TESTS_TESTING_NEW_BINDINGS_SERVICE_H_

#include "google/protobuf/descriptor.h"

namespace chat::testing {

// chat.v1.ChatService with one more additional binding on ChatStream
// (POST /v2/chat-stream, body "*") and on ListSessions (GET /v2/sessions):
// bindings that are not the template's, to show they get the standard
// behaviour. Built once into a pool that lives as long as the program (route
// tables point into it); its messages are chat.proto's generated ones.
// nullptr if the file does not build.
const google::protobuf::ServiceDescriptor* ChatServiceWithNewBindings();

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_NEW_BINDINGS_SERVICE_H_
