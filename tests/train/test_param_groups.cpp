// Parameter groups: the official pretrain / finetune sets derived from the tables' Group column
// equal the official name filters of get_trainable_params (spec 3.3) on the BIAS and LORA-BIAS
// tables; the joint schedule's visual and language groups are disjoint and cover them; and an
// AdamW step of one group leaves every parameter outside it bit-identical.
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include <lav2/train/param_groups.hpp>
#include <lav2/vision/clip_weights.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;

namespace {

model::LlamaConfig tiny_llama() {
  model::LlamaConfig c;
  c.dim = 16, c.n_layers = 3, c.n_heads = 4, c.head_dim = 4, c.hidden_dim = 48, c.vocab_size = 40;
  return c;
}
model::AdapterSpec v2(bool lora, model::FusionMode fusion = model::FusionMode::all_adapter_layers, int depth = 0) {
  model::AdapterSpec s;
  s.kind = model::AdapterKind::v2, s.bias = model::BiasSet::official, s.lora = lora, s.lora_rank = lora ? 2 : 0;
  s.query_len = 2, s.query_layer = 2, s.fusion = fusion, s.fusion_depth = depth;
  return s;
}
vision::VisualProjectorConfig tiny_projector() {
  vision::VisualProjectorConfig p;
  p.clip_dim = 8, p.width = 8, p.n_queries = 2, p.n_blocks = 2, p.hidden_dim = 32, p.dim = 16, p.n_heads = 2;
  return p;
}

// The spec's filters, word for word (spec 3.3).
bool official_pretrain(const std::string& name) {
  for (const char* k : {"gate", "clip_proj", "clip_proj_norm", "visual_query", "visual_blocks", "visual_proj",
                        "visual_proj_norm", "adapter_query"})
    if (name.find(k) != std::string::npos) return true;
  return false;
}
bool official_finetune(const std::string& name) {
  return name.rfind("llama.", 0) == 0 &&
         (name.find("norm") != std::string::npos || name.find("bias") != std::string::npos);
}

std::set<std::string> names(const std::vector<io::TensorSpec>& rows) {
  std::set<std::string> s;
  for (const auto& r : rows) s.insert(r.name);
  return s;
}

// The whole model's rows as the official LLaMA_adapter names them (CLIP under "clip.").
std::vector<io::TensorSpec> all_rows(const model::AdapterSpec& s) {
  const auto proj = tiny_projector();
  std::vector<io::TensorSpec> rows = official_rows(tiny_llama(), s, &proj);
  vision::ClipVisionConfig clip;
  clip.width = 8, clip.n_layers = 1, clip.n_heads = 2, clip.hidden_dim = 32, clip.patch = 2, clip.grid = 2,
  clip.out_dim = 8;
  for (io::TensorSpec r : vision::clip_tensor_table(clip)) {
    r.name = "clip." + r.name;
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

TEST_CASE("pretrain and finetune groups are the official name filters") {
  for (bool lora : {false, true}) {
    INFO("variant ", (lora ? "LORA-BIAS" : "BIAS"));
    const model::AdapterSpec s = v2(lora);
    const auto rows = all_rows(s);
    const GroupOptions o{s, tiny_llama().n_layers, false};
    std::set<std::string> want_pre, want_fine;
    for (const auto& r : rows) {
      if (official_pretrain(r.name)) want_pre.insert(r.name);
      if (official_finetune(r.name)) want_fine.insert(r.name);
    }
    CHECK(names(group_rows(ParamGroup::pretrain, rows, o)) == want_pre);
    CHECK(names(group_rows(ParamGroup::finetune, rows, o)) == want_fine);
    CHECK(want_pre.count("llama.layers.0.attention.gate") == 1);  // all layers' gates, layer 0's too
    CHECK(want_fine.count("llama.norm.weight") == 1);
    if (lora) CHECK(want_pre.count("llama.layers.1.attention.new_gate") == 1);
    // --train-lora adds exactly the LoRA rows to finetune.
    const GroupOptions ol{s, tiny_llama().n_layers, true};
    std::size_t n_lora = 0;
    for (const auto& r : rows) n_lora += r.group == io::Group::lora;
    CHECK(group_rows(ParamGroup::finetune, rows, ol).size() == want_fine.size() + n_lora);
  }
  CHECK(parse_param_group("language") == ParamGroup::language);
  CHECK_THROWS_AS(parse_param_group("all"), input_error);
}

TEST_CASE("joint groups: visual and language are disjoint and cover both official stages") {
  const model::AdapterSpec s = v2(true);
  const auto rows = all_rows(s);
  const GroupOptions o{s, tiny_llama().n_layers, false};
  const auto vis = names(group_rows(ParamGroup::visual, rows, o)),
             lang = names(group_rows(ParamGroup::language, rows, o));
  std::set<std::string> both;
  for (const auto& n : vis)
    if (lang.count(n)) both.insert(n);
  CHECK(both.empty());
  std::set<std::string> official = names(group_rows(ParamGroup::pretrain, rows, o)), joint = vis;
  for (const auto& n : names(group_rows(ParamGroup::finetune, rows, o))) official.insert(n);
  joint.insert(lang.begin(), lang.end());
  CHECK(joint == official);
  // Released fusion: every gate is the language group's, as in the paper.
  CHECK(lang.count("llama.layers.1.attention.gate") == 1);
  CHECK(lang.count("llama.layers.1.attention.new_gate") == 1);
  CHECK(vis.count("visual_query.weight") == 1);
  CHECK(lang.count("adapter_query.weight") == 1);

  // Paper early fusion at depth 1 with adapter layers 1..2: layer 0 holds only the visual
  // prompts, so its gate is the visual group's; layer 1's stays the language group's.
  const model::AdapterSpec pe = v2(false, model::FusionMode::paper_early, 1);
  const GroupOptions ope{pe, tiny_llama().n_layers, false};
  const auto pe_rows = all_rows(pe);
  CHECK(names(group_rows(ParamGroup::visual, pe_rows, ope)).count("llama.layers.0.attention.gate") == 1);
  CHECK(names(group_rows(ParamGroup::language, pe_rows, ope)).count("llama.layers.0.attention.gate") == 0);
  CHECK(names(group_rows(ParamGroup::language, pe_rows, ope)).count("llama.layers.1.attention.gate") == 1);
}

TEST_CASE("an AdamW step of one group leaves every parameter outside it bit-identical") {
  const model::AdapterSpec s = v2(true);
  const GroupOptions o{s, tiny_llama().n_layers, true};
  std::vector<io::TensorSpec> trainable;
  for (const auto& r : all_rows(s))
    if (in_group(ParamGroup::visual, r, o) || in_group(ParamGroup::language, r, o)) trainable.push_back(r);
  for (ParamGroup g : {ParamGroup::visual, ParamGroup::language, ParamGroup::pretrain, ParamGroup::finetune}) {
    INFO("group ", param_group_name(g));
    std::vector<TrainableTensor> tensors = allocate_trainable(trainable);
    std::uint32_t seed = 100;
    for (TrainableTensor& t : tensors) {
      const auto v = train::test::rand_f(t.value.numel(), seed++), gr = train::test::rand_f(t.value.numel(), seed++);
      std::copy(v.begin(), v.end(), t.value.begin());
      std::copy(gr.begin(), gr.end(), t.grad.begin());
    }
    std::vector<std::vector<float>> before;
    for (const TrainableTensor& t : tensors) before.emplace_back(t.value.begin(), t.value.end());
    AdamWConfig cfg;
    cfg.weight_decay = 0.05;
    AdamW opt(group_params(g, tensors, o), cfg);
    opt.step(1e-3);
    std::size_t inside = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      INFO(tensors[i].spec.name);
      const bool same = std::memcmp(before[i].data(), tensors[i].value.data(), before[i].size() * sizeof(float)) == 0;
      if (in_group(g, tensors[i].spec, o)) {
        ++inside;
        CHECK_FALSE(same);
      } else {
        CHECK(same);
      }
    }
    CHECK(inside == opt.params().size());
    CHECK(inside > 0);
  }
}
