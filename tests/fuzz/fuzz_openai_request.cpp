// libFuzzer target: the body of `lav2 serve`'s POST /v1/chat/completions (cli/serve/openai_request.hpp),
// then the prompt it makes and, for a data: URL image, the base64 decoding (cli/serve/image_source.hpp;
// local files stay refused: no --allow-local-images). Only ApiError (the 4xx/413 answer) may escape;
// any other exception is a finding, as is any sanitizer report.
#include <cstdint>
#include <string_view>

#include "serve/image_source.hpp"
#include "serve/openai_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lav2::cli::serve::RequestLimits limits;
  limits.max_bytes = 1u << 16;
  limits.max_messages = 256;
  lav2::cli::serve::ImageSourcePolicy policy;
  policy.max_image_bytes = 1u << 14;
  try {
    const lav2::cli::serve::ChatRequest r =
        lav2::cli::serve::parse_chat_request(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    (void)r.prompt();
    if (r.image) (void)lav2::cli::serve::read_image_source(r.image->url, r.image->param, policy);
  } catch (const lav2::cli::serve::ApiError& e) {
    if (e.status < 400 || e.status > 499) __builtin_trap();  // the client's fault, always a 4xx
  }
  return 0;
}
