// Training data in the official formats (spec 8), tokenised as the official datasets do.
//
// ---- Instruction JSON (the official FinetuneDataset's input: alpaca_gpt4_data.json and the like) ---
//   a JSON array of objects, one per sample:
//     "instruction"  string, required
//     "input"        string, optional: absent selects the no-input template; present, even "",
//                    selects the with-input template (format_prompt's `input is not None`)
//     "output"       string, required: the answer
//     "image"        string, optional: a PNG/JPEG path, relative to the JSON file's directory
//                    unless absolute; without it the sample uses the all-zero normalised image
//   Other members are ignored. With `official_quirks`, a sample without an image puts the
//   instruction's tuple repr into its prompt, as the official text-only branch does
//   (`format_instruction = data_item['instruction'],`, a trailing comma): "('text',)".
//
// ---- Image-caption TSV (the official PretrainDataset's image-text pairs) --------------------------
//   one sample per line: `path<TAB>caption` (the path relative to the TSV file's directory unless
//   absolute); empty lines are skipped; the prompt is format_prompt("Generate caption of this
//   image") and the answer the caption.
//
// ---- Tokens and labels (both datasets) ------------------------------------------------------------
//   prompt  = encode(prompt, bos)          example = encode(prompt + answer, bos, eos)
//   example is padded with 0 or truncated to max_words; labels = example with the first
//   len(prompt) positions and the padding set to 0 (CrossEntropyLoss's ignore_index). A sample
//   whose prompt alone fills max_words (no answer token would remain) is refused.
//
// Every error names the file, the record (0-based index, or the line) and the field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/text/json_reader.hpp"
#include "lav2/text/prompt.hpp"
#include "lav2/text/tokenizer.hpp"

namespace lav2::train {

/// \brief One tokenised sample: max_words tokens and labels (0: no loss), and its image.
struct Sample {
  std::vector<std::int32_t> tokens, labels;  // (max_words)
  std::string image;                         ///< the image file; empty: the all-zero image
  std::int64_t length = 0;                   ///< tokens before the padding
  std::string where;                         ///< the file and record, for errors
};

/// \brief How samples are made.
struct DataOptions {
  int max_words = 512;           ///< official: 512 finetune, 96 pretrain
  bool official_quirks = false;  ///< the tuple-repr instruction of text-only samples
};

/// \brief The official caption prompt of the pretrain dataset.
inline std::string caption_prompt() {
  return text::format_prompt(text::PromptTemplate::alpaca, "Generate caption of this image");
}

/// \brief Tokenises `prompt` + `answer` as the official datasets do; `where` names the record in
/// errors ("file 'x.json': record 3").
inline Sample make_sample(const text::Tokenizer& tok, const std::string& prompt, const std::string& answer,
                          int max_words, const std::string& where) {
  if (max_words < 2) LAV2_THROW(input_error, "max_words ", max_words, " is below 2");
  const std::vector<int> p = tok.encode(prompt, /*bos=*/true, /*eos=*/false);
  const std::vector<int> e = tok.encode(prompt + answer, /*bos=*/true, /*eos=*/true);
  if (std::int64_t(p.size()) >= max_words)
    LAV2_THROW(input_error, where, ": the prompt is ", p.size(), " tokens, which fills --max-words ", max_words,
               " and leaves no room for the answer");
  Sample s;
  s.where = where;
  s.tokens.assign(std::size_t(max_words), 0);
  s.labels.assign(std::size_t(max_words), 0);
  s.length = std::min<std::int64_t>(std::int64_t(e.size()), max_words);
  for (std::int64_t i = 0; i < s.length; ++i) {
    s.tokens[std::size_t(i)] = e[std::size_t(i)];
    if (i >= std::int64_t(p.size())) s.labels[std::size_t(i)] = e[std::size_t(i)];
  }
  return s;
}

namespace detail {
inline std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) LAV2_THROW(input_error, what, " '", path, "' cannot be opened");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) LAV2_THROW(input_error, what, " '", path, "' cannot be read");
  return ss.str();
}
inline std::string resolve_path(const std::string& file, const std::string& relative_to) {
  const std::filesystem::path p(file);
  if (p.is_absolute()) return file;
  return (std::filesystem::path(relative_to).parent_path() / p).lexically_normal().string();
}
inline const std::string* string_field(const text::JsonValue& rec, const char* field, bool required,
                                       const std::string& where) {
  const text::JsonValue* v = rec.find(field);
  if (!v) {
    if (required) LAV2_THROW(input_error, where, ": field '", field, "' is missing");
    return nullptr;
  }
  if (!v->is_string()) LAV2_THROW(input_error, where, ": field '", field, "' is not a string");
  return &v->string;
}
// Python's repr of a str, as the official quirk prints it inside a 1-tuple.
inline std::string python_tuple_repr(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out = "(";
  out += q;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == q) out += std::string("\\") + q;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  out += q;
  out += ",)";
  return out;
}
}  // namespace detail

/// \brief Reads an instruction JSON file (format above).
inline std::vector<Sample> read_instruction_json(const std::string& path, const text::Tokenizer& tok,
                                                 const DataOptions& o) {
  const std::string body = detail::read_text_file(path, "--data");
  const text::JsonValue root = text::JsonReader(body, path, "data file").parse();
  if (!root.is_array()) LAV2_THROW(input_error, "data file '", path, "': expected a JSON array of records");
  std::vector<Sample> out;
  out.reserve(root.array.size());
  for (std::size_t i = 0; i < root.array.size(); ++i) {
    const std::string where = "data file '" + path + "': record " + std::to_string(i);
    const text::JsonValue& rec = root.array[i];
    if (!rec.is_object()) LAV2_THROW(input_error, where, ": not a JSON object");
    const std::string* ins = detail::string_field(rec, "instruction", true, where);
    const std::string* input = detail::string_field(rec, "input", false, where);
    const std::string* answer = detail::string_field(rec, "output", true, where);
    const std::string* image = detail::string_field(rec, "image", false, where);
    const std::string instruction = o.official_quirks && !image ? detail::python_tuple_repr(*ins) : *ins;
    const std::string prompt =
        input ? text::format_prompt(text::PromptTemplate::alpaca_input, instruction, std::string_view(*input))
              : text::format_prompt(text::PromptTemplate::alpaca, instruction);
    Sample s = make_sample(tok, prompt, *answer, o.max_words, where);
    if (image) {
      if (image->empty()) LAV2_THROW(input_error, where, ": field 'image' is empty");
      s.image = detail::resolve_path(*image, path);
    }
    out.push_back(std::move(s));
  }
  if (out.empty()) LAV2_THROW(input_error, "data file '", path, "': no records");
  return out;
}

/// \brief Reads an image-caption TSV file (format above).
inline std::vector<Sample> read_caption_tsv(const std::string& path, const text::Tokenizer& tok, const DataOptions& o) {
  const std::string body = detail::read_text_file(path, "--captions");
  const std::string prompt = caption_prompt();
  std::vector<Sample> out;
  std::size_t line = 0, at = 0;
  while (at < body.size()) {
    std::size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string row = body.substr(at, end - at);
    at = end + 1;
    ++line;
    if (!row.empty() && row.back() == '\r') row.pop_back();
    if (row.empty()) continue;
    const std::string where = "captions file '" + path + "': line " + std::to_string(line);
    const std::size_t tab = row.find('\t');
    if (tab == std::string::npos) LAV2_THROW(input_error, where, ": expected path<TAB>caption");
    if (tab == 0) LAV2_THROW(input_error, where, ": field 'path' is empty");
    Sample s = make_sample(tok, prompt, row.substr(tab + 1), o.max_words, where);
    s.image = detail::resolve_path(row.substr(0, tab), path);
    out.push_back(std::move(s));
  }
  if (out.empty()) LAV2_THROW(input_error, "captions file '", path, "': no samples");
  return out;
}

}  // namespace lav2::train
