// libFuzzer target: Tokenizer::encode / decode and StreamingDecoder on arbitrary bytes with the
// test vocabularies (tests/data/tokenizer/tiny.model, and tiny_user.model with user-defined
// pieces). The first byte picks the tokenizer and the mode:
//   mode 0: encode the rest as text (invalid UTF-8 included), decode the ids back, and stream them
//   mode 1: read the rest as little-endian int16 ids (out-of-range and negative ones included)
//           and decode them, whole and streamed
#include <cstring>
#include <vector>

#include <lav2/text/tokenizer.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lav2::text::Tokenizer;
  static const Tokenizer toks[2] = {Tokenizer::load(LAV2_TEST_DATA_DIR "/tokenizer/tiny.model"),
                                    Tokenizer::load(LAV2_TEST_DATA_DIR "/tokenizer/tiny_user.model")};
  if (size == 0) return 0;
  const Tokenizer& tok = toks[data[0] & 1];
  const int mode = (data[0] >> 1) & 1;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<int> ids;
  if (mode == 0) {
    ids = tok.encode(rest, (data[0] & 4) != 0, (data[0] & 8) != 0);  // any text must encode
    for (int id : ids)
      if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
  } else {
    for (std::size_t i = 0; i + 1 < rest.size(); i += 2) {
      std::int16_t v;
      std::memcpy(&v, rest.data() + i, 2);
      ids.push_back(v);
    }
  }
  LAV2_FUZZ_EXPECTED_ERRORS((void)tok.decode(ids));
  LAV2_FUZZ_EXPECTED_ERRORS({
    lav2::text::StreamingDecoder sd(tok);
    std::string out;
    for (int id : ids) out += sd.push(id);
    out += sd.finish();
  });
  return 0;
}
