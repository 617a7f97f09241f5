#ifndef CHAT_SERVER_ENGINE_PRICE_TABLE_H_
#define CHAT_SERVER_ENGINE_PRICE_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat {

// A model's list price in US dollars per million tokens.
struct ModelPrice {
  double input = 0;
  double output = 0;
};

// Prices per model, to tell what an answer cost. A model is found by its exact
// name first; failing that, a dated snapshot takes the price of the name it
// extends: "NAME-YYYYMMDD" or "NAME-YYYY-MM-DD" (for example
// "claude-sonnet-4-5-20250929" is priced as "claude-sonnet-4-5",
// "gpt-4o-mini-2024-07-18" as "gpt-4o-mini"). A model found neither way has
// no price, and its answers no cost (unknown, not free). Immutable once
// built, so safe to share between threads.
class PriceTable {
 public:
  // No prices at all.
  PriceTable() = default;

  // The list prices of the Claude and GPT models the documentation names,
  // and their close relatives.
  static PriceTable BuiltIn();

  // BuiltIn() with the entries of the JSON object `json` added or replacing
  // theirs: {"MODEL": {"input": 3.0, "output": 15.0}, ...}, both prices
  // required, finite and >= 0. kInvalidArgument saying what is wrong.
  static absl::StatusOr<PriceTable> BuiltInWith(absl::string_view json);

  // BuiltInWith() on the contents of the file at `path`; kInvalidArgument
  // (naming the file) if it cannot be read or parsed.
  static absl::StatusOr<PriceTable> BuiltInWithFile(const std::string& path);

  // Adds or replaces the price of `model`.
  void Set(std::string model, ModelPrice price);

  // The price of `model` (see the class comment for the matching rule).
  std::optional<ModelPrice> Find(absl::string_view model) const;

  // What `input_tokens` and `output_tokens` of `model` cost in US dollars;
  // nullopt if the model has no price.
  std::optional<double> Cost(absl::string_view model, int64_t input_tokens,
                             int64_t output_tokens) const;

  size_t size() const { return prices_.size(); }

 private:
  std::map<std::string, ModelPrice, std::less<>> prices_;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_PRICE_TABLE_H_
