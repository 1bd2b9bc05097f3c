// libFuzzer target: the Hugging Face tokenizer.json parser (text/json_reader.hpp,
// text/hf_tokenizer_json.hpp) and the Tokenizer built from it, used once to encode and decode.
#include <lav2/text/tokenizer.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  LAV2_FUZZ_EXPECTED_ERRORS({
    const auto tok = lav2::text::Tokenizer::from_hf_json(bytes, "fuzz.json");
    const std::vector<int> ids = tok.encode("Hello w\xC3\xB6rld 123 \xF0\x9F\xA6\x99 \xFF!", true, true);
    (void)tok.decode(ids);
  });
  return 0;
}
