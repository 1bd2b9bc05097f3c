// The lav2 part of a multimodal GGUF (model/gguf_mm.hpp): every adapter fixture written with
// write_gguf_mm and read back with open_gguf_mm gives the same spec and, over one base, the same
// logits bit for bit as the official checkpoint; its CLIP tensors bind the same tower. Edited
// files are refused naming the file and the key.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <lav2/io/gguf.hpp>
#include <lav2/io/gguf_writer.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/io/tensor_file.hpp>
#include <lav2/model/gguf_mm.hpp>
#include <lav2/model/gguf_mm_export.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/vision/clip_vit.hpp>

#include "model/gguf_edit.hpp"
#include "model/model_test_util.hpp"

namespace fs = std::filesystem;
using namespace lav2;
using lav2::test::error_of;

namespace {
const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kAdapters = kData + "/tiny_adapter";

std::string temp_file(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lav2_test_gguf_mm_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

std::vector<float> prefill_logits(const model::LlamaModel& m, ThreadPool& pool, const Tensor<float>& vq) {
  const std::vector<int> ids = {1, 15, 200, 3, 99, 7, 42, 300, 11};
  auto st = m.spec().takes_visual() ? m.new_state(pool, {}, vq.data(), vq.dim(0)) : m.new_state(pool, {});
  std::vector<float> logits(static_cast<std::size_t>(m.config().vocab_size));
  m.forward(pool, st, ids.data(), std::int64_t(ids.size()), logits.data());
  return logits;
}

std::size_t tower_tensor_count(const io::TensorMap& t, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& [name, view] : t) n += name.rfind(prefix, 0) == 0;
  return n;
}

// `src` edited (gguf_edit.hpp) into this test's directory as `name`.
std::string rewrite(const std::string& src, const std::string& name, const std::function<void(io::GgufWriter&)>& edit) {
  const std::string path = temp_file(name);
  lav2::test::rewrite_gguf(src, path, edit);
  return path;
}
}  // namespace

TEST_CASE("every adapter fixture survives the lav2 part: same spec, same logits, same CLIP tower") {
  ThreadPool pool(2);
  const auto base = model::open_llama_base(kData + "/tiny_llama/tiny", 512);
  const auto vq = io::read_npy_as<float>(kAdapters + "/visual_query.npy");  // [10, 64]
  const std::string clip_path = kData + "/tiny_clip/ViT-tiny.pt";
  const io::TensorFile clip = io::open_tensor_file(clip_path);
  const vision::ClipVisionModel tower = vision::ClipVisionModel::from_tensors(clip.tensors, clip_path, clip.keep_alive);
  for (const char* name : {"bias", "lora_bias", "first_k", "paper_early", "lora_paper_early", "chat65b_scale",
                           "paper_scale", "v1", "full_bias", "full_lora_bias"}) {
    const std::string variant = name;
    CAPTURE(variant);
    const model::AdapterFile official = model::open_adapter(kAdapters + "/" + name + "/adapter.pth", base->config);
    model::GgufMmExportOptions opt;
    opt.visual_heads = 4;
    const std::string path = temp_file(std::string(name) + ".gguf");
    model::write_gguf_mm(official, base->config, clip.tensors, tower.key_prefix(), opt, path);

    const model::GgufMm mm = model::open_gguf_mm(path, base->config);
    const model::AdapterSpec &a = official.spec, &b = mm.adapter.spec;
    CHECK(a.describe() == b.describe());
    CHECK((a.kind == b.kind && a.bias == b.bias && a.scale == b.scale && a.lora == b.lora && a.fusion == b.fusion));
    CHECK(a.query_len == b.query_len);
    CHECK(a.query_layer == b.query_layer);
    if (a.lora) CHECK(a.lora_rank == b.lora_rank);  // unused without LoRA (V1 leaves it 0, V2 16)
    CHECK(a.fusion_depth == b.fusion_depth);
    CHECK(mm.visual_heads == 4);
    CHECK(mm.adapter.tensors.size() == official.tensors.size());
    for (const auto& [tname, view] : mm.adapter.tensors) CHECK(view.dtype == DType::f32);  // trained: f32

    const model::LlamaModel m1 = model::build_model(base, &official), m2 = model::build_model(base, &mm.adapter);
    CHECK(prefill_logits(m1, pool, vq) == prefill_logits(m2, pool, vq));

    // The tower binds from the part with the same sizes and the same stored dtype.
    const auto again = vision::ClipVisionModel::from_tensors(mm.clip, path, mm.keep_alive);
    CHECK(again.config().width == tower.config().width);
    CHECK(again.config().n_layers == tower.config().n_layers);
    CHECK(again.config().out_dim == tower.config().out_dim);
    CHECK(mm.clip.size() == tower_tensor_count(clip.tensors, tower.key_prefix()));
  }
}

TEST_CASE("lav2 parts that are not this format are refused naming the file and the key") {
  const auto base = model::open_llama_base(kData + "/tiny_llama/tiny", 512);
  const model::AdapterFile v1 = model::open_adapter(kAdapters + "/v1/adapter.pth", base->config);
  const std::string good = temp_file("v1-good.gguf");
  model::write_gguf_mm(v1, base->config, {}, "", {}, good);
  const auto refused = [&](const std::string& p) { return error_of([&] { model::open_gguf_mm(p, base->config); }); };
  CHECK(refused(good) == "(no error)");
  using io::GgufType;
  using io::GgufValue;

  std::string p = rewrite(good, "version.gguf",
                          [](io::GgufWriter& w) { w.set("lav2.format_version", GgufValue::of_int(GgufType::u32, 2)); });
  std::string e = refused(p);
  CHECK(e.find(p) != std::string::npos);
  CHECK(e.find("'lav2.format_version' is 2, this lav2 reads 1") != std::string::npos);

  p = rewrite(good, "key.gguf", [](io::GgufWriter& w) { w.set("lav2.adapter.w_bias", GgufValue::of_bool(true)); });
  CHECK(refused(p).find("'lav2.adapter.w_bias' is not one of lav2 format 1's") != std::string::npos);

  p = rewrite(good, "type.gguf",
              [](io::GgufWriter& w) { w.set("lav2.adapter.query_len", GgufValue::of_float(GgufType::f32, 10)); });
  CHECK(refused(p).find("'lav2.adapter.query_len' is f32") != std::string::npos);

  p = rewrite(good, "kind.gguf", [](io::GgufWriter& w) { w.set("lav2.adapter.adapter", GgufValue::of_string("v3")); });
  CHECK(refused(p).find("'adapter' is 'v3'") != std::string::npos);

  p = rewrite(good, "qlen.gguf",
              [](io::GgufWriter& w) { w.set("lav2.adapter.query_len", GgufValue::of_int(GgufType::u32, 7)); });
  CHECK(refused(p).find("query_len") != std::string::npos);

  p = rewrite(good, "dim.gguf",
              [](io::GgufWriter& w) { w.set("lav2.base.embedding_length", GgufValue::of_int(GgufType::u32, 4096)); });
  CHECK(refused(p).find("made for a base of dim 4096 and 3 layers") != std::string::npos);

  p = rewrite(good, "arch.gguf",
              [](io::GgufWriter& w) { w.set("general.architecture", GgufValue::of_string("clip")); });
  CHECK(refused(p).find("'general.architecture' is 'clip', expected 'lav2'") != std::string::npos);
}
