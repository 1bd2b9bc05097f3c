// io::open_tensor_file: the format comes from the bytes (not the name), every format gives the
// same name -> view map, and Meta's LLaMA directory loads from safetensors as from .pth.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/compare.hpp"
#include "io/io_test_util.hpp"
#include "lav2/io/tensor_file.hpp"
#include "lav2/io/weight_bind.hpp"
#include "lav2/model/model_loader.hpp"

namespace fs = std::filesystem;
using lav2::io::TensorFileFormat;

namespace {
std::string data(const std::string& name) { return std::string(LAV2_TEST_DATA_DIR) + "/" + name; }

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const char* safetensors_dtype(lav2::DType t) {
  switch (t) {
    case lav2::DType::f32: return "F32";
    case lav2::DType::f16: return "F16";
    case lav2::DType::bf16: return "BF16";
    case lav2::DType::i64: return "I64";
    case lav2::DType::i32: return "I32";
    default: break;
  }
  FAIL("no safetensors name for dtype ", lav2::dtype_name(t));
  return "";
}

// The format (see io/safetensors.hpp): u64 LE header length, the JSON header padded with spaces
// to a multiple of 8 (so every tensor stays aligned), then the dense tensors back to back.
void write_safetensors(const fs::path& path, const lav2::io::TensorMap& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string bytes;
  for (const auto& [name, v] : tensors) {
    REQUIRE(lav2::io::detail::is_dense(v));
    const std::size_t n = std::size_t(v.numel()) * lav2::dtype_size(v.dtype);
    std::vector<std::int64_t> shape(v.shape.dims.begin(), v.shape.dims.begin() + v.shape.rank);
    header[name] = {
        {"dtype", safetensors_dtype(v.dtype)}, {"shape", shape}, {"data_offsets", {bytes.size(), bytes.size() + n}}};
    bytes.append(static_cast<const char*>(v.data), n);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream f(path, std::ios::binary);
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(std::uint64_t(h.size()) >> (8 * i));
  f.write(reinterpret_cast<const char*>(len), 8);
  f << h << bytes;
  REQUIRE(f.good());
}

std::vector<float> logits_of(const std::string& llama_dir) {
  const auto loaded = lav2::model::load_model(llama_dir, 0);
  const lav2::model::LlamaModel& m = loaded.model;
  lav2::ThreadPool pool(1);
  auto state = m.new_state(pool, {});
  const std::vector<int> ids = {1, 5, 9, 2, 7};
  std::vector<float> logits(std::size_t(m.config().vocab_size));
  m.forward(pool, state, ids.data(), std::int64_t(ids.size()), logits.data());
  return logits;
}
}  // namespace

TEST_CASE("open_tensor_file tells the three formats apart by their bytes") {
  struct Case {
    std::string file;
    TensorFileFormat format;
    const char* key;
  };
  for (const Case& c :
       {Case{data("tiny_clip/state_dict.pth"), TensorFileFormat::torch_checkpoint, "visual.conv1.weight"},
        Case{data("tiny_clip/ViT-tiny.pt"), TensorFileFormat::torchscript, "visual.conv1.weight"},
        Case{data("io/good.safetensors"), TensorFileFormat::safetensors, nullptr}}) {
    CAPTURE(c.file);
    const lav2::io::TensorFile f = lav2::io::open_tensor_file(c.file);
    CHECK(f.format == c.format);
    CHECK(f.path == c.file);
    CHECK(f.keep_alive != nullptr);
    CHECK_FALSE(f.tensors.empty());
    if (c.key) CHECK(f.tensors.count(c.key) == 1);
  }
  CHECK(std::string(lav2::io::open_tensor_file(data("io/good.safetensors")).format_name()) == "safetensors");

  // The name does not matter: a .pth copy of a safetensors file is read as safetensors.
  const fs::path dir = fresh_dir("lav2_tensor_file_names");
  fs::copy_file(data("io/good.safetensors"), dir / "renamed.pth");
  CHECK(lav2::io::open_tensor_file((dir / "renamed.pth").string()).format == TensorFileFormat::safetensors);
  fs::remove_all(dir);
}

TEST_CASE("open_tensor_file refuses a file of another kind, naming it") {
  const fs::path dir = fresh_dir("lav2_tensor_file_garbage");
  const std::string path = (dir / "weights.safetensors").string();
  std::ofstream(path, std::ios::binary) << "these are not the tensors you are looking for";
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, lav2::io::open_tensor_file(path), path.c_str(), "neither a zip archive",
                             "nor safetensors");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "ab";
  LAV2_CHECK_THROWS_WITH_ALL(lav2::load_error, lav2::io::open_tensor_file(path), path.c_str(), "2 bytes");
  fs::remove_all(dir);
}

TEST_CASE("a LLaMA dir with model.safetensors gives the logits of its consolidated.00.pth") {
  const std::string pth_dir = data("tiny_llama/tiny");
  const lav2::io::TensorFile pth = lav2::io::open_tensor_file(pth_dir + "/consolidated.00.pth");
  CHECK(pth.format == TensorFileFormat::torch_checkpoint);
  const fs::path st_dir = fresh_dir("lav2_llama_safetensors");
  fs::copy_file(pth_dir + "/params.json", st_dir / "params.json");
  write_safetensors(st_dir / "model.safetensors", pth.tensors);

  const lav2::model::LlamaDir d = lav2::model::open_llama_dir(st_dir.string(), 0);
  CHECK(d.checkpoint_path == (st_dir / "model.safetensors").string());
  CHECK(d.format == "safetensors");
  const std::vector<float> want = logits_of(pth_dir), got = logits_of(st_dir.string());
  CHECK(lav2::test::max_abs_diff(got, want) == 0.0);

  // A second checkpoint in the directory is ambiguous.
  fs::copy_file(pth_dir + "/consolidated.00.pth", st_dir / "consolidated.00.pth");
  LAV2_CHECK_THROWS_WITH_ALL(lav2::input_error, lav2::model::open_llama_dir(st_dir.string(), 0), "consolidated.00.pth",
                             "model.safetensors");
  fs::remove_all(st_dir);
}
