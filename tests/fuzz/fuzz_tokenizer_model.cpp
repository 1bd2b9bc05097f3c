// libFuzzer target: the SentencePiece tokenizer.model parser (text/protobuf_reader.hpp,
// text/sentencepiece_model.hpp) and the Tokenizer built from it; a model that loads is used once
// to encode and decode, so that a vocabulary the checks let through cannot crash the encoder.
#include <lav2/text/tokenizer.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  LAV2_FUZZ_EXPECTED_ERRORS({
    const auto tok = lav2::text::Tokenizer::from_model_proto(bytes, "fuzz.model");
    const std::vector<int> ids = tok.encode("Hello w\xC3\xB6rld 123 \xF0\x9F\xA6\x99 \xFF!", true, false);
    (void)tok.decode(ids);
  });
  return 0;
}
