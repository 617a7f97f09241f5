#include "server/service/admin_service_impl.h"

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/time_format.h"
#include "server/service/api_key.h"
#include "server/service/grpc_status.h"

namespace chat {
namespace {

namespace adminpb = ::chat::admin::v1;

constexpr size_t kMaxTenantBytes = 64;
constexpr size_t kMaxKeyNameBytes = 128;
// The longest key lifetime: 100 years of 365.25 days.
constexpr absl::Duration kMaxKeyLifetime = absl::Hours(100 * 8766);
// GetUsage with no `since`: this many days before `until`.
constexpr int kDefaultUsageDays = 30;

// Checks the admin key, then runs `work` (store I/O, returning the call's
// status) on `pool` and finishes the call with it.
template <typename Work>
grpc::ServerUnaryReactor* AdminOnPool(grpc::CallbackServerContext* context,
                                      Authenticator* authenticator,
                                      ThreadPool* pool, Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status admin = authenticator->CheckAdmin(CredentialsOf(*context));
      !admin.ok()) {
    reactor->Finish(ToGrpcStatus(admin));
    return reactor;
  }
  pool->Schedule([reactor, work = std::move(work)]() mutable {
    reactor->Finish(ToGrpcStatus(work()));
  });
  return reactor;
}

absl::Status CheckNonNegative(absl::string_view field, int64_t value) {
  if (value >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be >= 0 (0: no limit); got ", value));
}

absl::StatusOr<store::KeyLimits> LimitsFromProto(
    const adminpb::KeyLimits& proto) {
  store::KeyLimits limits;
  limits.requests_per_minute = proto.requests_per_minute();
  limits.tokens_per_minute = proto.tokens_per_minute();
  limits.max_streams = proto.max_streams();
  limits.max_tokens = proto.max_tokens();
  limits.budget_tokens = proto.budget_tokens();
  for (const auto& [field, value] :
       std::vector<std::pair<const char*, int64_t>>{
           {"limits.requests_per_minute", limits.requests_per_minute},
           {"limits.tokens_per_minute", limits.tokens_per_minute},
           {"limits.max_streams", limits.max_streams},
           {"limits.max_tokens", limits.max_tokens},
           {"limits.budget_tokens", limits.budget_tokens}}) {
    if (absl::Status s = CheckNonNegative(field, value); !s.ok()) return s;
  }
  for (const std::string& model : proto.allowed_models()) {
    if (model.empty()) {
      return absl::InvalidArgumentError(
          "limits.allowed_models must not contain an empty name");
    }
    limits.allowed_models.push_back(model);
  }
  switch (proto.budget_period()) {
    case adminpb::BUDGET_PERIOD_UNSPECIFIED:
      limits.budget_period = store::BudgetPeriod::kNone;
      break;
    case adminpb::BUDGET_PERIOD_DAY:
      limits.budget_period = store::BudgetPeriod::kDay;
      break;
    case adminpb::BUDGET_PERIOD_MONTH:
      limits.budget_period = store::BudgetPeriod::kMonth;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("limits.budget_period must be BUDGET_PERIOD_DAY or "
                       "BUDGET_PERIOD_MONTH; got ",
                       proto.budget_period()));
  }
  if (limits.budget_tokens > 0 &&
      limits.budget_period == store::BudgetPeriod::kNone) {
    return absl::InvalidArgumentError(
        "limits.budget_period is required with limits.budget_tokens");
  }
  if (limits.budget_tokens == 0 &&
      limits.budget_period != store::BudgetPeriod::kNone) {
    return absl::InvalidArgumentError(
        "limits.budget_tokens is required with limits.budget_period");
  }
  return limits;
}

adminpb::BudgetPeriod PeriodToProto(store::BudgetPeriod period) {
  switch (period) {
    case store::BudgetPeriod::kDay:
      return adminpb::BUDGET_PERIOD_DAY;
    case store::BudgetPeriod::kMonth:
      return adminpb::BUDGET_PERIOD_MONTH;
    case store::BudgetPeriod::kNone:
      break;
  }
  return adminpb::BUDGET_PERIOD_UNSPECIFIED;
}

// Midnight UTC of `day` ("YYYY-MM-DD"); `fallback` if it is empty.
absl::StatusOr<absl::Time> ParseDay(absl::string_view field,
                                    absl::string_view day,
                                    absl::Time fallback) {
  if (day.empty()) return fallback;
  absl::CivilDay civil;
  if (day.size() != 10 || !absl::ParseCivilTime(day, &civil)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a date YYYY-MM-DD; got '", day, "'"));
  }
  return absl::FromCivil(civil, absl::UTCTimeZone());
}

void FillUsage(const store::UsageTotals& totals, adminpb::Usage* usage) {
  usage->set_tenant(totals.tenant);
  usage->set_key_id(totals.key_id);
  usage->set_calls(totals.calls);
  usage->set_input_tokens(totals.input_tokens);
  usage->set_output_tokens(totals.output_tokens);
  usage->set_cost_usd(totals.cost_usd);
}

// Whether `text` is well-formed UTF-8 holding no control character: C0
// (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F). Names are printed raw
// by `keys list` and shown in consoles; a control character could rewrite
// the operator's terminal.
bool IsPrintableUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    uint32_t code_point;
    size_t length;
    uint32_t min;
    if (lead < 0x80) {
      code_point = lead, length = 1, min = 0;
    } else if ((lead & 0xE0) == 0xC0) {
      code_point = lead & 0x1F, length = 2, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      code_point = lead & 0x0F, length = 3, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      code_point = lead & 0x07, length = 4, min = 0x10000;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and beyond U+10FFFF are not UTF-8.
    if (code_point < min || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    if (code_point < 0x20 || (code_point >= 0x7F && code_point <= 0x9F)) {
      return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

absl::Status ValidateTenant(absl::string_view field, absl::string_view tenant) {
  bool ok = !tenant.empty() && tenant.size() <= kMaxTenantBytes;
  for (char c : tenant) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                         c == '-';
    if (!allowed) ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be 1 to ", kMaxTenantBytes,
                   " characters of A-Z a-z 0-9 . _ -; got '", tenant, "'"));
}

absl::Status ValidateKeyName(absl::string_view field, absl::string_view name) {
  if (name.empty() || name.size() > kMaxKeyNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be 1 to ", kMaxKeyNameBytes, " bytes; got ",
                     name.size()));
  }
  // The name is not quoted: it is what could not be printed safely.
  if (!IsPrintableUtf8(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be printable UTF-8 (no control characters)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseKeyLifetime(absl::string_view field,
                                                absl::string_view text) {
  absl::Duration lifetime;
  if (!absl::ParseDuration(text, &lifetime) ||
      lifetime <= absl::ZeroDuration() || lifetime > kMaxKeyLifetime) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     " must be a duration > 0 and at most 876600h (100 "
                     "years) such as '720h'; got '",
                     text, "'"));
  }
  return lifetime;
}

void ToProto(const store::ApiKey& key, adminpb::ApiKey* proto) {
  proto->set_id(key.id);
  proto->set_tenant(key.tenant);
  proto->set_name(key.name);
  proto->set_created_at(FormatTimestamp(key.created_at));
  if (key.expires_at != absl::InfiniteFuture()) {
    proto->set_expires_at(FormatTimestamp(key.expires_at));
  }
  if (key.revoked_at != absl::InfiniteFuture()) {
    proto->set_revoked_at(FormatTimestamp(key.revoked_at));
  }
  adminpb::KeyLimits* limits = proto->mutable_limits();
  limits->set_requests_per_minute(key.limits.requests_per_minute);
  limits->set_tokens_per_minute(key.limits.tokens_per_minute);
  limits->set_max_streams(key.limits.max_streams);
  limits->set_max_tokens(key.limits.max_tokens);
  for (const std::string& model : key.limits.allowed_models) {
    limits->add_allowed_models(model);
  }
  limits->set_budget_tokens(key.limits.budget_tokens);
  limits->set_budget_period(PeriodToProto(key.limits.budget_period));
}

AdminServiceImpl::AdminServiceImpl(store::ConversationStore* store,
                                   ThreadPool* pool,
                                   Authenticator* authenticator)
    : store_(store), pool_(pool), authenticator_(authenticator) {}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateKey(
    grpc::CallbackServerContext* context,
    const adminpb::CreateKeyRequest* request,
    adminpb::CreateKeyResponse* response) {
  return AdminOnPool(
      context, authenticator_, pool_,
      [this, request, response]() -> absl::Status {
        if (absl::Status s = ValidateTenant("tenant", request->tenant());
            !s.ok()) {
          return s;
        }
        if (absl::Status s = ValidateKeyName("name", request->name());
            !s.ok()) {
          return s;
        }
        const absl::Time now = absl::Now();
        absl::Time expires_at = absl::InfiniteFuture();
        if (!request->expires_in().empty()) {
          absl::StatusOr<absl::Duration> lifetime =
              ParseKeyLifetime("expires_in", request->expires_in());
          if (!lifetime.ok()) return lifetime.status();
          expires_at = now + *lifetime;
        }
        absl::StatusOr<store::KeyLimits> limits =
            LimitsFromProto(request->limits());
        if (!limits.ok()) return limits.status();
        absl::StatusOr<GeneratedApiKey> key =
            CreateStoredApiKey(store_->keys(), request->tenant(),
                               request->name(), now, expires_at, *limits);
        if (!key.ok()) return key.status();
        authenticator_->Forget(key->record.id);
        LogInfo("created API key ", key->record.id, " for tenant ",
                key->record.tenant);
        response->set_key(std::move(key->plaintext));
        ToProto(key->record, response->mutable_api_key());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListKeys(
    grpc::CallbackServerContext* context,
    const adminpb::ListKeysRequest* request,
    adminpb::ListKeysResponse* response) {
  return AdminOnPool(
      context, authenticator_, pool_,
      [this, request, response]() -> absl::Status {
        if (!request->tenant().empty()) {
          if (absl::Status s = ValidateTenant("tenant", request->tenant());
              !s.ok()) {
            return s;
          }
        }
        absl::StatusOr<std::vector<store::ApiKey>> keys =
            store_->keys().ListKeys(request->tenant());
        if (!keys.ok()) return keys.status();
        for (const store::ApiKey& key : *keys) {
          ToProto(key, response->add_keys());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeKey(
    grpc::CallbackServerContext* context,
    const adminpb::RevokeKeyRequest* request,
    adminpb::RevokeKeyResponse* response) {
  return AdminOnPool(
      context, authenticator_, pool_,
      [this, request, response]() -> absl::Status {
        const std::string& id = request->key_id();
        if (id.empty()) {
          return absl::InvalidArgumentError("key_id is required");
        }
        const absl::Status not_found =
            absl::NotFoundError(absl::StrCat("API key ", id, " not found"));
        if (!IsApiKeyId(id)) return not_found;
        absl::StatusOr<bool> revoked =
            store_->keys().RevokeKey(id, absl::Now());
        if (!revoked.ok()) return revoked.status();
        if (!*revoked) return not_found;
        authenticator_->Forget(id);
        absl::StatusOr<store::ApiKey> key = store_->keys().GetKey(id);
        if (!key.ok()) return key.status();
        LogInfo("revoked API key ", id, " of tenant ", key->tenant);
        ToProto(*key, response->mutable_api_key());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetUsage(
    grpc::CallbackServerContext* context,
    const adminpb::GetUsageRequest* request,
    adminpb::GetUsageResponse* response) {
  return AdminOnPool(
      context, authenticator_, pool_,
      [this, request, response]() -> absl::Status {
        if (!request->tenant().empty()) {
          if (absl::Status s = ValidateTenant("tenant", request->tenant());
              !s.ok()) {
            return s;
          }
        }
        const absl::Time today =
            absl::FromCivil(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()),
                            absl::UTCTimeZone());
        absl::StatusOr<absl::Time> until =
            ParseDay("until", request->until(), today);
        if (!until.ok()) return until.status();
        absl::StatusOr<absl::Time> since =
            ParseDay("since", request->since(),
                     *until - absl::Hours(24) * kDefaultUsageDays);
        if (!since.ok()) return since.status();
        if (*since > *until) {
          return absl::InvalidArgumentError("since must not be after until");
        }
        // `until` is the last day counted; the store's range ends before.
        absl::StatusOr<std::vector<store::UsageTotals>> rows =
            store_->quotas().GetUsage(request->tenant(), request->key_id(),
                                      *since, *until + absl::Hours(24));
        if (!rows.ok()) return rows.status();
        std::map<std::string, store::UsageTotals> tenants;
        for (const store::UsageTotals& row : *rows) {
          FillUsage(row, response->add_keys());
          store::UsageTotals& sum = tenants[row.tenant];
          sum.tenant = row.tenant;
          sum.calls += row.calls;
          sum.input_tokens += row.input_tokens;
          sum.output_tokens += row.output_tokens;
          sum.cost_usd += row.cost_usd;
        }
        for (const auto& [tenant, sum] : tenants) {
          FillUsage(sum, response->add_tenants());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetAuthPolicy(
    grpc::CallbackServerContext* context,
    const adminpb::GetAuthPolicyRequest* /*request*/,
    adminpb::GetAuthPolicyResponse* response) {
  response->set_anonymous_remote_allowed(
      authenticator_->anonymous_remote_allowed());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace chat
