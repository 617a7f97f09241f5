# Which includes each layer may not use. Dependencies point down:
#   server: app -> service -> engine -> {llm, store} -> common
#   gateway: app -> openapi -> compat -> transcode -> http -> common
#            app -> openai -> transcode (OpenAI's API over chat.v1)
# and the gateway never reaches into server/. clients/cli (chat-cli) sits on
# the generated stubs, gRPC and common/, beside both binaries, never in them.
# server/app may use the gateway's layers (not the reverse): chat-server's
# --http_listen serves chat-gateway's routes in its own process
# (server/app/embedded_http.*), but not gateway/app/config.h, whose flags
# share names with chat-server's. Read by
# cmake/check_layering.cmake (a ctest entry) and cmake/Layering.cmake.
#
# Each rule: FOLDER|FORBIDDEN-PREFIX,FORBIDDEN-PREFIX,...
set(CHAT_LAYERING_RULES
  "common|server/,gateway/,clients/,grpc/,grpcpp/,chat/v1/,google/protobuf/,google/api/,curl/,sqlite3.h,libpq-fe.h,nlohmann/"
  "server/store|server/llm/,server/engine/,server/service/,server/app/,gateway/,grpc/,grpcpp/,chat/v1/,google/protobuf/"
  "server/llm|server/store/,server/engine/,server/service/,server/app/,gateway/,grpc/,grpcpp/,chat/v1/,google/protobuf/"
  "server/engine|server/service/,server/app/,gateway/,grpc/,grpcpp/,chat/v1/,google/protobuf/,google/api/"
  "server/service|server/app/,gateway/"
  "server/app|gateway/app/config.h"
  "gateway/http|server/,gateway/transcode/,gateway/openapi/,gateway/compat/,gateway/openai/,gateway/app/,grpc/,grpcpp/,chat/v1/,google/protobuf/"
  "gateway/transcode|server/,gateway/openapi/,gateway/compat/,gateway/openai/,gateway/app/"
  "gateway/openapi|server/,gateway/app/"
  "gateway/compat|server/,gateway/openapi/,gateway/openai/,gateway/app/"
  "gateway/openai|server/,gateway/openapi/,gateway/compat/,gateway/app/"
  "gateway/app|server/"
  "clients/cli|server/,gateway/"
)

# Targets a library must not link, directly or through another library.
set(CHAT_LINK_RULES
  "chat_common|gRPC::grpc++,gRPC::grpc,protobuf::libprotobuf,chat_proto,CURL::libcurl,SQLite::SQLite3,PostgreSQL::PostgreSQL"
  "chat_engine|gRPC::grpc++,gRPC::grpc,gRPC::grpc++_reflection,protobuf::libprotobuf,chat_proto,chat_service"
  "chat_gateway_http|gRPC::grpc++,gRPC::grpc,protobuf::libprotobuf,chat_proto,chat_store,chat_llm,chat_engine,chat_service"
  "chat_gateway_app|chat_store,chat_llm,chat_engine,chat_service,chat_server_app"
  "chat_server_app|chat_gateway_config"
  "chat_cli|chat_store,chat_llm,chat_engine,chat_service,chat_server_app,chat_gateway_http,chat_gateway_transcode,chat_gateway_openapi,chat_gateway_compat,chat_gateway_openai,chat_gateway_app"
)
