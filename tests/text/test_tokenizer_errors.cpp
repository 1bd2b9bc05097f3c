// Malformed tokenizer files and limits: every failure is a lav2 exception naming the file and the field.
#include "text/text_test_util.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <functional>
#include <tuple>

using lav2::text::Tokenizer;
using namespace lav2_test;

namespace {

std::string piece_msg(const std::string& piece, float score, int type) {
  std::string p;
  put_bytes(p, 1, piece);
  put_float(p, 2, score);
  put_int(p, 3, type);
  return p;
}

/// A valid little BPE ModelProto: <unk>, <s>, </s>, a, b, ab; optional tweaks.
std::string small_model(int model_type = 2, bool with_pieces = true, const std::string& extra_piece = "",
                        bool byte_fallback = false) {
  std::string m;
  if (with_pieces) {
    put_bytes(m, 1, piece_msg("<unk>", 0, 2));
    put_bytes(m, 1, piece_msg("<s>", 0, 3));
    put_bytes(m, 1, piece_msg("</s>", 0, 3));
    put_bytes(m, 1, piece_msg("a", -1, 1));
    put_bytes(m, 1, piece_msg("b", -2, 1));
    put_bytes(m, 1, piece_msg("ab", -0.5f, 1));
    if (!extra_piece.empty()) put_bytes(m, 1, piece_msg(extra_piece, -3, 1));
  }
  std::string t;
  put_int(t, 3, model_type);
  if (byte_fallback) put_int(t, 35, 1);
  put_bytes(m, 2, t);
  std::string n;
  put_bytes(n, 1, "identity");
  put_int(n, 4, 0);
  put_bytes(m, 3, n);
  return m;
}

template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception");
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a small hand-built model loads and agrees with libsentencepiece") {
  const std::string bytes = small_model();
  const Tokenizer tok = Tokenizer::from_model_proto(bytes, "small.model");
  SpOracle sp;
  sp.load_bytes(bytes);
  for (const std::string s : {"ab", "a b", "abba", "c", "cc ab", "", "  "}) {
    CHECK(tok.encode(s, true, true) == [&] {
      std::vector<int> v = sp.encode(s);
      v.insert(v.begin(), 1);
      v.push_back(2);
      return v;
    }());
    CHECK(tok.decode(sp.encode(s)) == sp.decode(sp.encode(s)));  // unknown runs: one <unk>, " ⁇ "
  }
}

TEST_CASE("malformed tokenizer.model: load_error naming the file and the field") {
  using lav2::load_error;
  auto load = [](const std::string& bytes) { return [bytes] { Tokenizer::from_model_proto(bytes, "bad.model"); }; };
  std::string m = error_of<load_error>(load(small_model(2, false)));
  CHECK(contains(m, "bad.model"));
  CHECK(contains(m, "no pieces"));
  m = error_of<load_error>(load(small_model(1)));
  CHECK(contains(m, "bad.model"));
  CHECK(contains(m, "trainer_spec.model_type"));
  CHECK(contains(m, "UNIGRAM"));
  m = error_of<load_error>(load(small_model(2, true, "x\xFFy")));
  CHECK(contains(m, "pieces[6].piece"));
  CHECK(contains(m, "UTF-8"));
  m = error_of<load_error>(load(std::string("\x0A\x80", 2)));  // pieces, length varint cut short
  CHECK(contains(m, "bad.model"));
  CHECK(contains(m, "ModelProto.pieces[0]"));
  CHECK(contains(m, "truncated varint"));
  m = error_of<load_error>(load(std::string("\x80", 1)));  // a field key cut short
  CHECK(contains(m, "truncated varint"));
  m = error_of<load_error>(load(std::string("\x08\x01", 2)));  // pieces as a varint
  CHECK(contains(m, "wire type"));
  m =
      error_of<load_error>(load(std::string("\x0A\x05"
                                            "ab",
                                            4)));  // length 5, 2 bytes left
  CHECK(contains(m, "truncated"));
  m = error_of<load_error>(load(std::string("\x0B", 1)));  // wire type 3 (group)
  CHECK(contains(m, "wire type"));
  m = error_of<load_error>(load(small_model(2, true, "a")));  // duplicate
  CHECK(contains(m, "already defined"));
  m = error_of<load_error>(load(""));
  CHECK(contains(m, "empty"));
  // Piece without text.
  std::string empty_piece;
  put_bytes(empty_piece, 1, piece_msg("", 0, 1));
  m = error_of<load_error>(load(empty_piece));
  CHECK(contains(m, "pieces[0]"));
  // No UNKNOWN piece.
  std::string no_unk;
  put_bytes(no_unk, 1, piece_msg("a", 0, 1));
  std::string t;
  put_int(t, 3, 2);
  put_bytes(no_unk, 2, t);
  m = error_of<load_error>(load(no_unk));
  CHECK(contains(m, "UNKNOWN"));
  // Byte fallback without the 256 byte pieces.
  std::string partial = small_model(2, true, "", true);
  put_bytes(partial, 1, piece_msg("<0x41>", 0, 6));
  m = error_of<load_error>(load(partial));
  CHECK(contains(m, "byte piece <0x00> is missing"));
  std::string stray = small_model();
  put_bytes(stray, 1, piece_msg("<0x41>", 0, 6));
  m = error_of<load_error>(load(stray));
  CHECK(contains(m, "byte_fallback is false"));
  // Every truncation of a real model fails cleanly (or, cut at a field boundary, loads a smaller model).
  const std::string tiny = read_file(tokenizer_data("tiny.model"));
  for (std::size_t cut = 0; cut < tiny.size(); cut += 97) {
    try {
      Tokenizer::from_model_proto(tiny.substr(0, cut), "cut.model");
    } catch (const load_error& e) {
      CHECK(contains(e.what(), "cut.model"));
    }
  }
}

TEST_CASE("files: missing, directory, JSON errors") {
  using lav2::load_error;
  std::string m = error_of<load_error>([] { Tokenizer::load("/nonexistent/tokenizer.model"); });
  CHECK(contains(m, "/nonexistent/tokenizer.model"));
  auto json = [](const std::string& text) { return [text] { Tokenizer::from_bytes(text, "bad.json"); }; };
  m = error_of<load_error>(json("{\"model\": {"));
  CHECK(contains(m, "bad.json"));
  CHECK(contains(m, "JSON"));
  m = error_of<load_error>(json("{\"model\": {\"type\": \"WordPiece\"}}"));
  CHECK(contains(m, "model.type"));
  m = error_of<load_error>(json(R"({"normalizer": {"type": "NFKC"}, "model": {"type": "BPE", "unk_token": "<unk>",)"
                                R"("vocab": {"<unk>": 0, "a": 1}, "merges": []}})"));
  CHECK(contains(m, "normalizer"));
  m = error_of<load_error>(json(R"({"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1}, "merges": ["a b"]}})"));
  CHECK(contains(m, "model.merges[0]"));
}

TEST_CASE("limits and bad ids") {
  const Tokenizer tok = Tokenizer::load(tokenizer_data("tiny.model"));
  const std::string big(lav2::text::kMaxEncodeBytes + 1, 'a');
  CHECK_THROWS_AS(tok.encode(big, false, false), lav2::limit_error);
  CHECK_THROWS_AS(tok.decode({5, 512}), lav2::input_error);
  CHECK_THROWS_AS(tok.decode({-1}), lav2::input_error);
  lav2::text::StreamingDecoder stream(tok);
  CHECK_THROWS_AS(stream.push(100000), lav2::input_error);
}

TEST_CASE("streaming decode never splits a character and ends equal to decode") {
  const Tokenizer tok = Tokenizer::load(tokenizer_data("tiny.model"));
  const std::string text = "日本語 🦙 llama \xE2\x82\xAC\xF0\x9F\x9A\x80 done";
  const std::vector<int> ids = tok.encode(text, true, true);
  lav2::text::StreamingDecoder stream(tok);
  std::string out;
  std::vector<int> so_far;
  for (int id : ids) {
    so_far.push_back(id);
    const std::string part = stream.update(so_far);
    CHECK(lav2::text::utf8::is_valid(part));
    CHECK(part.find("\xEF\xBF\xBD") == std::string::npos);
    out += part;
  }
  out += stream.finish();
  CHECK(out == text);
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("lav2 tokenize prints the ids as a JSON array") {
  const std::string cli = LAV2_CLI_PATH;
  REQUIRE_MESSAGE((!cli.empty() && std::ifstream(cli).good()), "build the lav2_cli target first: '", cli, "'");
  auto run = [&](const std::string& args) {
    const std::string cmd = "'" + cli + "' tokenize " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    const int rc = pclose(p);
    return std::make_pair(WEXITSTATUS(rc), out);
  };
  const std::string model = tokenizer_data("tiny.model");
  const Tokenizer tok = Tokenizer::load(model);
  auto json = [](const std::vector<int>& ids) {
    std::string s = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s + "]\n";
  };
  auto [rc, out] = run("--tokenizer '" + model + "' --bos 'Hello world'");
  CHECK(rc == 0);
  CHECK(out == json(tok.encode("Hello world", true, false)));
  std::tie(rc, out) = run("--tokenizer '" + model + "' --bos --eos -- '-5 dashes'");
  CHECK(rc == 0);
  CHECK(out == json(tok.encode("-5 dashes", true, true)));
  std::tie(rc, out) = run("--tokenizer '" + model + "' ''");
  CHECK(out == "[]\n");
  std::tie(rc, out) = run("--tokenizer /nonexistent.model hi");
  CHECK(rc == 2);
  CHECK(out.rfind("lav2: error:", 0) == 0);
  const std::string hf = npm_data("tokenizer-llama2/models/tokenizer.json");
  std::tie(rc, out) = run("--tokenizer '" + hf + "' 'Hello'");
  CHECK(rc == 0);
  CHECK(out == json(Tokenizer::load(hf).encode("Hello", false, false)));
}
