// Checkpoints of a training run, written with io/torch_writer.hpp (atomic, torch.load-able).
//
// checkpoint.pth, the official adapter layout (spec 5.2), which lav2's loader and the official
// llama.load read:
//   {'model': {key: tensor}, 'config': {'w_bias': bool, 'w_lora': bool, 'lora_rank': int, ...}}
//   model   every tensor of the starting checkpoint under its key and in its shape (the pretrain
//           phase's unloaded LLaMA biases excepted: that model has none); the trained ones hold
//           their values after the last step in f32 (as the official trainer keeps them), the
//           others their stored bytes and dtype. A trained tensor the starting file lacked is
//           added under its official key, in its table shape.
//   config  the official keys, and lav2's (bias_set, scale_mode, fusion_mode, fusion_depth,
//           adapter) where they differ from the official defaults, so that the loader reads the
//           same variant back.
// optimizer.pth, the AdamW state for resuming (a separate file, as the official misc.save_model
// keeps 'optimizer' apart from 'model'):
//   {'format': 'lav2.adamw', 'version': 1, 'phase': str, 'step': int (the next step),
//    'steps': int, 'groups': {group: {key: {'step': int, 'exp_avg': f32, 'exp_avg_sq': f32}}},
//    'losses': f32 (step), the loss of every step so far (for the loss curve of a resumed run)}
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/io/torch_writer.hpp"
#include "lav2/model/model_loader.hpp"
#include "lav2/train/trainer.hpp"

namespace lav2::train {

/// \brief The config dict of a checkpoint of `s` (format above).
inline io::SaveValue checkpoint_config(const model::AdapterSpec& s) {
  io::SaveValue c = io::SaveValue::dict();
  c.set("w_bias", io::SaveValue::boolean(s.bias != model::BiasSet::none));
  c.set("w_lora", io::SaveValue::boolean(s.lora));
  c.set("lora_rank", io::SaveValue::integer(s.lora ? s.lora_rank : 16));
  if (s.kind != model::AdapterKind::v2)
    c.set("adapter", io::SaveValue::string(s.kind == model::AdapterKind::v1 ? "v1" : "none"));
  if (s.bias != model::BiasSet::official)
    c.set("bias_set", io::SaveValue::string(s.bias == model::BiasSet::all ? "all" : "none"));
  if (s.scale != model::ScaleMode::none)
    c.set("scale_mode", io::SaveValue::string(s.scale == model::ScaleMode::input ? "input" : "output"));
  if (s.fusion != model::FusionMode::all_adapter_layers) {
    c.set("fusion_mode", io::SaveValue::string(std::string(model::fusion_mode_name(s.fusion))));
    c.set("fusion_depth", io::SaveValue::integer(s.fusion_depth));
  }
  return c;
}

/// \brief Writes the adapter checkpoint of `trainer`'s current values to `path` (format above).
/// \param start the adapter file the run started from (its tensors as the phase loaded them).
inline void save_checkpoint(const std::string& path, Trainer& trainer, const model::AdapterFile& start) {
  std::map<std::string, const TrainableTensor*> trained;
  for (TrainableTensor* t : trainer.trainable()) trained[t->spec.name] = t;
  io::SaveValue root = io::SaveValue::dict();
  io::SaveValue& m = root.set("model", io::SaveValue::dict());
  for (const auto& [key, view] : start.tensors) {
    const auto it = trained.find(key);
    if (it == trained.end()) {
      m.set(key, io::SaveValue::tensor(view));
      continue;
    }
    const TrainableTensor& t = *it->second;
    if (t.value.numel() != view.numel())
      LAV2_THROW(internal_error, "checkpoint: '", key, "' holds ", t.value.numel(), " values, the file ", view.numel());
    m.set(key, io::SaveValue::tensor(AnyTensorView{DType::f32, t.value.data(), view.shape, {}}));
    trained.erase(it);
  }
  for (const auto& [key, t] : trained)
    m.set(key, io::SaveValue::tensor(AnyTensorView{DType::f32, t->value.data(), t->spec.shape, {}}));
  root.set("config", checkpoint_config(start.spec));
  io::save_torch(path, root);
}

/// \brief Writes the optimiser state of `trainer` and the losses so far to `path` (format above).
inline void save_optimizer(const std::string& path, Trainer& trainer, const std::vector<float>& losses = {}) {
  io::SaveValue root = io::SaveValue::dict();
  root.set("format", io::SaveValue::string("lav2.adamw"));
  root.set("version", io::SaveValue::integer(1));
  root.set("phase", io::SaveValue::string(phase_name(trainer.options().phase)));
  root.set("step", io::SaveValue::integer(trainer.step()));
  root.set("steps", io::SaveValue::integer(trainer.options().steps));
  io::SaveValue& groups = root.set("groups", io::SaveValue::dict());
  for (auto& [name, opt] : trainer.optimizers()) {
    io::SaveValue& g = groups.set(name, io::SaveValue::dict());
    for (std::size_t i = 0; i < opt.params().size(); ++i) {
      const ParamRef& p = opt.params()[i];
      io::SaveValue& s = g.set(p.name, io::SaveValue::dict());
      s.set("step", io::SaveValue::integer(opt.step_count(i)));
      const Shape shape{p.numel};
      s.set("exp_avg", io::SaveValue::tensor(AnyTensorView{DType::f32, opt.exp_avg(i).data(), shape, {}}));
      s.set("exp_avg_sq", io::SaveValue::tensor(AnyTensorView{DType::f32, opt.exp_avg_sq(i).data(), shape, {}}));
    }
  }
  root.set("losses",
           io::SaveValue::tensor(AnyTensorView{DType::f32, losses.data(), Shape{std::int64_t(losses.size())}, {}}));
  io::save_torch(path, root);
}

/// \brief Restores `trainer`'s optimiser state and next step from `path` (save_optimizer's
/// format) and returns the losses it recorded. Throws input_error naming the file and the field
/// when it does not match this run.
inline std::vector<float> load_optimizer(const std::string& path, Trainer& trainer) {
  const io::TorchCheckpoint ck(path);
  const io::Value& root = ck.root();
  auto field = [&](const io::Value& d, const std::string& key, const std::string& where) -> const io::Value& {
    const io::Value* v = d.is_dict() ? d.find(key) : nullptr;
    if (!v) LAV2_THROW(input_error, "optimizer state '", path, "': ", where, "field '", key, "' is missing");
    return *v;
  };
  const io::Value& format = field(root, "format", "");
  if (!format.is_str() || format.as_str() != "lav2.adamw")
    LAV2_THROW(input_error, "optimizer state '", path, "': field 'format' is not 'lav2.adamw'");
  const io::Value& phase = field(root, "phase", "");
  if (!phase.is_str() || phase.as_str() != phase_name(trainer.options().phase))
    LAV2_THROW(input_error, "optimizer state '", path, "': field 'phase' is '", phase.is_str() ? phase.as_str() : "?",
               "', this run's --phase is ", phase_name(trainer.options().phase));
  const io::Value& step = field(root, "step", "");
  if (!step.is_int()) LAV2_THROW(input_error, "optimizer state '", path, "': field 'step' is not an int");
  const io::Value& groups = field(root, "groups", "");
  for (auto& [name, opt] : trainer.optimizers()) {
    const io::Value& g = field(groups, name, "groups: ");
    for (std::size_t i = 0; i < opt.params().size(); ++i) {
      const ParamRef& p = opt.params()[i];
      const std::string where = "groups." + name + "." + p.name + ": ";
      const io::Value& s = field(g, p.name, "groups." + name + ": ");
      const io::Value& n = field(s, "step", where);
      const io::Value& m = field(s, "exp_avg", where);
      const io::Value& v = field(s, "exp_avg_sq", where);
      if (!n.is_int() || !m.is_tensor() || !v.is_tensor())
        LAV2_THROW(input_error, "optimizer state '", path, "': ", where, "expected an int step and two tensors");
      const AnyTensorView &mt = m.as_tensor(), &vt = v.as_tensor();
      if (mt.dtype != DType::f32 || vt.dtype != DType::f32 || mt.numel() != p.numel || vt.numel() != p.numel)
        LAV2_THROW(input_error, "optimizer state '", path, "': ", where, "moments of ", mt.numel(), " ",
                   dtype_name(mt.dtype), " values, expected ", p.numel, " f32");
      opt.set_state(i, n.as_int(), static_cast<const float*>(mt.data), static_cast<const float*>(vt.data));
    }
  }
  trainer.set_step(step.as_int());
  std::vector<float> losses;
  if (const io::Value* l = root.find("losses"); l && l->is_tensor() && l->as_tensor().dtype == DType::f32) {
    const auto* p = static_cast<const float*>(l->as_tensor().data);
    losses.assign(p, p + l->as_tensor().numel());
  }
  return losses;
}

}  // namespace lav2::train
