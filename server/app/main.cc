// chat-server: serves chat.v1.ChatService (with reflection and health) until
// SIGINT or SIGTERM, then drains running calls and exits 0.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/chat_engine.h"
#include "server/service/chat_service_impl.h"
#include "common/thread_pool.h"
#include "server/service/health_service.h"
#include "server/llm/provider_factory.h"
#include "common/logging.h"
#include "server/engine/retention_sweeper.h"
#include "server/app/server_flags.h"
#include "common/process_setup.h"
#include "server/store/conversation_store.h"

namespace {

int Run() {
  const sigset_t stop_signals = chat::BlockStopSignals();

  const std::string store_url = absl::GetFlag(FLAGS_store);
  chat::store::StoreOptions store_options;
  store_options.max_connections = absl::GetFlag(FLAGS_store_connections);
  absl::StatusOr<std::unique_ptr<chat::store::ConversationStore>> store =
      chat::store::OpenConversationStore(store_url, store_options);
  if (!store.ok()) {
    chat::LogError("cannot open store ", store_url, ": ", store.status().ToString());
    return 1;
  }

  chat::llm::ProviderConfig provider_config;
  provider_config.name = absl::GetFlag(FLAGS_provider);
  provider_config.echo_delay = absl::GetFlag(FLAGS_echo_delay);
  provider_config.model = absl::GetFlag(FLAGS_model);
  provider_config.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  provider_config.http.max_retries = std::max(0, absl::GetFlag(FLAGS_provider_retries));
  provider_config.http.retry_base_delay = absl::GetFlag(FLAGS_provider_retry_delay);
  provider_config.http.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  provider_config.http.first_byte_timeout = absl::GetFlag(FLAGS_first_byte_timeout);
  provider_config.http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  provider_config.http.ca_file = absl::GetFlag(FLAGS_provider_ca_file);
  chat::llm::ReadProviderEnvironment(&provider_config);
  if (absl::StatusOr<chat::llm::ProviderChoice> choice =
          chat::llm::ChooseProvider(provider_config);
      choice.ok()) {
    chat::LogInfo("provider ", choice->name, ": ", choice->reason);
  }
  absl::StatusOr<std::unique_ptr<chat::llm::LlmProvider>> provider =
      chat::llm::MakeLlmProvider(provider_config);
  if (!provider.ok()) {
    chat::LogError(provider.status().ToString());
    return 1;
  }

  chat::ChatEngineOptions engine_options;
  engine_options.default_system_prompt = absl::GetFlag(FLAGS_default_system_prompt);
  const int64_t max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (max_message_bytes < 1) {
    chat::LogError("--max_message_bytes must be at least 1");
    return 1;
  }
  engine_options.limits.max_message_bytes = static_cast<size_t>(max_message_bytes);
  engine_options.max_turns_per_session = absl::GetFlag(FLAGS_max_turns_per_session);
  engine_options.max_sessions_per_tenant = absl::GetFlag(FLAGS_max_sessions_per_tenant);
  engine_options.max_context_tokens = absl::GetFlag(FLAGS_max_context_tokens);
  engine_options.limits.max_tokens_ceiling =
      std::max(1, absl::GetFlag(FLAGS_max_tokens_ceiling));
  engine_options.limits.allowed_models = absl::GetFlag(FLAGS_allowed_models);

  auto pool = std::make_unique<chat::ThreadPool>(
      std::max(1, absl::GetFlag(FLAGS_store_threads)));
  auto engine = std::make_unique<chat::ChatEngine>(
      store->get(), provider->get(), pool.get(), engine_options);
  chat::ChatServiceImpl chat_service(engine.get(), store->get(), pool.get());
  chat::HealthService health_service;
  std::unique_ptr<chat::RetentionSweeper> sweeper;
  if (const absl::Duration ttl = absl::GetFlag(FLAGS_session_ttl);
      ttl > absl::ZeroDuration()) {
    sweeper = std::make_unique<chat::RetentionSweeper>(
        store->get(), ttl, chat::RetentionSweeper::IntervalFor(ttl));
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  // Leave room above the message limit for the other fields, so an
  // oversized message gets our INVALID_ARGUMENT rather than gRPC's
  // RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::max<int64_t>(4 << 20, 2 * max_message_bytes + (1 << 20))));
  builder.RegisterService(&chat_service);
  builder.RegisterService(&health_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    chat::LogError("cannot listen on ", listen);
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  chat::LogInfo("chat-server listening on ", host, ":", port, " (store ",
                store_url, ", provider ", (*provider)->name(), ")");

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const absl::Duration grace = absl::GetFlag(FLAGS_shutdown_grace);
  chat::LogInfo("received ", strsignal(signal_number), "; finishing running calls (up to ",
                absl::FormatDuration(grace), ")");
  health_service.SetNotServing();
  server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server->Wait();
  // Order matters: the engine waits for its turns, whose last steps run on
  // the pool and may come from the provider; the store goes last.
  sweeper.reset();
  engine.reset();
  provider->reset();
  pool.reset();
  store->reset();
  chat::LogInfo("chat-server stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::DisableMutexDeadlockDetection();
  chat::ParseServerFlags(argc, argv);
  return Run();
}
