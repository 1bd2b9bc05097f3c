// The hostile-input regression corpus (tests/corpus/<reader>/<case>, made by
// tools/reference/make_corpus.py): every file is run through its reader and the outcome compared
// with <case>.expect, which says `accept` or `<error class>: <message substring>`, optionally
// followed by a `limits: key=value ...` line that tightens a limit for that case.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <lav2/io/json_file.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/io/safetensors.hpp>
#include <lav2/io/torch_checkpoint.hpp>
#include <lav2/io/torchscript.hpp>
#include <lav2/limits.hpp>
#include <lav2/model/llama_config.hpp>
#include <lav2/text/json_reader.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/vision/image.hpp>
#include <lav2/vision/image_preprocess.hpp>

namespace fs = std::filesystem;

// lav2::TextLimits states the text readers' compile-time limits: they must agree.
static_assert(lav2::TextLimits{}.max_tokenizer_file_bytes == lav2::text::kMaxTokenizerFileBytes);
static_assert(lav2::TextLimits{}.max_encode_bytes == lav2::text::kMaxEncodeBytes);
static_assert(lav2::TextLimits{}.max_pieces == lav2::text::kMaxPieces);
static_assert(lav2::TextLimits{}.max_piece_bytes == lav2::text::kMaxPieceBytes);
static_assert(lav2::TextLimits{}.max_json_depth == std::size_t(lav2::text::JsonReader::kMaxDepth));

namespace {

const fs::path kCorpus = fs::path(LAV2_SOURCE_DIR) / "tests" / "corpus";

struct Expect {
  std::string cls;  // "accept", "load_error", "limit_error", "input_error"
  std::string substring;
  lav2::Limits limits;
};

void set_limit(lav2::Limits& l, const std::string& key, std::uint64_t v) {
  if (key == "pickle.max_stack") l.checkpoint.pickle.max_stack = v;
  else if (key == "pickle.max_memo") l.checkpoint.pickle.max_memo = v;
  else if (key == "pickle.max_ops") l.checkpoint.pickle.max_ops = v;
  else if (key == "pickle.max_depth") l.checkpoint.pickle.max_depth = v;
  else if (key == "zip.max_entries") l.checkpoint.zip.max_entries = v;
  else if (key == "checkpoint.max_tensor_bytes") l.checkpoint.max_tensor_bytes = v;
  else if (key == "safetensors.max_tensor_bytes") l.safetensors.max_tensor_bytes = v;
  else if (key == "json.max_bytes") l.json.max_bytes = v;
  else if (key == "image.max_pixels") l.image.max_pixels = v;
  else FAIL("unknown limit key '", key, "'");
}

Expect read_expect(const fs::path& p) {
  std::ifstream f(p);
  std::string line;
  std::getline(f, line);
  Expect e;
  const auto colon = line.find(": ");
  e.cls = colon == std::string::npos ? line : line.substr(0, colon);
  if (colon != std::string::npos) e.substring = line.substr(colon + 2);
  if (std::getline(f, line) && line.rfind("limits: ", 0) == 0) {
    std::istringstream ss(line.substr(8));
    std::string kv;
    while (ss >> kv) {
      const auto eq = kv.find('=');
      REQUIRE(eq != std::string::npos);
      set_limit(e.limits, kv.substr(0, eq), std::stoull(kv.substr(eq + 1)));
    }
  }
  return e;
}

// Reads the first and the last byte of every view, so that a view outside its storage is an
// ASan report in the sanitizer build.
unsigned touch(const lav2::io::TensorMap& m) {
  unsigned s = 0;
  for (const auto& [name, v] : m) {
    if (v.numel() == 0) continue;
    std::uint64_t last = 0;
    for (int i = 0; i < v.shape.rank; ++i)
      last += std::uint64_t(v.shape[i] - 1) * std::uint64_t(v.strides[std::size_t(i)]);
    const auto* p = static_cast<const volatile unsigned char*>(v.data);
    const std::size_t es = lav2::dtype_size(v.dtype);
    s += p[0] + p[last * es + es - 1];
  }
  return s;
}

void run_reader(const std::string& reader, const fs::path& file, const lav2::Limits& lim) {
  using namespace lav2;
  const std::string path = file.string();
  if (reader == "torch") {
    io::TorchCheckpoint ck(path, lim.checkpoint);
    if (ck.root().is_dict()) touch(ck.tensors());
  } else if (reader == "torchscript") {
    io::TorchScriptArchive ts(path, lim.checkpoint);
    touch(ts.tensors());
    touch(ts.constant_tensors());
  } else if (reader == "safetensors") {
    io::SafetensorsFile st(path, lim.safetensors);
    touch(st.tensors());
  } else if (reader == "npy") {
    (void)io::read_npy(path, lim.npy);
  } else if (reader == "params") {
    const io::JsonFile j = io::read_json_file(path, lim.json);
    (void)model::parse_params_json(j.value, j.path);
  } else if (reader == "tokenizer") {
    const auto tok = text::Tokenizer::load(path);
    const std::vector<int> ids = tok.encode("caf\xC3\xA9 \xFF\xFE broken \xE2\x82 utf-8", true, true);
    (void)tok.decode(ids);
  } else if (reader == "image") {
    const vision::Image img = vision::load_image(path, lim.image);
    (void)vision::preprocess_clip(img);
  } else {
    FAIL("unknown reader folder '", reader, "'");
  }
}

}  // namespace

TEST_CASE("corpus: every hostile or edge-case file gives the outcome its .expect names") {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(kCorpus))
    if (e.is_regular_file() && e.path().parent_path() != kCorpus) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  int cases = 0, accepted = 0;
  for (const fs::path& f : files) {
    if (f.extension() == ".expect") {
      INFO("orphan expectation: ", f.string());
      CHECK(fs::exists(fs::path(f).replace_extension()));
      continue;
    }
    const fs::path expect_path = f.string() + ".expect";
    INFO("case: ", fs::relative(f, kCorpus).string());
    REQUIRE_MESSAGE(fs::exists(expect_path), "no .expect beside the file");
    const Expect want = read_expect(expect_path);
    const std::string reader = f.parent_path().filename().string();
    std::string got = "accept", message;
    try {
      run_reader(reader, f, want.limits);
    } catch (const lav2::limit_error& e) {
      got = "limit_error", message = e.what();
    } catch (const lav2::input_error& e) {
      got = "input_error", message = e.what();
    } catch (const lav2::load_error& e) {
      got = "load_error", message = e.what();
    } catch (const lav2::internal_error& e) {
      got = "internal_error", message = e.what();
    } catch (const std::exception& e) {
      got = std::string("std::exception"), message = e.what();
    }
    INFO("message: ", message);
    CHECK(got == want.cls);
    if (!want.substring.empty()) CHECK(message.find(want.substring) != std::string::npos);
    // Every error names the file it is about.
    if (got != "accept" && reader != "image") CHECK(message.find(f.filename().string()) != std::string::npos);
    ++cases;
    accepted += got == "accept";
  }
  MESSAGE(cases, " corpus cases, ", accepted, " accepted");
  CHECK(cases >= 150);
}

TEST_CASE("corpus: readers give the same result on MappedFile::from_buffer as on the file") {
  using namespace lav2;
  auto bytes = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  const fs::path pth = kCorpus / "torch" / "views.pth";
  const std::string b = bytes(pth);
  io::TorchCheckpoint from_file(pth.string());
  io::TorchCheckpoint from_mem(io::MappedFile::from_buffer(b.data(), b.size(), "views.pth"));
  const io::TensorMap a = from_file.tensors(), m = from_mem.tensors();
  REQUIRE(a.size() == m.size());
  for (const auto& [name, v] : a) {
    const AnyTensorView& w = m.at(name);
    CHECK(v.shape == w.shape);
    CHECK(v.strides == w.strides);
    CHECK(std::memcmp(v.data, w.data, dtype_size(v.dtype)) == 0);
  }
  // Errors are the same too, naming the buffer's name.
  const std::string evil = bytes(kCorpus / "torch" / "evil_os_system.pth");
  CHECK_THROWS_WITH_AS(io::TorchCheckpoint(io::MappedFile::from_buffer(evil.data(), evil.size(), "evil.pth")),
                       doctest::Contains("checkpoint 'evil.pth': archive/data.pkl"), load_error);
  const std::string st = bytes(kCorpus / "safetensors" / "good.safetensors");
  CHECK(io::SafetensorsFile(io::MappedFile::from_buffer(st.data(), st.size(), "g")).tensors().size() ==
        io::SafetensorsFile((kCorpus / "safetensors" / "good.safetensors").string()).tensors().size());
  CHECK(io::MappedFile::from_buffer(nullptr, 0, "empty")->data() == nullptr);
}
