// Writes a LLaMA base model as llama.cpp's GGUF (what `lav2 convert --out-base` makes), so that
// llama.cpp runs it and lav2 reads it back (model/gguf_llama.hpp):
//   - tensors under llama.cpp's names (model/gguf_names.hpp), Meta's layouts kept;
//   - every matrix (the linears, token_embd, output) in the chosen dtype: f32, f16, bf16, or
//     q8_0 / q4_0, quantised row by row from the f32 values of the source as ggml's reference
//     quantiser does (tensor/quant.hpp), so a file made from f16 weights is bit-identical to
//     `llama-quantize --pure` of the f16 file; the norms stay f32, as llama.cpp writes them;
//   - llama.* hyper-parameters and tokenizer.ggml.* from the SentencePiece model, as
//     llama.cpp's convert_hf_to_gguf.py writes them for a LLaMA tokenizer.model.
// A matrix already in the output dtype is written straight from the mapping, without a copy.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/io/gguf_writer.hpp"
#include "lav2/io/weight_bind.hpp"
#include "lav2/model/gguf_names.hpp"
#include "lav2/model/llama_loader.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/text/sentencepiece_model.hpp"

namespace lav2::model {

/// \brief What write_gguf_llama() writes besides the weights.
struct GgufExportOptions {
  DType dtype = DType::f16;   ///< of every matrix: f32, f16, bf16, q8_0 or q4_0
  int context_length = 2048;  ///< llama.context_length: LLaMA-1 was trained on 2048 tokens
  std::string name;           ///< general.name
};

/// \brief llama.cpp's general.file_type for a file whose matrices are all `dtype` (LLAMA_FTYPE_*).
inline std::uint32_t gguf_file_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return 0;    // ALL_F32
    case DType::f16: return 1;    // MOSTLY_F16
    case DType::q4_0: return 2;   // MOSTLY_Q4_0
    case DType::q8_0: return 7;   // MOSTLY_Q8_0
    case DType::bf16: return 32;  // MOSTLY_BF16
    default: LAV2_THROW(input_error, "gguf: no file type for dtype ", dtype_name(dtype));
  }
}

namespace detail {
/// The f32 values of `src` in C order (exact for f32/f16/bf16 sources).
inline std::vector<float> tensor_f32(const AnyTensorView& src, const std::string& file, const std::string& name) {
  io::detail::require_unquantised(src, file, name);
  std::vector<float> v(std::size_t(src.numel()));
  io::detail::walk_c_order(src, [&](std::int64_t i, float x) { v[std::size_t(i)] = x; });
  return v;
}

/// `src` as `dtype` bytes, rows quantised in parallel; kept alive by the returned buffer.
inline std::shared_ptr<std::vector<unsigned char>> encode_matrix(const AnyTensorView& src, DType dtype,
                                                                 const std::string& file, const std::string& name,
                                                                 ThreadPool& pool) {
  const std::int64_t rows = src.shape[0], cols = src.shape[1];
  if (cols % dtype_block_size(dtype) != 0)
    LAV2_THROW(input_error, "checkpoint '", file, "': tensor '", name, "' has ", cols, " columns, not a multiple of ",
               dtype_block_size(dtype), " as ", dtype_name(dtype), " needs");
  const std::vector<float> x = tensor_f32(src, file, name);
  const std::size_t row_bytes = dtype_row_bytes(dtype, cols);
  auto out = std::make_shared<std::vector<unsigned char>>(row_bytes * std::size_t(rows));
  pool.parallel_for(rows, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const float* in = x.data() + r * cols;
      unsigned char* o = out->data() + std::size_t(r) * row_bytes;
      switch (dtype) {
        case DType::f32: std::memcpy(o, in, row_bytes); break;
        case DType::f16:
          for (std::int64_t i = 0; i < cols; ++i) reinterpret_cast<std::uint16_t*>(o)[i] = f32_to_f16(in[i]);
          break;
        case DType::bf16:
          for (std::int64_t i = 0; i < cols; ++i) reinterpret_cast<std::uint16_t*>(o)[i] = f32_to_bf16(in[i]);
          break;
        case DType::q8_0: quantize_row(in, reinterpret_cast<BlockQ8_0*>(o), cols); break;
        case DType::q4_0: quantize_row(in, reinterpret_cast<BlockQ4_0*>(o), cols); break;
        default: LAV2_ASSERT(false && "dtype checked by write_gguf_llama");
      }
    }
  });
  return out;
}

inline std::vector<std::string> gguf_tensor_order(const LlamaConfig& c) {
  std::vector<std::string> names = {"tok_embeddings.weight"};
  for (int i = 0; i < c.n_layers; ++i)
    for (const GgufNamePair& p : kGgufLayerNames)
      names.push_back("layers." + std::to_string(i) + "." + std::string(p.meta));
  names.push_back("norm.weight");
  names.push_back("output.weight");
  return names;
}
}  // namespace detail

/// \brief Writes `base` (Meta's names, any float dtype) with the tokenizer `sp` to `path` as a
/// GGUF v3 LLaMA (see the file comment). Errors name the source tensor or the output file.
inline void write_gguf_llama(const LlamaDir& base, const text::SentencePieceModel& sp, const GgufExportOptions& opt,
                             const std::string& path, ThreadPool& pool) {
  using io::GgufType;
  using io::GgufValue;
  const DType dtype = opt.dtype;
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16 && dtype != DType::q8_0 &&
      dtype != DType::q4_0)
    LAV2_THROW(input_error, "gguf: --dtype ", dtype_name(dtype), " is not one of f32, f16, bf16, q8_0, q4_0");
  const LlamaConfig& c = base.config;
  if (int(sp.pieces.size()) != c.vocab_size)
    LAV2_THROW(input_error, "tokenizer has ", sp.pieces.size(), " pieces, but checkpoint '", base.checkpoint_path,
               "' has ", c.vocab_size, " embedding rows");
  io::GgufWriter w;
  const auto u32 = [](std::int64_t v) { return GgufValue::of_int(GgufType::u32, v); };
  const auto f32 = [](double v) { return GgufValue::of_float(GgufType::f32, v); };
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("general.name", GgufValue::of_string(opt.name.empty() ? "LLaMA" : opt.name));
  w.set("general.file_type", u32(gguf_file_type(dtype)));
  if (dtype_block_size(dtype) > 1) w.set("general.quantization_version", u32(2));  // GGML_QNT_VERSION
  w.set("llama.context_length", u32(opt.context_length));
  w.set("llama.embedding_length", u32(c.dim));
  w.set("llama.block_count", u32(c.n_layers));
  w.set("llama.feed_forward_length", u32(c.hidden_dim));
  w.set("llama.rope.dimension_count", u32(c.head_dim));
  w.set("llama.attention.head_count", u32(c.n_heads));
  w.set("llama.attention.head_count_kv", u32(c.n_heads));
  w.set("llama.attention.layer_norm_rms_epsilon", f32(c.norm_eps));
  w.set("llama.rope.freq_base", f32(c.rope_theta));
  w.set("llama.vocab_size", u32(c.vocab_size));
  // The tokenizer, as convert_hf_to_gguf.py's _set_vocab_sentencepiece writes a tokenizer.model.
  std::vector<GgufValue> tokens, scores, types;
  for (const text::Piece& p : sp.pieces) {
    tokens.push_back(GgufValue::of_string(p.piece));
    scores.push_back(f32(p.score));
    types.push_back(GgufValue::of_int(GgufType::i32, int(p.type)));
  }
  w.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
  w.set("tokenizer.ggml.pre", GgufValue::of_string("default"));
  w.set("tokenizer.ggml.tokens", GgufValue::of_array(GgufType::string, std::move(tokens)));
  w.set("tokenizer.ggml.scores", GgufValue::of_array(GgufType::f32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", GgufValue::of_array(GgufType::i32, std::move(types)));
  for (const auto& [key, id] : {std::pair{"tokenizer.ggml.bos_token_id", sp.trainer.bos_id},
                                {"tokenizer.ggml.eos_token_id", sp.trainer.eos_id},
                                {"tokenizer.ggml.unknown_token_id", sp.trainer.unk_id},
                                {"tokenizer.ggml.padding_token_id", sp.trainer.pad_id}})
    if (id >= 0 && id < c.vocab_size) w.set(key, u32(id));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(true));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::of_bool(false));
  w.set("tokenizer.ggml.add_space_prefix", GgufValue::of_bool(sp.normalizer.add_dummy_prefix));
  w.set("tokenizer.ggml.remove_extra_whitespaces", GgufValue::of_bool(sp.normalizer.remove_extra_whitespaces));

  std::vector<std::shared_ptr<const void>> keep;  // converted tensors, alive until w.write()
  for (const std::string& meta : detail::gguf_tensor_order(c)) {
    const auto it = base.tensors.find(meta);
    if (it == base.tensors.end())
      LAV2_THROW(load_error, "checkpoint '", base.checkpoint_path, "': tensor '", meta, "' is missing");
    const AnyTensorView& src = it->second;
    const std::string name = *gguf_name_from_meta(meta);
    if (src.shape.rank == 1) {  // a norm: f32, as llama.cpp stores every 1-D tensor
      auto v = std::make_shared<std::vector<float>>(detail::tensor_f32(src, base.checkpoint_path, meta));
      w.add_tensor(name, DType::f32, src.shape, v->data());
      keep.push_back(std::move(v));
    } else if (src.dtype == dtype && io::detail::is_dense(src)) {
      w.add_tensor(name, dtype, src.shape, src.data);
    } else {
      auto bytes = detail::encode_matrix(src, dtype, base.checkpoint_path, meta, pool);
      w.add_tensor(name, dtype, src.shape, bytes->data());
      keep.push_back(std::move(bytes));
    }
  }
  w.write(path);
}

}  // namespace lav2::model
