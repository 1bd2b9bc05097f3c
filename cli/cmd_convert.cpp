// `lav2 convert`: Meta's LLaMA directory -> a GGUF base model in llama.cpp's layout, and the
// official adapter + CLIP -> the lav2 part beside it (CONTRACT.md, docs/formats.md).
//   lav2 convert --llama-dir DIR [--tokenizer FILE] [--out-base BASE.gguf] [--dtype f16|bf16|f32|q8_0|q4_0]
//                [--adapter FILE [--clip FILE] --out-mm LAV2.gguf [--visual-heads N]]
//                [--context-length N] [--name TEXT] [--threads N]
// The base runs in llama.cpp as it is; `lav2 generate --model BASE.gguf [--mm LAV2.gguf]` reads them back.
#include <cstdio>
#include <memory>
#include <string>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/io/mmap.hpp>
#include <lav2/io/tensor_file.hpp>
#include <lav2/model/gguf_export.hpp>
#include <lav2/model/gguf_mm_export.hpp>
#include <lav2/model/llama_loader.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/sentencepiece_model.hpp>
#include <lav2/vision/clip_vit.hpp>

#include "command.hpp"
#include "model_files.hpp"

namespace {

struct ConvertArgs {
  std::string llama_dir, tokenizer, out_base, dtype = "f16", name, adapter, clip, out_mm;
  int context_length = 2048, threads = 0, visual_heads = 16;
};

lav2::DType parse_out_dtype(const std::string& s) {
  using lav2::DType;
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0})
    if (lav2::dtype_name(t) == s) return t;
  LAV2_THROW(lav2::input_error, "--dtype '", s, "' is not one of f16, bf16, f32, q8_0, q4_0");
}

// The lav2 part: the adapter (checked against the base's sizes) and the CLIP tower (checked by
// binding it, as generate will).
void write_mm(const ConvertArgs& a, const lav2::model::LlamaConfig& c) {
  using namespace lav2;
  const model::AdapterFile adapter = model::open_adapter(a.adapter, c);
  io::TensorFile clip_file;
  std::string clip_prefix;
  if (!a.clip.empty()) {
    clip_file = io::open_tensor_file(a.clip);
    clip_prefix = vision::ClipVisionModel::from_tensors(clip_file.tensors, a.clip, clip_file.keep_alive).key_prefix();
  } else if (adapter.spec.takes_visual()) {
    LAV2_THROW(input_error, "--out-mm: the adapter '", a.adapter, "' (", adapter.spec.describe(),
               ") takes a visual query: give --clip");
  }
  model::GgufMmExportOptions opt;
  opt.name = a.name;
  opt.visual_heads = a.visual_heads;
  opt.adapter_source = std::filesystem::path(a.adapter).filename().string();
  if (!a.clip.empty()) opt.clip_source = std::filesystem::path(a.clip).filename().string();
  model::write_gguf_mm(adapter, c, clip_file.tensors, a.clip.empty() ? std::string() : clip_prefix, opt, a.out_mm);
  std::fprintf(stderr, "lav2 convert: wrote '%s' (%s%s)\n", a.out_mm.c_str(), adapter.spec.describe().c_str(),
               a.clip.empty() ? "" : ", with the CLIP vision tower");
}

int run_convert(const ConvertArgs& a) {
  using namespace lav2;
  if (a.out_base.empty() && a.out_mm.empty()) LAV2_THROW(input_error, "give --out-base, --out-mm or both");
  if (a.out_mm.empty() != a.adapter.empty())
    LAV2_THROW(input_error, "--out-mm and --adapter go together (the lav2 part holds the adapter)");
  if (!a.clip.empty() && a.adapter.empty()) LAV2_THROW(input_error, "--clip needs --adapter and --out-mm");
  const std::string tok_path = cli::resolve_tokenizer(a.tokenizer, a.llama_dir);
  const auto tok_file = io::MappedFile::open(tok_path, "tokenizer");
  const std::string_view tok_bytes(reinterpret_cast<const char*>(tok_file->data()), tok_file->size());
  const text::SentencePieceModel sp = text::parse_sentencepiece_model(tok_bytes, tok_path);
  const model::LlamaDir base = model::open_llama_dir(a.llama_dir, int(sp.pieces.size()));
  if (!a.out_base.empty()) {
    model::GgufExportOptions opt;
    opt.dtype = parse_out_dtype(a.dtype);
    opt.context_length = a.context_length;
    opt.name = a.name;
    ThreadPool pool(a.threads);
    model::write_gguf_llama(base, sp, opt, a.out_base, pool);
    std::fprintf(stderr, "lav2 convert: wrote '%s' (%s, %d layers, dim %d)\n", a.out_base.c_str(), a.dtype.c_str(),
                 base.config.n_layers, base.config.dim);
  }
  if (!a.out_mm.empty()) write_mm(a, base.config);
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "convert", "Convert Meta's LLaMA directory to a GGUF base model that llama.cpp runs", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<ConvertArgs>();
      sub.add("--llama-dir", a->llama_dir, "Meta LLaMA dir: params.json + consolidated.00.pth (or one *.safetensors)")
          .required();
      sub.add("--tokenizer", a->tokenizer,
              "tokenizer.model (default DIR/../tokenizer.model, then DIR/tokenizer.model)");
      sub.add("--out-base", a->out_base, "the base GGUF to write: llama.cpp's names, metadata and tokenizer");
      sub.add("--adapter", a->adapter, "official LLaMA-Adapter V2 checkpoint (.pth) for --out-mm");
      sub.add("--clip", a->clip, "OpenAI CLIP archive (.pt) or state_dict, for --out-mm");
      sub.add("--out-mm", a->out_mm, "the lav2 part to write: adapter, CLIP vision tower, projector, config");
      sub.add("--visual-heads", a->visual_heads, "heads of the projector's visual blocks (16; not in any shape)")
          .range(1, 1 << 16);
      sub.add("--dtype", a->dtype, "dtype of every matrix: f16 (default) | bf16 | f32 | q8_0 | q4_0 (norms stay f32)")
          .one_of({"f16", "bf16", "f32", "q8_0", "q4_0"});
      sub.add("--context-length", a->context_length, "llama.context_length (2048, LLaMA-1's training length)")
          .range(1, 1 << 20);
      sub.add("--name", a->name, "general.name (default 'LLaMA')");
      sub.add("--threads", a->threads, "threads for quantising (0: all cores)").range(0, 1024);
      return [a] { return run_convert(*a); };
    }};

}  // namespace
