// The official prompt templates (the release's format_prompt), exact strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lav2/core/error.hpp"

namespace lav2::text {

/// \brief alpaca: instruction only; alpaca_input: instruction + input (even ""); none: raw text.
enum class PromptTemplate { alpaca, alpaca_input, none };

/// \brief Parses "alpaca" | "alpaca-input" | "none".
inline PromptTemplate parse_prompt_template(std::string_view name) {
  if (name == "alpaca") return PromptTemplate::alpaca;
  if (name == "alpaca-input") return PromptTemplate::alpaca_input;
  if (name == "none") return PromptTemplate::none;
  LAV2_THROW(input_error, "--template '", std::string(name), "' is not one of alpaca, alpaca-input, none");
}

/// \brief The final prompt string the model sees.
inline std::string format_prompt(PromptTemplate t, std::string_view instruction,
                                 std::optional<std::string_view> input = {}) {
  const std::string ins(instruction);
  switch (t) {
    case PromptTemplate::alpaca:
      return "Below is an instruction that describes a task. Write a response that appropriately completes the "
             "request.\n\n"
             "### Instruction:\n" +
             ins + "\n\n### Response:";
    case PromptTemplate::alpaca_input:
      return "Below is an instruction that describes a task, paired with an input that provides further context. "
             "Write a response that appropriately completes the request.\n\n### Instruction:\n" +
             ins + "\n\n### Input:\n" + std::string(input.value_or("")) + "\n\n### Response:";
    case PromptTemplate::none: return ins;
  }
  return ins;
}

}  // namespace lav2::text
