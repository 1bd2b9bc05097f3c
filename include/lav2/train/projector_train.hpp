// The visual projector's training forward and backward (the official pretrain stage trains every
// one of its tensors, weights included; it is the joint schedule's visual group). Per image, as
// vision/visual_projector.hpp computes it (spec 4.2):
//   f  = clip_proj_norm(clip_proj(features))         (T, width)       Linear + LN
//   x  = [visual_query.weight; f]                    (Q + T, width), queries first
//   x  = timm blocks: x += proj(attn(norm1 x)); x += fc2(GELU(fc1(norm2 x)))   (attention over all rows)
//   vq = visual_proj_norm(visual_proj(x[:Q]))         (Q, dim)
// The CLIP features are frozen inputs (the tower stays frozen in the official stages). The
// backward takes d loss / d vq (LlamaTrainModel::forward_backward's d_visual_query) and adds the
// gradients of all the projector's tensors. Every linear runs through the fast GEMM path of
// train/linear.hpp, attention through train/attention.hpp, LayerNorm through the scalar op.
// The last block runs on all Q + T rows (inference runs only its Q query rows): the other rows'
// outputs are discarded, so their gradients are zero, and the Q rows still attend to every row.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/io/tensor_map.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/train/activation.hpp"
#include "lav2/train/attention.hpp"
#include "lav2/train/linear.hpp"
#include "lav2/train/norm.hpp"
#include "lav2/train/param_groups.hpp"
#include "lav2/train/workspace.hpp"
#include "lav2/vision/detail/vit_ops.hpp"
#include "lav2/vision/visual_projector.hpp"

namespace lav2::train {

/// \brief The projector's training model: all its tensors trainable (f32 copies), features in,
/// the visual query out, and its backward.
class ProjectorTrainModel {
 public:
  /// Reads the projector from an adapter checkpoint's 'model' dict (as VisualProjector does).
  ProjectorTrainModel(const io::TensorMap& model_dict, const std::string& file, int visual_heads = 16)
      : cfg_(vision::VisualProjector::infer_config(model_dict, file)) {
    if (visual_heads <= 0 || cfg_.width % visual_heads != 0)
      LAV2_THROW(input_error, "visual_heads ", visual_heads, " does not divide the visual width ", cfg_.width);
    cfg_.n_heads = visual_heads;
    vision::detail::bind_weights(w_, cfg_, model_dict, "", file);
    // Every row is trainable: copy it to f32 and point the table's slot at the copy.
    vision::for_each_tensor(w_, cfg_, [&](const io::TensorSpec& row, auto& slot) {
      TrainableTensor& t = params_.emplace_back(row);
      if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, MatPtr>) {
        for (std::int64_t r = 0; r < slot.rows; ++r) mat_row_to_f32(slot, r, t.value.data() + r * slot.cols);
        slot = MatPtr::of(t.value.data(), slot.rows, slot.cols);  // Tensor data never moves
      } else {
        std::copy(slot.data(), slot.data() + t.value.numel(), t.value.data());
        slot = TensorView<const float>(t.value.data(), row.shape);
      }
    });
  }

  const vision::VisualProjectorConfig& config() const { return cfg_; }
  std::vector<TrainableTensor>& params() { return params_; }
  void zero_grad() {
    for (TrainableTensor& t : params_) std::fill(t.grad.begin(), t.grad.end(), 0.0f);
  }

  /// \brief vq (B, Q, dim) from features (B, T, clip_dim); keeps the activations for backward()
  /// (and a pointer to `features`, which must stay valid until then).
  void forward(ThreadPool& pool, const float* features, std::int64_t B, std::int64_t T, float* vq) {
    if (B <= 0 || T <= 0 || !features)
      LAV2_THROW(input_error, "projector training: ", B, " images of ", T, " CLIP tokens");
    B_ = B, T_ = T;
    acts_.resize(std::size_t(B));
    for (std::int64_t b = 0; b < B; ++b)
      forward_image_(pool, features + b * T * cfg_.clip_dim, acts_[std::size_t(b)], vq + b * cfg_.n_queries * cfg_.dim);
  }

  /// \brief Adds the gradients of every tensor from d_vq (B, Q, dim) of the last forward().
  void backward(ThreadPool& pool, const float* d_vq) {
    for (std::int64_t b = 0; b < B_; ++b)
      backward_image_(pool, acts_[std::size_t(b)], d_vq + b * cfg_.n_queries * cfg_.dim);
  }

 private:
  using Buf = AlignedVector<float>;
  static float* sized(Buf& v, std::int64_t n) {
    v.resize(std::size_t(n));
    return v.data();
  }
  static constexpr float kEps = 1e-5f;

  struct BlockActs {
    Buf x, n1, q, k, v, probs, att, x1, n2, f1, g;
  };
  struct ImageActs {
    const float* features = nullptr;
    Buf f0, f, p0;  // clip_proj out, its LN; visual_proj out
    std::vector<BlockActs> blocks;
    Buf x_last;  // the last block's output
  };

  LinearParams<float> lin_(const MatPtr& w, const TensorView<const float>& b) const {
    LinearParams<float> p;
    p.bias = b.data(), p.N = w.rows, p.K = w.cols;
    return p;
  }
  // The TrainableTensor whose value `p` points at.
  float* grad_(const void* p) {
    for (TrainableTensor& t : params_)
      if (t.value.data() == p) return t.grad.data();
    LAV2_THROW(internal_error, "projector training: a tensor without its trainable copy");
  }
  void linear_(ThreadPool& pool, float* y, const float* x, std::int64_t M, const MatPtr& w,
               const TensorView<const float>& b) {
    linear_forward(pool, ws_, y, nullptr, nullptr, x, M, w, lin_(w, b));
  }
  void linear_back_(ThreadPool& pool, float* dx, const float* dy, const float* x, std::int64_t M, const MatPtr& w,
                    const TensorView<const float>& b) {
    LinearGrads<float> g;
    g.bias = grad_(b.data()), g.weight = grad_(w.data);
    linear_backward(pool, ws_, dx, g, dy, x, nullptr, nullptr, M, w, lin_(w, b));
  }
  static void layernorm_rows(float* y, const float* x, const TensorView<const float>& w,
                             const TensorView<const float>& b, std::int64_t M, std::int64_t n) {
    for (std::int64_t i = 0; i < M; ++i) kernels::layernorm(y + i * n, x + i * n, w.data(), b.data(), n, kEps);
  }
  void layernorm_back_(float* dx, const float* dy, const float* x, const TensorView<const float>& w,
                       const TensorView<const float>& b, std::int64_t M, std::int64_t n) {
    ref::layernorm_backward(dx, grad_(w.data()), grad_(b.data()), dy, x, w.data(), M, n, kEps);
  }

  void forward_image_(ThreadPool& pool, const float* features, ImageActs& A, float* vq) {
    const std::int64_t T = T_, W = cfg_.width, Q = cfg_.n_queries, N = Q + T, F = cfg_.hidden_dim;
    const std::int64_t H = cfg_.n_heads, hd = W / H;
    A.features = features;
    linear_(pool, sized(A.f0, T * W), features, T, w_.clip_proj_weight, w_.clip_proj_bias);
    layernorm_rows(sized(A.f, T * W), A.f0.data(), w_.clip_proj_norm_weight, w_.clip_proj_norm_bias, T, W);
    Buf& x = x_;
    x.resize(std::size_t(N * W));
    std::copy(w_.visual_query.data(), w_.visual_query.data() + Q * W, x.data());
    std::copy(A.f.begin(), A.f.end(), x.data() + Q * W);
    A.blocks.resize(std::size_t(cfg_.n_blocks));
    for (int i = 0; i < cfg_.n_blocks; ++i) {
      const vision::VitBlockWeights& bw = w_.blocks[std::size_t(i)];
      BlockActs& a = A.blocks[std::size_t(i)];
      a.x = x;
      layernorm_rows(sized(a.n1, N * W), a.x.data(), bw.norm1_weight, bw.norm1_bias, N, W);
      float* qkv = sized(qkv_, N * 3 * W);
      linear_(pool, qkv, a.n1.data(), N, bw.qkv_weight, bw.qkv_bias);
      float *q = sized(a.q, N * W), *k = sized(a.k, N * W), *v = sized(a.v, N * W);
      for (std::int64_t r = 0; r < N; ++r) {
        std::copy(qkv + r * 3 * W, qkv + r * 3 * W + W, q + r * W);
        std::copy(qkv + r * 3 * W + W, qkv + r * 3 * W + 2 * W, k + r * W);
        std::copy(qkv + r * 3 * W + 2 * W, qkv + r * 3 * W + 3 * W, v + r * W);
      }
      attention_forward(pool, sized(a.att, N * W), sized(a.probs, H * N * N), q, k, v, N, H, hd, false);
      linear_(pool, sized(a.x1, N * W), a.att.data(), N, bw.proj_weight, bw.proj_bias);
      kernels::add(a.x1.data(), a.x.data(), N * W);
      layernorm_rows(sized(a.n2, N * W), a.x1.data(), bw.norm2_weight, bw.norm2_bias, N, W);
      linear_(pool, sized(a.f1, N * F), a.n2.data(), N, bw.fc1_weight, bw.fc1_bias);
      gelu_forward(sized(a.g, N * F), a.f1.data(), N * F);
      linear_(pool, x.data(), a.g.data(), N, bw.fc2_weight, bw.fc2_bias);
      kernels::add(x.data(), a.x1.data(), N * W);
    }
    A.x_last = x;
    linear_(pool, sized(A.p0, Q * cfg_.dim), A.x_last.data(), Q, w_.visual_proj_weight, w_.visual_proj_bias);
    layernorm_rows(vq, A.p0.data(), w_.visual_proj_norm_weight, w_.visual_proj_norm_bias, Q, cfg_.dim);
  }

  void backward_image_(ThreadPool& pool, const ImageActs& A, const float* d_vq) {
    const std::int64_t T = T_, W = cfg_.width, Q = cfg_.n_queries, N = Q + T, F = cfg_.hidden_dim, D = cfg_.dim;
    const std::int64_t H = cfg_.n_heads, hd = W / H;
    // vq = LN(visual_proj(x[:Q])): the rows past Q get no gradient.
    float* dp0 = sized(dp0_, Q * D);
    layernorm_back_(dp0, d_vq, A.p0.data(), w_.visual_proj_norm_weight, w_.visual_proj_norm_bias, Q, D);
    float* dx = sized(dx_, N * W);
    std::fill(dx, dx + N * W, 0.0f);
    linear_back_(pool, dx, dp0, A.x_last.data(), Q, w_.visual_proj_weight, w_.visual_proj_bias);
    float* dt = sized(dt_, N * W);
    for (int i = cfg_.n_blocks - 1; i >= 0; --i) {
      const vision::VitBlockWeights& bw = w_.blocks[std::size_t(i)];
      const BlockActs& a = A.blocks[std::size_t(i)];
      // x' = x1 + fc2(GELU(fc1(norm2 x1)))
      float *dg = sized(dg_, N * F), *df1 = sized(df1_, N * F), *dn = sized(dn_, N * W);
      linear_back_(pool, dg, dx, a.g.data(), N, bw.fc2_weight, bw.fc2_bias);
      gelu_backward(df1, dg, a.f1.data(), N * F);
      linear_back_(pool, dn, df1, a.n2.data(), N, bw.fc1_weight, bw.fc1_bias);
      layernorm_back_(dt, dn, a.x1.data(), bw.norm2_weight, bw.norm2_bias, N, W);
      kernels::add(dx, dt, N * W);  // dx1
      // x1 = x + proj(attn(norm1 x))
      float* datt = sized(datt_, N * W);
      linear_back_(pool, datt, dx, a.att.data(), N, bw.proj_weight, bw.proj_bias);
      float *dq = sized(dq_, N * W), *dk = sized(dk_, N * W), *dv = sized(dv_, N * W);
      attention_backward(pool, ws_, dq, dk, dv, datt, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), N, H, hd,
                         false);
      float* dqkv = sized(qkv_, N * 3 * W);
      for (std::int64_t r = 0; r < N; ++r) {
        std::copy(dq + r * W, dq + r * W + W, dqkv + r * 3 * W);
        std::copy(dk + r * W, dk + r * W + W, dqkv + r * 3 * W + W);
        std::copy(dv + r * W, dv + r * W + W, dqkv + r * 3 * W + 2 * W);
      }
      linear_back_(pool, dn, dqkv, a.n1.data(), N, bw.qkv_weight, bw.qkv_bias);
      layernorm_back_(dt, dn, a.x.data(), bw.norm1_weight, bw.norm1_bias, N, W);
      kernels::add(dx, dt, N * W);  // d(block input)
    }
    // x = [visual_query; f]; f = LN(clip_proj(features)), whose input needs no gradient.
    kernels::add(grad_(w_.visual_query.data()), dx, Q * W);
    float* df0 = sized(dp0_, T * W);
    layernorm_back_(df0, dx + Q * W, A.f0.data(), w_.clip_proj_norm_weight, w_.clip_proj_norm_bias, T, W);
    linear_back_(pool, nullptr, df0, A.features, T, w_.clip_proj_weight, w_.clip_proj_bias);
  }

  vision::VisualProjectorConfig cfg_;
  vision::VisualProjectorWeights w_;  // the table's slots point into params_
  std::vector<TrainableTensor> params_;
  std::vector<ImageActs> acts_;
  std::int64_t B_ = 0, T_ = 0;
  Buf x_, qkv_, dx_, dt_, dp0_, dg_, df1_, dn_, datt_, dq_, dk_, dv_;
  Workspace ws_;
};

}  // namespace lav2::train
