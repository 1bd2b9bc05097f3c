// The CLIP ViT image tower as LLaMA-Adapter V2 calls it (`clip_encode_image`, docs/vision.md):
//
//   x  = conv1(image)                    patch embedding, stride = kernel = patch (14): a GEMM of
//                                        the [grid*grid, 3*patch*patch] unfolded patches with
//                                        conv1.weight viewed as [width, 3*patch*patch]
//   x  = [class_embedding; x] + positional_embedding           [n_tokens = 1 + grid^2, width]
//   x  = ln_pre(x)
//   for each resblock:                   (CLIP's ResidualAttentionBlock)
//     x = x + out_proj(MHA(ln_1(x)))     in_proj rows q | k | v, heads = width / 64, no mask,
//                                        softmax(q k^T / sqrt(64)) v
//     x = x + c_proj(QuickGELU(c_fc(ln_2(x))))   QuickGELU(z) = z * sigmoid(1.702 z)
//   out = ln_post(x) @ proj              on ALL tokens (stock CLIP keeps only [CLS])  [n_tokens, out_dim]
// LayerNorm eps is 1e-5 everywhere. Computation is f32; the matrices (conv1, in_proj, out_proj,
// c_fc, c_proj, proj) stay in their stored dtype (f16 in OpenAI's archive) and are widened inside
// the GEMM; vectors are converted to f32 at load (the table: clip_weights.hpp).
//
// Dims come from the tensors (gemma.cpp style, no compile-time config): width and patch from
// conv1.weight (width, 3, patch, patch), n_tokens from positional_embedding, grid = sqrt(n_tokens - 1),
// n_layers from the resblocks present, hidden from c_fc.weight, out_dim from proj; the weight table
// (for_each_tensor) then checks every tensor's presence and shape.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lav2/core/api.hpp"
#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/clip_weights.hpp"
#include "lav2/vision/detail/vit_ops.hpp"

namespace lav2::vision {

/// \brief The CLIP vision tower with `clip_encode_image` semantics.
class ClipVisionModel {
 public:
  /// \brief Loads a tower from OpenAI's TorchScript archive (ViT-L-14.pt), a torch.save
  /// state_dict (.pth) or a .safetensors file, told apart by content (io::open_tensor_file).
  /// Keys may be prefixed `visual.` (CLIP's state_dict), `clip.visual.` (LLaMA_adapter's) or
  /// nothing (CLIP.visual's), inside an optional {'state_dict': ...} or {'model': ...} wrapper;
  /// the text tower and anything else is ignored.
  LAV2_API static ClipVisionModel load(const std::string& path);

  /// \brief Binds the tower from named tensors; `keep_alive` holds what the views point into.
  static ClipVisionModel from_tensors(const io::TensorMap& t, const std::string& file,
                                      std::shared_ptr<const void> keep_alive = {}) {
    ClipVisionModel m;
    std::string prefix;
    bool found = false;
    for (const char* wrapper : {"", "state_dict.", "model."})  // torch.save dicts flatten with '.'
      for (const char* p : {"visual.", "clip.visual.", ""})
        if (!found && t.count(std::string(wrapper) + p + "conv1.weight"))
          prefix = std::string(wrapper) + p, found = true;
    if (!found)
      LAV2_THROW(load_error, "checkpoint '", file,
                 "': no CLIP vision tower (no 'visual.conv1.weight', "
                 "'clip.visual.conv1.weight' or 'conv1.weight', also under 'state_dict.' or 'model.', among ",
                 t.size(), " tensors)");
    m.prefix_ = prefix;
    m.cfg_ = infer_config(t, prefix, file);
    auto w = std::make_shared<ClipVisionWeights>();
    if (keep_alive) w->owned.push_back(std::move(keep_alive));
    detail::bind_weights(*w, m.cfg_, t, prefix, file);
    transpose_proj_(*w);
    m.w_ = std::move(w);
    return m;
  }

  /// \brief Reads the dims from the tensors under `prefix` and checks them against each other.
  static ClipVisionConfig infer_config(const io::TensorMap& t, const std::string& prefix, const std::string& file) {
    auto err = [&](const std::string& name, const Shape& s, const std::string& expected) {
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has shape ", s.to_string(), ", expected ",
                 expected);
    };
    ClipVisionConfig c;
    const std::string conv = prefix + "conv1.weight";
    const Shape& cs = detail::shape_of(t, conv, file, 4);
    if (cs[1] != 3 || cs[2] != cs[3] || cs[2] <= 0 || cs[0] <= 0) err(conv, cs, "(width, 3, patch, patch)");
    c.width = int(cs[0]);
    c.patch = int(cs[2]);
    if (c.width % 64 != 0)
      LAV2_THROW(load_error, "checkpoint '", file, "': width ", c.width, " (from '", conv,
                 "') is not a multiple of 64; CLIP's heads are width / 64 of 64 each");
    c.n_heads = c.width / 64;
    const std::string pos = prefix + "positional_embedding";
    const Shape& ps = detail::shape_of(t, pos, file, 2);
    const std::int64_t n_patches = ps[0] - 1;
    c.grid = int(std::lround(std::sqrt(double(std::max<std::int64_t>(n_patches, 0)))));
    if (n_patches <= 0 || std::int64_t(c.grid) * c.grid != n_patches || ps[1] != c.width)
      err(pos, ps, "(1 + grid^2, " + std::to_string(c.width) + ")");
    while (t.count(prefix + "transformer.resblocks." + std::to_string(c.n_layers) + ".attn.in_proj_weight"))
      ++c.n_layers;
    if (c.n_layers == 0)
      LAV2_THROW(load_error, "checkpoint '", file, "': no resblocks ('", prefix,
                 "transformer.resblocks.0.attn.in_proj_weight' is missing)");
    const std::string fc = prefix + "transformer.resblocks.0.mlp.c_fc.weight";
    c.hidden_dim = int(detail::shape_of(t, fc, file, 2)[0]);
    const std::string proj = prefix + "proj";
    const Shape& pj = detail::shape_of(t, proj, file, 2);
    if (pj[0] != c.width) err(proj, pj, "(" + std::to_string(c.width) + ", out_dim)");
    c.out_dim = int(pj[1]);
    return c;
  }

  const ClipVisionConfig& config() const { return cfg_; }
  /// Dtype the resblocks' matrices are used in (f16 for OpenAI's archive used in place).
  DType weight_dtype() const { return w_->layers.front().qkv_weight.dtype; }
  const ClipVisionWeights& weights() const { return *w_; }
  /// "visual." etc.: the prefix the tower's keys had in the file.
  const std::string& key_prefix() const { return prefix_; }

  /// \brief Encodes one normalised image (3, image_size, image_size) (see preprocess_clip) into
  /// [n_tokens, out_dim] features: [CLS] first, then the patches in row-major order.
  Tensor<float> encode(ThreadPool& pool, const Tensor<float>& image_chw) const {
    const Shape& s = image_chw.shape();
    const int S = cfg_.image_size();
    if (!(s.rank == 3 && s[0] == 3 && s[1] == S && s[2] == S) &&
        !(s.rank == 4 && s[0] == 1 && s[1] == 3 && s[2] == S && s[3] == S))
      LAV2_THROW(input_error, "CLIP encode: image has shape ", s.to_string(), ", expected (3, ", S, ", ", S, ")");
    return forward_(pool, *w_, image_chw.data());
  }

 private:
  // proj is used as x @ proj; the GEMM wants [out, in] rows: transposed once at load, in the
  // stored dtype (an exact element copy), kept in w.owned.
  static void transpose_proj_(ClipVisionWeights& w) {
    auto transpose = [&](auto tag) {
      using T = decltype(tag);
      const MatPtr& p = w.proj;  // (width, out_dim)
      const T* src = p.as<T>();
      auto t = std::make_shared<Tensor<T>>(Shape{p.cols, p.rows});
      for (std::int64_t i = 0; i < p.rows; ++i)
        for (std::int64_t j = 0; j < p.cols; ++j) (*t)[j * p.rows + i] = src[i * p.stride + j];
      w.proj_t = MatPtr::of(t->data(), p.cols, p.rows);
      w.owned.push_back(std::move(t));
    };
    if (w.proj.dtype == DType::f16) transpose(f16_t{});
    else if (w.proj.dtype == DType::bf16) transpose(bf16_t{});
    else transpose(float{});
  }

  Tensor<float> forward_(ThreadPool& pool, const ClipVisionWeights& w, const float* img) const {
    const ClipVisionConfig& c = cfg_;
    const std::int64_t T = c.n_tokens(), C = c.width, H = c.hidden_dim, P = c.patch, G = c.grid, S = c.image_size();
    const std::int64_t NP = G * G, PD = c.patch_dim();
    constexpr float kEps = 1e-5f;
    // Unfold the image into patches [NP, 3*P*P], element order (channel, ky, kx) as conv1.weight.
    Tensor<float> patches(Shape{NP, PD});
    for (std::int64_t gy = 0; gy < G; ++gy)
      for (std::int64_t gx = 0; gx < G; ++gx) {
        float* dst = patches.data() + (gy * G + gx) * PD;
        for (std::int64_t ch = 0; ch < 3; ++ch)
          for (std::int64_t ky = 0; ky < P; ++ky, dst += P)
            std::memcpy(dst, img + (ch * S + gy * P + ky) * S + gx * P, std::size_t(P) * sizeof(float));
      }
    // conv1 as a GEMM into rows 1..NP; row 0 is [CLS]; then + positional_embedding.
    Tensor<float> x(Shape{T, C});
    kernels::matmul(pool, x.data() + C, patches.data(), w.conv1, NP);
    std::memcpy(x.data(), w.class_embedding.data(), std::size_t(C) * sizeof(float));
    kernels::add(x.data(), w.positional_embedding.data(), T * C);
    detail::layernorm_rows(pool, x.data(), x.data(), w.ln_pre_weight.data(), w.ln_pre_bias.data(), T, C, kEps);

    detail::VitScratch scratch(T, C, H);
    for (const VitBlockWeights& l : w.layers)  // CLIP's ResidualAttentionBlock, QuickGELU
      detail::vit_block(pool, l, x.data(), scratch, T, T, c.n_heads, detail::MlpActivation::quick_gelu);
    // ln_post and proj on every token (clip_encode_image), not only [CLS].
    detail::layernorm_rows(pool, x.data(), x.data(), w.ln_post_weight.data(), w.ln_post_bias.data(), T, C, kEps);
    Tensor<float> out(Shape{T, std::int64_t(c.out_dim)});
    kernels::matmul(pool, out.data(), x.data(), w.proj_t, T);
    return out;
  }

  ClipVisionConfig cfg_;
  std::string prefix_;
  std::shared_ptr<const ClipVisionWeights> w_;  // shared by copies: immutable after load
};

}  // namespace lav2::vision

#if LAV2_DEFINE_API
#include "lav2/vision/clip_vit-inl.hpp"
#endif
