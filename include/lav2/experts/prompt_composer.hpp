// Puts what the experts read into the prompt, as the paper's figures show it (Fig. 4, 8, 9;
// docs/experts.md): a caption as `[ Caption expert: A seafood dish with shrimp. ]`, OCR as the
// image's text lines, numbered. The official code has no such step, so the exact wording is lav2's
// and configurable (ExpertTemplate); the defaults are:
//
//   caption      "[ Caption expert: {text} ]"
//   ocr          "[ OCR expert:\n{lines}\n]"        {lines}: the lines rendered with ocr_line, joined by "\n"
//   ocr_line     "{n}. {line}"                       {n} counts from 1
//   other        "[ {expert} expert: {text} ]"       any other expert's name
//   separator    "\n"                                between two experts' blocks
//   placement    input                               where the blocks go (below)
//   with_input   "{input}\n{context}"                the user's input, then the blocks
//   with_instruction "{instruction}\nw/ Context: {context}"  the paper's "w/ Context:"
//
// Placement `input` (the default) makes the blocks the `### Input:` of the Alpaca with-input
// template: its preamble calls the input "further context", and the released model was tuned on
// instructions with inputs. The alpaca template then becomes alpaca-input; under alpaca-input an
// input the user gave comes first (with_input); under template none there is no input field, so
// the blocks follow the instruction (with_instruction). Placement `instruction` always appends the
// blocks to the instruction with with_instruction, as the paper's figures print it.
//
// Expert text is one line per entry: control characters and runs of spaces become one space, and
// "###" (the Alpaca section marker, which would let image text open a new `### Response:`) becomes
// "# # #". An expert with no line adds no block; with no block at all the prompt is the one
// without experts.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lav2/core/error.hpp"
#include "lav2/experts/expert.hpp"
#include "lav2/io/json_file.hpp"
#include "lav2/text/prompt.hpp"

namespace lav2::experts {

/// \brief Where the experts' blocks go (see the file comment).
enum class ContextPlacement {
  input,        ///< the Alpaca with-input template's `### Input:`
  instruction,  ///< appended to the instruction
};

/// \brief The wording of the expert context; the defaults are documented in the file comment.
struct ExpertTemplate {
  std::string caption = "[ Caption expert: {text} ]";
  std::string ocr = "[ OCR expert:\n{lines}\n]";
  std::string ocr_line = "{n}. {line}";
  std::string other = "[ {expert} expert: {text} ]";
  std::string separator = "\n";
  ContextPlacement placement = ContextPlacement::input;
  std::string with_input = "{input}\n{context}";
  std::string with_instruction = "{instruction}\nw/ Context: {context}";
};

namespace detail {
/// Replaces every `{key}` of `keys` in `tmpl`; other braces stay as they are.
inline std::string fill(std::string_view tmpl,
                        std::initializer_list<std::pair<std::string_view, std::string_view>> keys) {
  std::string out;
  for (std::size_t i = 0; i < tmpl.size();) {
    bool replaced = false;
    if (tmpl[i] == '{')
      for (const auto& [key, value] : keys)
        if (tmpl.compare(i + 1, key.size(), key) == 0 && i + 1 + key.size() < tmpl.size() &&
            tmpl[i + 1 + key.size()] == '}') {
          out += value;
          i += key.size() + 2;
          replaced = true;
          break;
        }
    if (!replaced) out += tmpl[i++];
  }
  return out;
}
}  // namespace detail

/// \brief One line of expert text made safe for the prompt: control characters (newlines, tabs)
/// and runs of spaces become one space, the ends are trimmed, "###" becomes "# # #".
inline std::string clean_expert_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  for (std::size_t at = out.find("###"); at != std::string::npos; at = out.find("###", at)) out.replace(at, 3, "# # #");
  return out;
}

/// \brief The block one expert adds, or "" when it read nothing.
inline std::string render_expert_block(const ExpertText& e, const ExpertTemplate& t = {}) {
  std::vector<std::string> lines;
  for (const std::string& l : e.lines)
    if (std::string c = clean_expert_line(l); !c.empty()) lines.push_back(std::move(c));
  if (lines.empty()) return "";
  if (e.expert == "ocr") {
    std::string numbered;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i) numbered += '\n';
      numbered += detail::fill(t.ocr_line, {{"n", std::to_string(i + 1)}, {"line", lines[i]}});
    }
    return detail::fill(t.ocr, {{"lines", numbered}});
  }
  std::string text;
  for (const std::string& l : lines) text += (text.empty() ? "" : " ") + l;
  if (e.expert == "caption") return detail::fill(t.caption, {{"text", text}});
  return detail::fill(t.other, {{"expert", clean_expert_line(e.expert)}, {"text", text}});
}

/// \brief Every expert's block, in order, joined by the separator ("" when none read anything).
inline std::string render_expert_context(const std::vector<ExpertText>& experts, const ExpertTemplate& t = {}) {
  std::string context;
  for (const ExpertText& e : experts)
    if (std::string b = render_expert_block(e, t); !b.empty()) context += (context.empty() ? "" : t.separator) + b;
  return context;
}

/// \brief The final prompt: text::format_prompt() of the instruction and input with the experts'
/// context placed as ExpertTemplate says. \param input the user's input (alpaca-input only).
inline std::string compose_prompt(text::PromptTemplate tmpl, std::string_view instruction,
                                  std::optional<std::string_view> input, const std::vector<ExpertText>& experts,
                                  const ExpertTemplate& t = {}) {
  const std::string context = render_expert_context(experts, t);
  if (context.empty()) return text::format_prompt(tmpl, instruction, input);
  if (t.placement == ContextPlacement::input && tmpl != text::PromptTemplate::none) {
    const std::string in =
        input && !input->empty() ? detail::fill(t.with_input, {{"input", *input}, {"context", context}}) : context;
    return text::format_prompt(text::PromptTemplate::alpaca_input, instruction, std::string_view(in));
  }
  const std::string ins = detail::fill(t.with_instruction, {{"instruction", instruction}, {"context", context}});
  return text::format_prompt(tmpl, ins, input);
}

/// \brief Reads an ExpertTemplate from a JSON object (`--expert-template FILE`): the keys of
/// ExpertTemplate, each optional (a missing key keeps its default); "placement" is "input" or
/// "instruction". An unknown key or a value of the wrong type is an input_error naming `name`.
inline ExpertTemplate parse_expert_template(const nlohmann::json& j, const std::string& name) {
  if (!j.is_object()) LAV2_THROW(input_error, "expert template '", name, "': expected a JSON object");
  ExpertTemplate t;
  const std::pair<const char*, std::string*> fields[] = {{"caption", &t.caption},
                                                         {"ocr", &t.ocr},
                                                         {"ocr_line", &t.ocr_line},
                                                         {"other", &t.other},
                                                         {"separator", &t.separator},
                                                         {"with_input", &t.with_input},
                                                         {"with_instruction", &t.with_instruction}};
  for (const auto& [key, value] : j.items()) {
    std::string* slot = nullptr;
    for (const auto& [k, s] : fields)
      if (key == k) slot = s;
    if (!value.is_string()) LAV2_THROW(input_error, "expert template '", name, "': '", key, "' must be a string");
    if (slot) {
      *slot = value.get<std::string>();
    } else if (key == "placement") {
      const std::string p = value.get<std::string>();
      if (p != "input" && p != "instruction")
        LAV2_THROW(input_error, "expert template '", name, "': 'placement' is '", p,
                   "', expected input or instruction");
      t.placement = p == "input" ? ContextPlacement::input : ContextPlacement::instruction;
    } else {
      LAV2_THROW(input_error, "expert template '", name, "': unknown key '", key,
                 "' (the keys are caption, ocr, ocr_line, other, separator, placement, with_input, "
                 "with_instruction)");
    }
  }
  return t;
}

/// \brief parse_expert_template() of a JSON file (at most 64 KiB); load_error naming the file
/// when it is unreadable or not JSON.
inline ExpertTemplate read_expert_template(const std::string& path) {
  return parse_expert_template(io::read_json_file(path, 64u << 10).value, path);
}

}  // namespace lav2::experts
