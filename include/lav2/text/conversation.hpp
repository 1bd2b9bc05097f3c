// A multi-turn conversation in the Alpaca format: earlier turns kept as alternating
// `### Instruction:` / `### Response:` blocks after the official header (prompt.hpp's alpaca
// template), the newest instruction last with an open `### Response:`.
//
//   format_prompt(alpaca, i1) + r1 + "\n\n### Instruction:\n" + i2 + "\n\n### Response:" + r2 + ...
//
// The first turn alone is exactly the official prompt, and each later turn only appends
// (alpaca_next_turn), so a chat can feed just the new text to a request state that already holds
// the earlier turns. The released LLaMA-Adapter V2 weights were trained on single-turn data only:
// this is a convention for carrying history, not a format the model has learned.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lav2/text/prompt.hpp"

namespace lav2::text {

/// \brief One finished exchange: the instruction and the response text the model gave.
struct ConversationTurn {
  std::string instruction;
  std::string response;
};

/// \brief What a later turn appends after the previous response: a blank line, the instruction
/// block and the open response block.
inline std::string alpaca_next_turn(std::string_view instruction) {
  return "\n\n### Instruction:\n" + std::string(instruction) + "\n\n### Response:";
}

/// \brief The whole prompt: `turns` (oldest first) as instruction/response blocks, then
/// `instruction` awaiting its response. With no turns this is format_prompt(alpaca, instruction).
inline std::string format_alpaca_conversation(const std::vector<ConversationTurn>& turns,
                                              std::string_view instruction) {
  if (turns.empty()) return format_prompt(PromptTemplate::alpaca, instruction);
  std::string s = format_prompt(PromptTemplate::alpaca, turns.front().instruction);
  for (std::size_t i = 0; i < turns.size(); ++i) {
    s += turns[i].response;
    s += alpaca_next_turn(i + 1 < turns.size() ? std::string_view(turns[i + 1].instruction) : instruction);
  }
  return s;
}

/// \brief `system` prepended to `instruction` (a line between them), as a chat's system message
/// joins the Alpaca instruction; `instruction` alone when `system` is empty.
inline std::string with_system_text(std::string_view system, std::string_view instruction) {
  if (system.empty()) return std::string(instruction);
  return std::string(system) + "\n" + std::string(instruction);
}

}  // namespace lav2::text
