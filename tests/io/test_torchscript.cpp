// TorchScript archive reader: archives written by torch 1.13's torch.jit.save (traced modules) and
// hostile copies (fixtures by tools/reference/make_clip_fixture.py).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/io/torchscript.hpp"

using lav2::DType;
using lav2::Shape;
using lav2::io::TorchScriptArchive;

namespace {
std::string clip_data(const std::string& name) { return std::string(LAV2_TEST_DATA_DIR) + "/tiny_clip/" + name; }
std::string error_of(const std::string& path) {
  try {
    TorchScriptArchive a(path);
  } catch (const lav2::load_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("TorchScript: a traced module's attributes come out under state_dict names") {
  TorchScriptArchive a(clip_data("ts_small.pt"));
  CHECK(a.archive_dir() == "ts_small");
  CHECK((a.version() == "3" || a.version() == "4"));  // torch 1.13 writes 3 or 4 depending on the operators used
  CHECK(a.copied_bytes() == 0);
  const auto& t = a.tensors();
  REQUIRE(t.size() == 2);
  std::ifstream in(clip_data("ts_small_expected.txt"));
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string name;
    ss >> name;
    REQUIRE(t.count(name) == 1);
    const auto v = t.at(name);
    CHECK(v.dtype == DType::f32);
    const float* p = static_cast<const float*>(v.data);
    float x;
    for (std::int64_t i = 0; ss >> x; ++i) CHECK(p[i] == x);
    ++rows;
  }
  CHECK(rows == 2);
  CHECK(t.at("lin.weight").shape == Shape{3, 2});
  // The plain tensor attribute became a constant of the traced code.
  const auto& c = a.constant_tensors();
  REQUIRE(c.count("CONSTANTS.c0") == 1);
  const float* off = static_cast<const float*>(c.at("CONSTANTS.c0").data);
  CHECK(off[0] == 1.0f);
  CHECK(off[2] == 3.0f);
}

TEST_CASE("TorchScript: OpenAI-layout CLIP archive; f16 storages, text tower and double constants") {
  TorchScriptArchive a(clip_data("ViT-tiny.pt"));
  const auto& t = a.tensors();
  CHECK(t.at("visual.transformer.resblocks.0.attn.in_proj_weight").shape == Shape{384, 128});
  CHECK(t.at("visual.transformer.resblocks.1.attn.in_proj_weight").dtype == DType::f16);
  CHECK(t.at("visual.conv1.weight").shape == Shape{128, 3, 14, 14});
  CHECK(t.at("visual.proj").shape == Shape{128, 32});
  CHECK(t.count("transformer.resblocks.0.attn.in_proj_weight") == 1);  // text tower
  CHECK(t.count("logit_scale") == 1);
  CHECK(!a.skipped().empty());  // torch.DoubleStorage constants of the traced code
  // Same names and values as torch.save(model.state_dict()).
  lav2::io::TorchCheckpoint sd(clip_data("state_dict.pth"));
  const auto ts = sd.tensors();
  CHECK(ts.size() == t.size());
  for (const auto& kv : ts) {
    REQUIRE(t.count(kv.first) == 1);
    const auto& v = t.at(kv.first);
    CHECK(v.shape == kv.second.shape);
    CHECK(std::memcmp(v.data, kv.second.data, std::size_t(v.numel()) * lav2::dtype_size(v.dtype)) == 0);
  }
}

TEST_CASE("TorchScript: executable globals in data.pkl or constants.pkl are rejected by name") {
  const std::string os_sys = error_of(clip_data("ts_evil_os_system.pt"));
  CHECK(os_sys.find("ts_evil_os_system.pt") != std::string::npos);
  CHECK(os_sys.find("data.pkl") != std::string::npos);
  CHECK(os_sys.find("'os.system'") != std::string::npos);
  const std::string ev = error_of(clip_data("ts_evil_builtins_eval.pt"));
  CHECK(ev.find("ts_evil_builtins_eval.pt") != std::string::npos);
  CHECK(ev.find("constants.pkl") != std::string::npos);
  CHECK(ev.find("'builtins.eval'") != std::string::npos);
}

TEST_CASE("TorchScript and torch.save readers refuse each other's files") {
  CHECK(error_of(clip_data("state_dict.pth")).find("not a TorchScript archive") != std::string::npos);
  CHECK_THROWS_AS(lav2::io::TorchCheckpoint(clip_data("ts_small.pt")), lav2::load_error);
  // The plain unpickler (no TorchScript mode) still rejects __torch__ classes.
}
