#include "server/engine/price_table.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chat {
namespace {

using nlohmann::json;

// The list prices (USD per million tokens, standard tier, no batch or cache
// discounts) published on anthropic.com/pricing and openai.com/api/pricing,
// as of 2026-02. Prices change: --prices_file overrides any of them.
constexpr struct {
  const char* model;
  ModelPrice price;
} kBuiltInPrices[] = {
    // Anthropic.
    {"claude-opus-4-5", {5.0, 25.0}},
    {"claude-opus-4-1", {15.0, 75.0}},
    {"claude-opus-4", {15.0, 75.0}},
    {"claude-sonnet-4-6", {3.0, 15.0}},
    {"claude-sonnet-4-5", {3.0, 15.0}},
    {"claude-sonnet-4", {3.0, 15.0}},
    {"claude-haiku-4-5", {1.0, 5.0}},
    {"claude-3-5-haiku", {0.80, 4.0}},
    {"claude-3-haiku", {0.25, 1.25}},
    // OpenAI.
    {"gpt-4o", {2.50, 10.0}},
    {"gpt-4o-mini", {0.15, 0.60}},
    {"gpt-4.1", {2.0, 8.0}},
    {"gpt-4.1-mini", {0.40, 1.60}},
    {"gpt-4.1-nano", {0.10, 0.40}},
    {"gpt-5", {1.25, 10.0}},
    {"gpt-5-mini", {0.25, 2.0}},
    {"gpt-5-nano", {0.05, 0.40}},
};

bool AllDigits(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

// "YYYYMMDD" or "YYYY-MM-DD": the suffix of a dated snapshot.
bool IsSnapshotDate(absl::string_view s) {
  if (s.size() == 8) return AllDigits(s);
  return s.size() == 10 && s[4] == '-' && s[7] == '-' &&
         AllDigits(s.substr(0, 4)) && AllDigits(s.substr(5, 2)) &&
         AllDigits(s.substr(8, 2));
}

absl::StatusOr<double> PriceField(const json& entry, const char* field,
                                  const std::string& model) {
  auto it = entry.find(field);
  if (it == entry.end() || !it->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", model, "\": \"", field, "\" must be a number"));
  }
  const double value = it->get<double>();
  if (!std::isfinite(value) || value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", model, "\": \"", field, "\" must be finite and >= 0"));
  }
  return value;
}

}  // namespace

PriceTable PriceTable::BuiltIn() {
  PriceTable table;
  for (const auto& entry : kBuiltInPrices) table.Set(entry.model, entry.price);
  return table;
}

absl::StatusOr<PriceTable> PriceTable::BuiltInWith(absl::string_view text) {
  json document = json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                              /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return absl::InvalidArgumentError("not valid JSON");
  }
  if (!document.is_object()) {
    return absl::InvalidArgumentError(
        "expected a JSON object of model names: "
        "{\"MODEL\": {\"input\": 3.0, \"output\": 15.0}}");
  }
  PriceTable table = BuiltIn();
  for (const auto& [model, entry] : document.items()) {
    if (model.empty()) {
      return absl::InvalidArgumentError("a model name is empty");
    }
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model \"", model, "\": expected {\"input\": N, \"output\": N}"));
    }
    for (const auto& [field, value] : entry.items()) {
      if (field != "input" && field != "output") {
        return absl::InvalidArgumentError(absl::StrCat(
            "model \"", model, "\": unknown field \"", field,
            "\" (only \"input\" and \"output\", USD per million tokens)"));
      }
    }
    absl::StatusOr<double> input = PriceField(entry, "input", model);
    if (!input.ok()) return input.status();
    absl::StatusOr<double> output = PriceField(entry, "output", model);
    if (!output.ok()) return output.status();
    table.Set(model, {*input, *output});
  }
  return table;
}

absl::StatusOr<PriceTable> PriceTable::BuiltInWithFile(
    const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read price file ", path));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  absl::StatusOr<PriceTable> table = BuiltInWith(contents.str());
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

void PriceTable::Set(std::string model, ModelPrice price) {
  prices_[std::move(model)] = price;
}

std::optional<ModelPrice> PriceTable::Find(absl::string_view model) const {
  if (auto it = prices_.find(model); it != prices_.end()) return it->second;
  // A dated snapshot: "NAME-" followed by the date, the rest of the name.
  for (size_t dash = model.rfind('-'); dash != absl::string_view::npos;
       dash = dash == 0 ? absl::string_view::npos
                        : model.rfind('-', dash - 1)) {
    if (!IsSnapshotDate(model.substr(dash + 1))) continue;
    if (auto it = prices_.find(model.substr(0, dash)); it != prices_.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

std::optional<double> PriceTable::Cost(absl::string_view model,
                                       int64_t input_tokens,
                                       int64_t output_tokens) const {
  std::optional<ModelPrice> price = Find(model);
  if (!price.has_value()) return std::nullopt;
  return (static_cast<double>(input_tokens) * price->input +
          static_cast<double>(output_tokens) * price->output) /
         1e6;
}

}  // namespace chat
