// First oracle: libsentencepiece (Debian's, the C++ library the official tokenizer wraps) on the test
// tokenizers trained by tools/reference/make_tokenizer.py.
#include "text/text_test_util.hpp"

using lav2::text::Tokenizer;
using namespace lav2_test;

TEST_CASE("tiny.model: encode/decode/streaming equal libsentencepiece on 2,500 strings") {
  const Tokenizer tok = Tokenizer::load(tokenizer_data("tiny.model"));
  SpOracle sp;
  sp.load_file(tokenizer_data("tiny.model"));
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.vocab_size() == sp.sp().GetPieceSize());
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.unk_id() == 0);
  CHECK(tok.pad_id() == -1);
  CHECK(check_parity(tok, sp, 2500, 1) == 2500);
}

TEST_CASE("tiny_user.model (user-defined symbols): parity with libsentencepiece on 2,500 strings") {
  const Tokenizer tok = Tokenizer::load(tokenizer_data("tiny_user.model"));
  SpOracle sp;
  sp.load_file(tokenizer_data("tiny_user.model"));
  CHECK(check_parity(tok, sp, 2500, 2) == 2500);
  const std::vector<int> ids = tok.encode("<image>###Instruction: \xF0\x9F\xA6\x99llama", false, false);
  CHECK(ids == sp.encode("<image>###Instruction: \xF0\x9F\xA6\x99llama"));
  CHECK(tok.id_to_piece(ids.at(1)) == "<image>");
}

TEST_CASE("encode adds bos/eos like the official Tokenizer; edge strings") {
  const Tokenizer tok = Tokenizer::load(tokenizer_data("tiny.model"));
  SpOracle sp;
  sp.load_file(tokenizer_data("tiny.model"));
  for (const std::string& s :
       std::vector<std::string>{"", " ", "  ", "\t", "\n", "hello", " hello", "hello ", "a  b", "\xFF", "\xE6\x97",
                                "12345", "\xF0\x9F\xA6\x99", std::string("a\0b", 3)}) {
    std::vector<int> want = sp.encode(s);
    CHECK(tok.encode(s, false, false) == want);
    want.insert(want.begin(), 1);
    CHECK(tok.encode(s, true, false) == want);
    want.push_back(2);
    CHECK(tok.encode(s, true, true) == want);
    CHECK(tok.decode(want) == sp.decode(want));
  }
  CHECK(tok.encode("", true, true) == std::vector<int>{1, 2});
  CHECK(tok.decode({}) == "");
  CHECK(tok.normalize(" a") ==
        "\xE2\x96\x81\xE2\x96\x81"
        "a");
  CHECK(tok.normalize("\xFF") == "\xE2\x96\x81\xEF\xBF\xBD");
}
