// The body of an OpenAI-style `POST /v1/chat/completions`, checked field by field (docs/serve.md).
// Depends on nlohmann/json and lav2's JSON limits and prompt format only, not on a model, so the
// fuzz target tests/fuzz/fuzz_openai_request.cpp runs it alone.
//
//   model          string, required (the server says which ids it serves)
//   messages       non-empty array of {role, content}:
//                    role     "system" | "developer" (as system) | "user" | "assistant"
//                    content  a string, or an array of parts {type: "text", text} and (user only)
//                             {type: "image_url", image_url: {url} or url}; at most one image per request
//                  system messages, in order, are joined (a line between) and prepended to the first
//                  instruction; the others must alternate user / assistant (consecutive messages of one
//                  role are joined) and end with the user's: earlier pairs become the Alpaca history,
//                  the last user message the instruction (text/conversation.hpp)
//   max_tokens     integer >= 1 (max_completion_tokens: the same)      temperature  number in [0, 2]
//   top_p          number in (0, 1]      seed   integer >= 0      stop   string or array of <= 4 strings
//   stream         boolean      stream_options  {include_usage: boolean}, with stream only
//   n              1 if given; other fields are ignored. null means "not given" everywhere.
// Every refusal is an ApiError 400 naming the field (messages[2].content[0].image_url.url, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/io/json_file.hpp>
#include <lav2/text/conversation.hpp>

#include "api_error.hpp"

namespace lav2::cli::serve {

/// \brief An image part: its URL and where it stood in the request.
struct ImagePart {
  std::string url;
  std::string param;  ///< e.g. messages[0].content[1].image_url.url
};

/// \brief A checked chat completion request.
struct ChatRequest {
  std::string model;
  std::string system;                           ///< the system messages, a line between them
  std::vector<text::ConversationTurn> history;  ///< earlier user / assistant pairs, oldest first
  std::string instruction;                      ///< the last user message
  std::optional<ImagePart> image;
  std::optional<std::int64_t> max_tokens;
  std::optional<float> temperature, top_p;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false;

  /// The prompt the model sees: the Alpaca conversation, the system text before the first instruction.
  std::string prompt() const {
    std::vector<text::ConversationTurn> turns = history;
    if (!turns.empty()) turns.front().instruction = text::with_system_text(system, turns.front().instruction);
    return text::format_alpaca_conversation(turns,
                                            turns.empty() ? text::with_system_text(system, instruction) : instruction);
  }
};

/// \brief Limits of the request body beyond the server's byte cap.
struct RequestLimits {
  std::uint64_t max_bytes = 20ull << 20;  ///< --max-request-bytes
  std::size_t max_depth = 32;             ///< JSON nesting
  std::size_t max_messages = 4096;
};

namespace detail {

inline const nlohmann::json* field(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline std::string type_name(const nlohmann::json& v) { return v.type_name(); }

// The text of a message's content: a string or text parts; the image part, if any, into `image`.
inline std::string content_text(const nlohmann::json& content, const std::string& param, bool images_allowed,
                                std::optional<ImagePart>& image) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad_field(param, "expected a string or an array of parts, got " + type_name(content));
  std::string text;
  for (std::size_t j = 0; j < content.size(); ++j) {
    const nlohmann::json& part = content[j];
    const std::string pp = param + "[" + std::to_string(j) + "]";
    if (!part.is_object()) bad_field(pp, "expected an object, got " + type_name(part));
    const nlohmann::json* type = field(part, "type");
    if (!type || !type->is_string()) bad_field(pp + ".type", "expected \"text\" or \"image_url\"");
    const std::string t = type->get<std::string>();
    if (t == "text") {
      const nlohmann::json* tx = field(part, "text");
      if (!tx || !tx->is_string()) bad_field(pp + ".text", "expected a string");
      if (!text.empty()) text += "\n";
      text += tx->get<std::string>();
    } else if (t == "image_url") {
      if (!images_allowed) bad_field(pp, "only user messages may carry images");
      const nlohmann::json* iu = field(part, "image_url");
      if (!iu) bad_field(pp + ".image_url", "missing");
      const nlohmann::json* url = iu->is_object() ? field(*iu, "url") : iu;
      const std::string up = pp + (iu->is_object() ? ".image_url.url" : ".image_url");
      if (!url || !url->is_string()) bad_field(up, "expected a string URL");
      if (image) bad_field(up, "one image per request (the first is " + image->param + ")");
      image = ImagePart{url->get<std::string>(), up};
    } else {
      bad_field(pp + ".type", "'" + t + "' is not supported (text, image_url)");
    }
  }
  return text;
}

template <class T>
std::optional<T> number_field(const nlohmann::json& body, const char* key, double lo, double hi, bool lo_open,
                              bool integer) {
  const nlohmann::json* v = field(body, key);
  if (!v) return std::nullopt;
  const std::string range =
      std::string(lo_open ? "(" : "[") + nlohmann::json(lo).dump() + ", " + nlohmann::json(hi).dump() + "]";
  if (integer ? !v->is_number_integer() : !v->is_number())
    bad_field(key, std::string("expected ") + (integer ? "an integer" : "a number") + ", got " + v->dump());
  const double d = v->get<double>();
  if (!(lo_open ? d > lo : d >= lo) || !(d <= hi)) bad_field(key, v->dump() + " is outside " + range);
  if (integer && v->is_number_unsigned()) return T(v->get<std::uint64_t>());
  return integer ? T(v->get<std::int64_t>()) : T(d);
}

}  // namespace detail

/// \brief Parses and checks `body`; ApiError 400 naming the field on anything else (413 past
/// `limits.max_bytes`).
inline ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits = {}) {
  using detail::field;
  if (body.size() > limits.max_bytes)
    throw ApiError(413,
                   "the request has " + std::to_string(body.size()) + " bytes, more than the limit " +
                       std::to_string(limits.max_bytes) + " (--max-request-bytes)",
                   "", "request_too_large");
  io::JsonLimits jl;
  jl.max_bytes = limits.max_bytes;
  jl.max_depth = limits.max_depth;
  nlohmann::json j;
  try {
    j = io::parse_json_text(body, "request", jl).value;
  } catch (const lav2::error& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what(), "", "invalid_json");
  }
  if (!j.is_object()) bad_field("body", "expected a JSON object, got " + detail::type_name(j));
  ChatRequest r;

  const nlohmann::json* model = field(j, "model");
  if (!model) bad_field("model", "missing (GET /v1/models lists the ids)");
  if (!model->is_string()) bad_field("model", "expected a string, got " + model->dump());
  r.model = model->get<std::string>();

  const nlohmann::json* messages = field(j, "messages");
  if (!messages || !messages->is_array() || messages->empty())
    bad_field("messages", "expected a non-empty array of {role, content}");
  if (messages->size() > limits.max_messages)
    bad_field("messages", "more than " + std::to_string(limits.max_messages) + " messages");
  // Non-system messages, consecutive ones of a role joined: (role, text).
  std::vector<std::pair<std::string, std::string>> turns;
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const nlohmann::json& m = (*messages)[i];
    const std::string mp = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad_field(mp, "expected an object {role, content}, got " + detail::type_name(m));
    const nlohmann::json* role = field(m, "role");
    if (!role || !role->is_string()) bad_field(mp + ".role", "expected \"system\", \"user\" or \"assistant\"");
    std::string rl = role->get<std::string>();
    if (rl == "developer") rl = "system";
    if (rl != "system" && rl != "user" && rl != "assistant")
      bad_field(mp + ".role", "'" + rl + "' is not supported (system, developer, user, assistant)");
    const nlohmann::json* content = field(m, "content");
    if (!content) bad_field(mp + ".content", "missing (tool calls are not supported)");
    const std::string text = detail::content_text(*content, mp + ".content", rl == "user", r.image);
    if (rl == "system") {
      if (!r.system.empty()) r.system += "\n";
      r.system += text;
    } else if (!turns.empty() && turns.back().first == rl) {
      turns.back().second += "\n" + text;
    } else {
      if (turns.empty() && rl != "user") bad_field(mp + ".role", "the conversation must begin with a user message");
      turns.emplace_back(rl, text);
    }
  }
  if (turns.empty() || turns.back().first != "user")
    bad_field("messages", "the last message (after system messages) must be the user's");
  for (std::size_t t = 0; t + 1 < turns.size(); t += 2) r.history.push_back({turns[t].second, turns[t + 1].second});
  r.instruction = turns.back().second;

  r.max_tokens = detail::number_field<std::int64_t>(j, "max_tokens", 1, 1e9, false, true);
  if (!r.max_tokens) r.max_tokens = detail::number_field<std::int64_t>(j, "max_completion_tokens", 1, 1e9, false, true);
  r.temperature = detail::number_field<float>(j, "temperature", 0, 2, false, false);
  r.top_p = detail::number_field<float>(j, "top_p", 0, 1, true, false);
  r.seed = detail::number_field<std::uint64_t>(j, "seed", 0, 18446744073709551615.0, false, true);
  if (const auto n = detail::number_field<std::int64_t>(j, "n", 1, 1e9, false, true); n && *n != 1)
    bad_field("n", "only one choice per request (n = 1)");

  if (const nlohmann::json* stop = field(j, "stop")) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4) {
      for (std::size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) bad_field("stop[" + std::to_string(i) + "]", "expected a string");
        r.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      bad_field("stop", "expected a string or an array of at most 4 strings");
    }
    for (const std::string& s : r.stop)
      if (s.empty()) bad_field("stop", "an empty stop string");
  }
  if (const nlohmann::json* stream = field(j, "stream")) {
    if (!stream->is_boolean()) bad_field("stream", "expected a boolean, got " + stream->dump());
    r.stream = stream->get<bool>();
  }
  if (const nlohmann::json* so = field(j, "stream_options")) {
    if (!r.stream) bad_field("stream_options", "only with stream: true");
    if (!so->is_object()) bad_field("stream_options", "expected an object");
    if (const nlohmann::json* iu = field(*so, "include_usage")) {
      if (!iu->is_boolean()) bad_field("stream_options.include_usage", "expected a boolean");
      r.include_usage = iu->get<bool>();
    }
  }
  return r;
}

}  // namespace lav2::cli::serve
