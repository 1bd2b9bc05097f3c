// The CLIP ViT image tower as LLaMA-Adapter V2 calls it (`clip_encode_image`, spec section 4.1):
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
// the GEMM; vectors are converted to f32 at load.
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
#include <variant>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/io/mmap.hpp"
#include "lav2/io/safetensors.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/io/torch_checkpoint.hpp"
#include "lav2/io/torchscript.hpp"
#include "lav2/io/zip.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/vision/detail/vit_ops.hpp"

namespace lav2::vision {

/// \brief Run-time dims of a CLIP vision tower (ViT-L/14: 1024, 24, 16, 4096, 14, 16, 768).
struct ClipVisionConfig {
  int width = 0;       ///< residual width
  int n_layers = 0;    ///< resblocks
  int n_heads = 0;     ///< width / 64, as OpenAI's build_model
  int hidden_dim = 0;  ///< c_fc outputs (4 * width)
  int patch = 0;       ///< conv1 kernel and stride
  int grid = 0;        ///< patches per side; image side = grid * patch
  int out_dim = 0;     ///< proj columns
  int image_size() const { return grid * patch; }
  int n_tokens() const { return 1 + grid * grid; }
  int patch_dim() const { return 3 * patch * patch; }
  double flops_per_image() const {  // multiply-adds x 2 of the GEMMs and attention
    const double T = n_tokens(), C = width, H = hidden_dim;
    return 2.0 * (double(grid) * grid * patch_dim() * C + n_layers * (T * (4 * C * C + 2 * C * H) + 2 * T * T * C) +
                  T * C * out_dim);
  }
};

/// \brief One resblock. Matrices are [out, in] as PyTorch stores them.
template <class W>
struct ClipLayerWeights {
  TensorView<const float> ln_1_weight, ln_1_bias;   // (width)
  TensorView<const W> in_proj_weight;               // (3 width, width), rows q | k | v
  TensorView<const float> in_proj_bias;             // (3 width)
  TensorView<const W> out_proj_weight;              // (width, width)
  TensorView<const float> out_proj_bias;            // (width)
  TensorView<const float> ln_2_weight, ln_2_bias;   // (width)
  TensorView<const W> c_fc_weight;                  // (hidden_dim, width)
  TensorView<const float> c_fc_bias;                // (hidden_dim)
  TensorView<const W> c_proj_weight;                // (width, hidden_dim)
  TensorView<const float> c_proj_bias;              // (width)
};

/// \brief All weights of the tower.
template <class W>
struct ClipVisionWeights {
  TensorView<const W> conv1;                        // (width, 3, patch, patch); used as (width, 3 patch^2)
  TensorView<const float> class_embedding;          // (width)
  TensorView<const float> positional_embedding;     // (n_tokens, width)
  TensorView<const float> ln_pre_weight, ln_pre_bias;    // (width)
  std::vector<ClipLayerWeights<W>> layers;          // n_layers
  TensorView<const float> ln_post_weight, ln_post_bias;  // (width)
  TensorView<const W> proj;                         // (width, out_dim), used as x @ proj
  Tensor<W> proj_t;                                 // (out_dim, width): proj transposed at load for the GEMM
  std::vector<std::shared_ptr<const void>> owned;   // converted copies and the mapping views point into
};

/// \brief Calls fn(name, shape, slot) for every tensor of the tower, names relative to the
/// `visual.` module (as in CLIP.visual.state_dict()).
template <class W, class Fn>
void for_each_tensor(ClipVisionWeights<W>& w, const ClipVisionConfig& c, Fn&& fn) {
  const std::int64_t C = c.width, H = c.hidden_dim;
  fn(std::string("conv1.weight"), Shape{C, 3, c.patch, c.patch}, w.conv1);
  fn(std::string("class_embedding"), Shape{C}, w.class_embedding);
  fn(std::string("positional_embedding"), Shape{c.n_tokens(), C}, w.positional_embedding);
  fn(std::string("ln_pre.weight"), Shape{C}, w.ln_pre_weight);
  fn(std::string("ln_pre.bias"), Shape{C}, w.ln_pre_bias);
  w.layers.resize(std::size_t(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "transformer.resblocks." + std::to_string(i) + ".";
    ClipLayerWeights<W>& l = w.layers[std::size_t(i)];
    fn(p + "ln_1.weight", Shape{C}, l.ln_1_weight);
    fn(p + "ln_1.bias", Shape{C}, l.ln_1_bias);
    fn(p + "attn.in_proj_weight", Shape{3 * C, C}, l.in_proj_weight);
    fn(p + "attn.in_proj_bias", Shape{3 * C}, l.in_proj_bias);
    fn(p + "attn.out_proj.weight", Shape{C, C}, l.out_proj_weight);
    fn(p + "attn.out_proj.bias", Shape{C}, l.out_proj_bias);
    fn(p + "ln_2.weight", Shape{C}, l.ln_2_weight);
    fn(p + "ln_2.bias", Shape{C}, l.ln_2_bias);
    fn(p + "mlp.c_fc.weight", Shape{H, C}, l.c_fc_weight);
    fn(p + "mlp.c_fc.bias", Shape{H}, l.c_fc_bias);
    fn(p + "mlp.c_proj.weight", Shape{C, H}, l.c_proj_weight);
    fn(p + "mlp.c_proj.bias", Shape{C}, l.c_proj_bias);
  }
  fn(std::string("ln_post.weight"), Shape{C}, w.ln_post_weight);
  fn(std::string("ln_post.bias"), Shape{C}, w.ln_post_bias);
  fn(std::string("proj"), Shape{C, c.out_dim}, w.proj);
}

/// \brief The CLIP vision tower with `clip_encode_image` semantics.
class ClipVisionModel {
 public:
  /// Matrix dtypes the tower runs with: the stored one for f16 / bf16 / f32 checkpoints.
  using AnyWeights = std::variant<std::shared_ptr<ClipVisionWeights<float>>, std::shared_ptr<ClipVisionWeights<f16_t>>,
                                  std::shared_ptr<ClipVisionWeights<bf16_t>>>;

  /// \brief Loads a tower from OpenAI's TorchScript archive (ViT-L-14.pt), a torch.save
  /// state_dict (.pth) or a .safetensors file, told apart by content. Keys may be prefixed
  /// `visual.` (CLIP's state_dict), `clip.visual.` (LLaMA_adapter's) or nothing (CLIP.visual's);
  /// the text tower and anything else is ignored.
  static ClipVisionModel load(const std::string& path) {
    auto file = io::MappedFile::open(path, "CLIP checkpoint");
    const unsigned char* b = file->data();
    const bool zip = file->size() >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
    if (zip) {
      const bool ts = io::is_torchscript_archive(io::ZipArchive(file, "CLIP checkpoint"));
      file.reset();
      if (ts) {
        io::TorchScriptArchive a(path);
        return from_tensors(a.tensors(), path, a.keep_alive());
      }
      io::TorchCheckpoint ck(path);
      const io::Value* sd = ck.root().find("state_dict");  // tolerate {'state_dict': ...} and {'model': ...} wrappers
      if (!sd) sd = ck.root().find("model");
      if (sd && sd->is_dict()) return from_tensors(io::flatten_tensors(*sd, "checkpoint '" + path + "'"), path, ck.keep_alive());
      return from_tensors(ck.tensors(), path, ck.keep_alive());
    }
    if (file->size() >= 9 && b[8] == '{') {
      file.reset();
      io::SafetensorsFile st(path);
      return from_tensors(st.tensors(), path, st.keep_alive());
    }
    LAV2_THROW(load_error, "CLIP checkpoint '", path, "': neither a zip archive (TorchScript or torch.save) nor safetensors");
  }

  /// \brief Binds the tower from named tensors; `keep_alive` holds what the views point into.
  static ClipVisionModel from_tensors(const io::TensorMap& t, const std::string& file,
                                      std::shared_ptr<const void> keep_alive = {}) {
    ClipVisionModel m;
    std::string prefix;
    for (const char* p : {"visual.", "clip.visual.", ""})
      if (t.count(std::string(p) + "conv1.weight")) { prefix = p; break; }
    if (!t.count(prefix + "conv1.weight"))
      LAV2_THROW(load_error, "checkpoint '", file, "': no CLIP vision tower (no 'visual.conv1.weight', "
                 "'clip.visual.conv1.weight' or 'conv1.weight' among ", t.size(), " tensors)");
    m.prefix_ = prefix;
    m.cfg_ = infer_config(t, prefix, file);
    const DType dt = t.at(prefix + "transformer.resblocks.0.attn.in_proj_weight").dtype;
    if (dt == DType::f16) m.w_ = bind_<f16_t>(t, prefix, m.cfg_, file, keep_alive);
    else if (dt == DType::bf16) m.w_ = bind_<bf16_t>(t, prefix, m.cfg_, file, keep_alive);
    else m.w_ = bind_<float>(t, prefix, m.cfg_, file, keep_alive);
    return m;
  }

  /// \brief Reads the dims from the tensors under `prefix` and checks them against each other.
  static ClipVisionConfig infer_config(const io::TensorMap& t, const std::string& prefix, const std::string& file) {
    auto err = [&](const std::string& name, const Shape& s, const std::string& expected) {
      LAV2_THROW(load_error, "checkpoint '", file, "': tensor '", name, "' has shape ", s.to_string(), ", expected ", expected);
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
    while (t.count(prefix + "transformer.resblocks." + std::to_string(c.n_layers) + ".attn.in_proj_weight")) ++c.n_layers;
    if (c.n_layers == 0)
      LAV2_THROW(load_error, "checkpoint '", file, "': no resblocks ('", prefix, "transformer.resblocks.0.attn.in_proj_weight' is missing)");
    const std::string fc = prefix + "transformer.resblocks.0.mlp.c_fc.weight";
    c.hidden_dim = int(detail::shape_of(t, fc, file, 2)[0]);
    const std::string proj = prefix + "proj";
    const Shape& pj = detail::shape_of(t, proj, file, 2);
    if (pj[0] != c.width) err(proj, pj, "(" + std::to_string(c.width) + ", out_dim)");
    c.out_dim = int(pj[1]);
    return c;
  }

  const ClipVisionConfig& config() const { return cfg_; }
  /// Dtype the matrices are used in (f16 for OpenAI's archive used in place).
  DType weight_dtype() const {
    return w_.index() == 1 ? DType::f16 : w_.index() == 2 ? DType::bf16 : DType::f32;
  }
  /// "visual." etc.: the prefix the tower's keys had in the file.
  const std::string& key_prefix() const { return prefix_; }

  /// \brief Encodes one normalised image (3, image_size, image_size) (see preprocess_clip) into
  /// [n_tokens, out_dim] features: [CLS] first, then the patches in row-major order.
  Tensor<float> encode(ThreadPool& pool, const Tensor<float>& image_chw) const {
    const Shape& s = image_chw.shape();
    const int S = cfg_.image_size();
    if (!(s.rank == 3 && s[0] == 3 && s[1] == S && s[2] == S) && !(s.rank == 4 && s[0] == 1 && s[1] == 3 && s[2] == S && s[3] == S))
      LAV2_THROW(input_error, "CLIP encode: image has shape ", s.to_string(), ", expected (3, ", S, ", ", S, ")");
    return std::visit([&](const auto& w) { return forward_(pool, *w, image_chw.data()); }, w_);
  }

 private:
  template <class W>
  static std::shared_ptr<ClipVisionWeights<W>> bind_(const io::TensorMap& t, const std::string& prefix, const ClipVisionConfig& c,
                                                     const std::string& file, std::shared_ptr<const void> keep_alive) {
    auto w = std::make_shared<ClipVisionWeights<W>>();
    if (keep_alive) w->owned.push_back(std::move(keep_alive));
    for_each_tensor(*w, c, [&](const std::string& name, const Shape& shape, auto& slot) {
      detail::bind(slot, t, prefix + name, shape, file, w->owned);
    });
    // proj is used as x @ proj; the GEMM wants [out, in] rows.
    w->proj_t = Tensor<W>(Shape{c.out_dim, c.width});
    for (int i = 0; i < c.width; ++i)
      for (int j = 0; j < c.out_dim; ++j) w->proj_t[std::int64_t(j) * c.width + i] = w->proj(i, j);
    return w;
  }

  template <class W>
  Tensor<float> forward_(ThreadPool& pool, const ClipVisionWeights<W>& w, const float* img) const {
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
    kernels::matmul(pool, x.data() + C, patches.data(), w.conv1.data(), NP, C, PD);
    std::memcpy(x.data(), w.class_embedding.data(), std::size_t(C) * sizeof(float));
    kernels::add(x.data(), w.positional_embedding.data(), T * C);
    detail::layernorm_rows(pool, x.data(), x.data(), w.ln_pre_weight.data(), w.ln_pre_bias.data(), T, C, kEps);

    Tensor<float> h(Shape{T, C}), qkv(Shape{T, 3 * C}), att(Shape{T, C}), f(Shape{T, H});
    for (const ClipLayerWeights<W>& l : w.layers) {
      // x = x + out_proj(MHA(ln_1(x)))
      detail::layernorm_rows(pool, h.data(), x.data(), l.ln_1_weight.data(), l.ln_1_bias.data(), T, C, kEps);
      detail::linear(pool, qkv.data(), h.data(), l.in_proj_weight.data(), l.in_proj_bias.data(), T, 3 * C, C);
      detail::self_attention(pool, att.data(), qkv.data(), T, T, C, c.n_heads);
      detail::linear(pool, x.data(), att.data(), l.out_proj_weight.data(), l.out_proj_bias.data(), T, C, C,
                     /*residual=*/true);
      // x = x + c_proj(QuickGELU(c_fc(ln_2(x))))
      detail::layernorm_rows(pool, h.data(), x.data(), l.ln_2_weight.data(), l.ln_2_bias.data(), T, C, kEps);
      detail::linear(pool, f.data(), h.data(), l.c_fc_weight.data(), l.c_fc_bias.data(), T, H, C);
      pool.parallel_for(T, [&](std::int64_t r0, std::int64_t r1) { kernels::quick_gelu(f.data() + r0 * H, (r1 - r0) * H); }, 16);
      detail::linear(pool, x.data(), f.data(), l.c_proj_weight.data(), l.c_proj_bias.data(), T, C, H,
                     /*residual=*/true);
    }
    // ln_post and proj on every token (clip_encode_image), not only [CLS].
    detail::layernorm_rows(pool, x.data(), x.data(), w.ln_post_weight.data(), w.ln_post_bias.data(), T, C, kEps);
    Tensor<float> out(Shape{T, std::int64_t(c.out_dim)});
    kernels::matmul(pool, out.data(), x.data(), w.proj_t.data(), T, c.out_dim, C);
    return out;
  }

  ClipVisionConfig cfg_;
  std::string prefix_;
  AnyWeights w_;
};

}  // namespace lav2::vision
