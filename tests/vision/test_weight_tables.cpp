// The CLIP and projector weight tables: every row's group, the official projector's size, and
// is_projector_key derived from the table (what the model loader accepts next to the LLaMA keys).
#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <string>

#include "lav2/vision/clip_weights.hpp"
#include "lav2/vision/projector_weights.hpp"

using lav2::io::Group;
using lav2::io::Missing;

TEST_CASE("CLIP table: ViT-L/14's 304M tensors, all frozen CLIP rows, no name twice") {
  const auto rows = lav2::vision::clip_tensor_table(lav2::vision::clip_vit_l14_config());
  CHECK(rows.size() == 5 + 24 * 12 + 3);
  std::set<std::string> names;
  std::int64_t params = 0;
  for (const auto& r : rows) {
    CAPTURE(r.name);
    CHECK(r.group == Group::clip);
    CHECK(r.missing == Missing::error);
    CHECK(lav2::io::official_phase(r.group) == lav2::io::OfficialPhase::frozen);
    CHECK(names.insert(r.name).second);
    params += r.shape.numel();
  }
  CHECK(params == 303966208);  // OpenAI's ViT-L/14 visual tower
  CHECK(rows.front().name == "conv1.weight");
  CHECK(rows.back().name == "proj");
}

TEST_CASE("projector table: the 7B visual branch, all pre-train rows, and is_projector_key") {
  const auto rows = lav2::vision::projector_table(lav2::vision::projector_7b_config());
  CHECK(rows.size() == 5 + 8 * 12 + 4);
  std::int64_t params = 0;
  for (const auto& r : rows) {
    CAPTURE(r.name);
    CHECK(r.group == Group::visual);
    CHECK(lav2::io::official_phase(r.group) == lav2::io::OfficialPhase::pretrain);
    CHECK(lav2::vision::is_projector_key(r.name));
    params += r.shape.numel();
  }
  CHECK(params == 60460800);
  // Any block index and any tensor of a projector module; nothing of the LLaMA side.
  CHECK(lav2::vision::is_projector_key("visual_blocks.31.attn.qkv.weight"));
  CHECK(lav2::vision::is_projector_key("clip_proj_norm.bias"));
  for (const char* k : {"adapter_query.weight", "llama.layers.0.attention.gate", "clip_projection", "visual_query",
                        "clip.visual.conv1.weight", "llama.visual_proj.weight", ""})
    CHECK_FALSE(lav2::vision::is_projector_key(k));
}
