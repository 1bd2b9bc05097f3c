// The error a `lav2 serve` request gets: an HTTP status and OpenAI's error object,
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "messages[0].content", "code": null}}
// `param` names the request field at fault (JSON-path-like, as OpenAI's do), or is null.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace lav2::cli::serve {

/// \brief A request refused with `status`; the message names the field (`param`) when one is at fault.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "invalid_request_error")
      : std::runtime_error(message),
        status(status),
        param(std::move(param)),
        code(std::move(code)),
        type(std::move(type)) {}
  int status;
  std::string param, code, type;
};

/// \brief Throws a 400 about field `param`.
[[noreturn]] inline void bad_field(const std::string& param, const std::string& message, const std::string& code = "") {
  throw ApiError(400, param + ": " + message, param, code);
}

/// \brief OpenAI's error object for `e` (param and code null when empty).
inline std::string error_json(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lav2::cli::serve
