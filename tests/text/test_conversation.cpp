// The Alpaca multi-turn format (text/conversation.hpp): the first turn is the official prompt, and
// every later turn only appends, so a chat can continue a request state with the new text alone.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <lav2/text/conversation.hpp>

using lav2::text::ConversationTurn;
using lav2::text::format_alpaca_conversation;

TEST_CASE("a conversation without history is the official alpaca prompt") {
  CHECK(format_alpaca_conversation({}, "Hi") == lav2::text::format_prompt(lav2::text::PromptTemplate::alpaca, "Hi"));
}

TEST_CASE("later turns append alternating Instruction / Response blocks") {
  const std::string header =
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";
  const std::vector<ConversationTurn> turns = {{"What is this?", " A cat."}, {"Its colour?", " Black."}};
  CHECK(format_alpaca_conversation(turns, "Thanks") == header +
                                                           "### Instruction:\nWhat is this?\n\n### Response: A cat."
                                                           "\n\n### Instruction:\nIts colour?\n\n### Response: Black."
                                                           "\n\n### Instruction:\nThanks\n\n### Response:");
  // Each turn extends the previous prompt: previous prompt + its response + alpaca_next_turn(new).
  std::vector<ConversationTurn> grown;
  std::string prompt = format_alpaca_conversation(grown, turns[0].instruction);
  for (std::size_t i = 1; i <= turns.size(); ++i) {
    const std::string next = i < turns.size() ? turns[i].instruction : "Thanks";
    grown.push_back(turns[i - 1]);
    const std::string longer = format_alpaca_conversation(grown, next);
    CHECK(longer == prompt + turns[i - 1].response + lav2::text::alpaca_next_turn(next));
    prompt = longer;
  }
}

TEST_CASE("a system text joins the instruction on the line before it") {
  CHECK(lav2::text::with_system_text("", "Hi") == "Hi");
  CHECK(lav2::text::with_system_text("Be brief.", "Hi") == "Be brief.\nHi");
}
