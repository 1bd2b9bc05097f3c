// `lav2 train`: trains an adapter on the CPU (CONTRACT.md, docs/training.md).
//   lav2 train --llama-dir DIR [--tokenizer FILE] --adapter FILE [--clip FILE] [--channel-order bgr|rgb]
//              [--visual-heads N] --phase pretrain|finetune|joint --data FILE... [--captions FILE]
//              --steps N [--lr LR] [--weight-decay WD] [--batch B] [--accum A] [--warmup-steps W]
//              [--max-words M] [--seed S] [--threads T] --out DIR [--train-lora] [--dump-grads DIR]
//              [--joint-ratio R] [--official-quirks] [--augment]
// --out DIR receives checkpoint.pth, optimizer.pth and loss.png; when it already holds
// checkpoint.pth and optimizer.pth, the run resumes from them (at their step, under this run's
// schedule). The defaults not given are the official ones: lr = blr * batch * accum / 256 with blr
// 1e-4 (pretrain) or 1e-3 (finetune, joint); weight decay 0.05 / 0.02; max words 96 / 512; warmup
// steps / 20 (the official code warms up over whole epochs, which a step count does not have).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/io/npy.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/train/checkpoint.hpp>
#include <lav2/train/data.hpp>
#include <lav2/train/phase_model.hpp>
#include <lav2/train/trainer.hpp>
#include <lav2/vision/clip_vit.hpp>

#include "command.hpp"
#include "loss_plot.hpp"
#include "model_files.hpp"
#include "process_stats.hpp"
#include "train_progress.hpp"

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  std::string llama_dir, tokenizer, adapter, clip, channel_order = "bgr", phase, captions, out, dump_grads;
  std::vector<std::string> data;
  int steps = 0, batch = 4, accum = 1, warmup_steps = -1, max_words = -1, threads = 0, visual_heads = 16,
      joint_ratio = 0;
  float lr = std::numeric_limits<float>::quiet_NaN(), weight_decay = std::numeric_limits<float>::quiet_NaN();
  std::uint64_t seed = 0;
  bool train_lora = false, official_quirks = false, augment = false;
};

void make_dir(const std::string& dir, const char* flag) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    LAV2_THROW(lav2::input_error, flag, ": cannot create directory '", dir, "'", ec ? ": " + ec.message() : "");
}

// grad_<key>.npy (f32) of every trainable tensor, in the shape of the starting checkpoint's tensor
// (the table's where it has none), and loss.json.
void dump_grads(const std::string& dir, lav2::train::Trainer& t, const lav2::model::AdapterFile& start, double loss) {
  using namespace lav2;
  for (train::TrainableTensor* p : t.trainable()) {
    const auto it = start.tensors.find(p->spec.name);
    const Shape shape = it != start.tensors.end() ? it->second.shape : p->spec.shape;
    io::write_npy((fs::path(dir) / ("grad_" + p->spec.name + ".npy")).string(),
                  TensorView<const float>(p->grad.data(), shape));
  }
  std::ofstream f(fs::path(dir) / "loss.json");
  char buf[64];
  std::snprintf(buf, sizeof buf, "{\"loss\": %.9g}\n", loss);
  f << buf;
  if (!f) LAV2_THROW(input_error, "--dump-grads: cannot write '", (fs::path(dir) / "loss.json").string(), "'");
}

int run_train(TrainArgs a) {
  using namespace lav2;
  const train::Phase phase = train::parse_phase(a.phase);
  if (a.joint_ratio != 0 && phase != train::Phase::joint)
    LAV2_THROW(input_error, "--joint-ratio is for --phase joint (got --phase ", a.phase, ")");
  if (a.data.empty() && a.captions.empty()) LAV2_THROW(input_error, "--data is required (or --captions)");
  if (phase == train::Phase::joint && (a.data.empty() || a.captions.empty()))
    LAV2_THROW(input_error, "--phase joint needs --data (instruction batches) and --captions (image-text batches)");
  if (a.visual_heads < 1) LAV2_THROW(input_error, "--visual-heads ", a.visual_heads, " must be positive");
  const bool pretrain = phase == train::Phase::pretrain;
  if (a.max_words < 0) a.max_words = pretrain ? 96 : 512;
  if (a.warmup_steps < 0) a.warmup_steps = a.steps / 20;
  if (a.warmup_steps >= a.steps)
    LAV2_THROW(input_error, "--warmup-steps ", a.warmup_steps, " must be below --steps ", a.steps);
  if (std::isnan(a.lr)) a.lr = float((pretrain ? 1e-4 : 1e-3) * double(a.batch) * double(a.accum) / 256.0);
  if (std::isnan(a.weight_decay)) a.weight_decay = pretrain ? 0.05f : 0.02f;
  if (a.lr < 0) LAV2_THROW(input_error, "--lr ", a.lr, " is negative");
  if (a.weight_decay < 0) LAV2_THROW(input_error, "--weight-decay ", a.weight_decay, " is negative");
  std::error_code ec;
  if (!fs::is_directory(a.llama_dir, ec)) LAV2_THROW(input_error, "--llama-dir '", a.llama_dir, "' is not a directory");
  for (const std::string& d : a.data)
    if (!fs::is_regular_file(d, ec)) LAV2_THROW(input_error, "--data '", d, "' is not a file");
  if (!a.captions.empty() && !fs::is_regular_file(a.captions, ec))
    LAV2_THROW(input_error, "--captions '", a.captions, "' is not a file");
  // The output directories exist before any work, so a bad path fails at once.
  make_dir(a.out, "--out");
  if (!a.dump_grads.empty()) make_dir(a.dump_grads, "--dump-grads");
  const fs::path out(a.out);
  const std::string ckpt_path = (out / "checkpoint.pth").string(), opt_path = (out / "optimizer.pth").string();
  const bool resume = fs::exists(opt_path);
  if (resume && !fs::exists(ckpt_path))
    LAV2_THROW(input_error, "--out '", a.out, "' holds optimizer.pth but no checkpoint.pth to resume from");

  const text::Tokenizer tok = text::Tokenizer::load(cli::resolve_tokenizer(a.tokenizer, a.llama_dir));
  const auto base = model::open_llama_base(a.llama_dir, tok.vocab_size());
  const train::PhaseModel pm = train::load_for_phase(base, resume ? ckpt_path : a.adapter, phase);
  const model::LoadedModel& loaded = pm.loaded;
  if (!pm.not_loaded.empty()) {
    std::string keys;
    for (std::size_t i = 0; i < pm.not_loaded.size() && i < 3; ++i) keys += (i ? ", " : "") + pm.not_loaded[i];
    if (pm.not_loaded.size() > 3) keys += ", ... (" + std::to_string(pm.not_loaded.size() - 3) + " more)";
    std::fprintf(stderr,
                 "lav2 train: --phase pretrain: the official pretrain model has no LLaMA biases; %zu tensors of '%s' "
                 "are not loaded: %s\n",
                 pm.not_loaded.size(), loaded.adapter.path.c_str(), keys.c_str());
  }
  std::shared_ptr<const vision::ClipVisionModel> clip;
  if (loaded.model.spec().takes_visual()) {
    if (a.clip.empty())
      LAV2_THROW(input_error, "--adapter needs --clip: LLaMA-Adapter V2 computes its visual query with CLIP");
    clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(a.clip));
  }
  const train::DataOptions dopt{a.max_words, a.official_quirks};
  std::vector<train::Sample> instructions, captions;
  for (const std::string& d : a.data)
    for (train::Sample& s : train::read_instruction_json(d, tok, dopt)) instructions.push_back(std::move(s));
  if (!a.captions.empty()) captions = train::read_caption_tsv(a.captions, tok, dopt);

  train::TrainOptions o;
  o.phase = phase;
  o.steps = a.steps, o.warmup_steps = a.warmup_steps;
  o.lr = a.lr, o.weight_decay = a.weight_decay;
  o.batch = a.batch, o.accum = a.accum, o.joint_ratio = a.joint_ratio ? a.joint_ratio : 1;
  o.seed = a.seed, o.train_lora = a.train_lora, o.visual_heads = a.visual_heads, o.augment = a.augment;
  o.channel_order = a.channel_order == "rgb" ? vision::ChannelOrder::rgb : vision::ChannelOrder::bgr;
  ThreadPool pool(a.threads);
  train::Trainer trainer(pool, loaded, clip, o, std::move(instructions), std::move(captions));
  std::vector<float> losses;
  if (resume) {
    losses = train::load_optimizer(opt_path, trainer);
    if (trainer.done())
      LAV2_THROW(input_error, "--out '", a.out, "' holds a run at step ", trainer.step(),
                 ", which is not below --steps ", a.steps, "; raise --steps to continue it");
    std::fprintf(stderr, "lav2 train: resuming '%s' at step %lld\n", a.out.c_str(), (long long)trainer.step());
  }
  const std::int64_t first = trainer.step();
  cli::ProgressBar bar(a.steps, first);
  cli::ProcessTimer timer;
  std::int64_t tokens = 0;
  while (!trainer.done()) {
    const bool dump = !a.dump_grads.empty() && trainer.step() == first;
    const double loss = trainer.train_step(pool, [&](double l) {
      if (dump) dump_grads(a.dump_grads, trainer, loaded.adapter, l);
    });
    losses.push_back(float(loss));
    tokens += trainer.last_tokens();
    const double s = timer.seconds();
    bar.update(trainer.step(), loss, s > 0 ? double(tokens) / s : 0.0, s);
  }
  bar.finish();
  train::save_checkpoint(ckpt_path, trainer, loaded.adapter);
  train::save_optimizer(opt_path, trainer, losses);
  cli::write_loss_png((out / "loss.png").string(), losses);
  const double s = timer.seconds();
  std::fprintf(stderr, "lav2 train: %lld steps, loss %.4f -> %.4f, %.0f tokens/s, peak RSS %.1f MiB; wrote %s\n",
               (long long)(trainer.step() - first), losses.empty() ? 0.0 : double(losses[std::size_t(first)]),
               losses.empty() ? 0.0 : double(losses.back()), s > 0 ? double(tokens) / s : 0.0,
               double(cli::peak_rss_bytes()) / 1048576.0, a.out.c_str());
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "train", "Train adapter parameters on the CPU (pretrain, finetune or the paper's joint schedule)",
    [](lav2::cli::Options& sub) {
      auto a = std::make_shared<TrainArgs>();
      sub.add("--llama-dir", a->llama_dir, "Meta LLaMA dir: params.json + consolidated.00.pth").required();
      sub.add("--tokenizer", a->tokenizer,
              "tokenizer.model (default DIR/../tokenizer.model, then DIR/tokenizer.model)");
      sub.add("--adapter", a->adapter, "the official checkpoint to start from (.pth holding {'model','config'})")
          .required();
      sub.add("--clip", a->clip, "OpenAI CLIP archive (.pt, TorchScript) or a state_dict .pth / safetensors");
      sub.add("--channel-order", a->channel_order, "bgr (default: the released weights were trained on BGR) | rgb")
          .one_of({"bgr", "rgb"});
      sub.add("--visual-heads", a->visual_heads, "heads of the visual blocks (16; not inferable from the checkpoint)");
      sub.add("--phase", a->phase, "pretrain | finetune | joint").required().one_of({"pretrain", "finetune", "joint"});
      sub.add("--data", a->data, "instruction JSON: [{instruction, input?, output, image?}] (repeatable)");
      sub.add("--captions", a->captions, "image-caption TSV: path<TAB>caption per line");
      sub.add("--steps", a->steps, "optimiser steps").required().range(1, 1 << 30);
      sub.add("--lr", a->lr, "peak learning rate (official: blr * batch * accum / 256, blr 1e-4 pretrain, 1e-3 else)");
      sub.add("--weight-decay", a->weight_decay, "AdamW weight decay (0.05 pretrain, 0.02 else)");
      sub.add("--batch", a->batch, "samples per micro-batch (4)").range(1, 1 << 20);
      sub.add("--accum", a->accum, "micro-batches per optimiser step (1)").range(1, 1 << 20);
      sub.add("--warmup-steps", a->warmup_steps, "linear warmup steps before the half cosine (--steps / 20)")
          .range(0, 1 << 30);
      sub.add("--max-words", a->max_words, "tokens per sample, padded or cut (96 pretrain, 512 else)")
          .range(2, 1 << 20);
      sub.add("--seed", a->seed, "shuffling seed (0)");
      sub.add("--threads", a->threads, "threads (0: all cores)").range(0, 1024);
      sub.add("--out", a->out, "directory for checkpoint.pth, optimizer.pth and loss.png (resumes from them)")
          .required();
      sub.flag("--train-lora", a->train_lora, "also train LoRA (never trained officially)");
      sub.add("--dump-grads", a->dump_grads, "write grad_<key>.npy and loss.json of the first step into DIR");
      sub.add("--joint-ratio", a->joint_ratio, "joint: image-text batches per instruction batch (1)").range(1, 1 << 20);
      sub.flag("--official-quirks", a->official_quirks, "text-only prompts hold the instruction's tuple repr");
      sub.flag("--augment", a->augment,
               "the official RandomResizedCrop(224, scale 0.9-1, ratio 3/4-4/3) per image draw");
      return [a] { return run_train(*a); };
    }};

}  // namespace
