// `lav2 convert`: Meta's LLaMA directory -> a GGUF base model in llama.cpp's layout (CONTRACT.md).
//   lav2 convert --llama-dir DIR [--tokenizer FILE] --out-base BASE.gguf --dtype f16|bf16|f32|q8_0|q4_0
//                [--context-length N] [--name TEXT] [--threads N]
// The base runs in llama.cpp as it is; `lav2 generate --model BASE.gguf` reads it back.
#include <cstdio>
#include <memory>
#include <string>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/io/mmap.hpp>
#include <lav2/model/gguf_export.hpp>
#include <lav2/model/llama_loader.hpp>
#include <lav2/text/sentencepiece_model.hpp>

#include "command.hpp"
#include "model_files.hpp"

namespace {

struct ConvertArgs {
  std::string llama_dir, tokenizer, out_base, dtype = "f16", name;
  int context_length = 2048, threads = 0;
};

lav2::DType parse_out_dtype(const std::string& s) {
  using lav2::DType;
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0})
    if (lav2::dtype_name(t) == s) return t;
  LAV2_THROW(lav2::input_error, "--dtype '", s, "' is not one of f16, bf16, f32, q8_0, q4_0");
}

int run_convert(const ConvertArgs& a) {
  using namespace lav2;
  const std::string tok_path = cli::resolve_tokenizer(a.tokenizer, a.llama_dir);
  const auto tok_file = io::MappedFile::open(tok_path, "tokenizer");
  const std::string_view tok_bytes(reinterpret_cast<const char*>(tok_file->data()), tok_file->size());
  const text::SentencePieceModel sp = text::parse_sentencepiece_model(tok_bytes, tok_path);
  const model::LlamaDir base = model::open_llama_dir(a.llama_dir, int(sp.pieces.size()));
  model::GgufExportOptions opt;
  opt.dtype = parse_out_dtype(a.dtype);
  opt.context_length = a.context_length;
  opt.name = a.name;
  ThreadPool pool(a.threads);
  model::write_gguf_llama(base, sp, opt, a.out_base, pool);
  std::fprintf(stderr, "lav2 convert: wrote '%s' (%s, %d layers, dim %d)\n", a.out_base.c_str(), a.dtype.c_str(),
               base.config.n_layers, base.config.dim);
  return 0;
}

const lav2::cli::CommandRegistrar kRegister{
    "convert", "Convert Meta's LLaMA directory to a GGUF base model that llama.cpp runs", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<ConvertArgs>();
      sub.add("--llama-dir", a->llama_dir, "Meta LLaMA dir: params.json + consolidated.00.pth (or one *.safetensors)")
          .required();
      sub.add("--tokenizer", a->tokenizer,
              "tokenizer.model (default DIR/../tokenizer.model, then DIR/tokenizer.model)");
      sub.add("--out-base", a->out_base, "the GGUF to write: llama.cpp's names, metadata and tokenizer").required();
      sub.add("--dtype", a->dtype, "dtype of every matrix: f16 (default) | bf16 | f32 | q8_0 | q4_0 (norms stay f32)")
          .one_of({"f16", "bf16", "f32", "q8_0", "q4_0"});
      sub.add("--context-length", a->context_length, "llama.context_length (2048, LLaMA-1's training length)")
          .range(1, 1 << 20);
      sub.add("--name", a->name, "general.name (default 'LLaMA')");
      sub.add("--threads", a->threads, "threads for quantising (0: all cores)").range(0, 1024);
      return [a] { return run_convert(*a); };
    }};

}  // namespace
