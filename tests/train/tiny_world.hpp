// What the trainer tests share: the tiny model's tokenizer, base and CLIP tower (loaded once), and
// a fresh temporary directory.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <lav2/model/model_loader.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/train/phase_model.hpp>
#include <lav2/vision/clip_vit.hpp>

namespace lav2::test {

struct TinyWorld {
  std::string data = LAV2_TEST_DATA_DIR;
  text::Tokenizer tok = text::Tokenizer::load(data + "/tiny_llama/tokenizer.model");
  std::shared_ptr<const model::LlamaDir> base = model::open_llama_base(data + "/tiny_llama/tiny", 512);
  std::shared_ptr<const vision::ClipVisionModel> clip =
      std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(data + "/tiny_clip/ViT-tiny.pt"));
  /// tests/data/tiny_adapter/<variant>/adapter.pth as the official model of `p` loads it.
  train::PhaseModel load(train::Phase p, const std::string& variant = "full_bias") const {
    return train::load_for_phase(base, adapter(variant), p);
  }
  std::string adapter(const std::string& variant) const { return data + "/tiny_adapter/" + variant + "/adapter.pth"; }
};
inline const TinyWorld& tiny_world() {
  static const TinyWorld w;
  return w;
}

/// An empty directory <tmp>/lav2_test_<name>.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const std::filesystem::path d = std::filesystem::temp_directory_path() / ("lav2_test_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace lav2::test
