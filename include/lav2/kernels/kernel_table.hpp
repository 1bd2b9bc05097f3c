// The kernels as a table of function pointers, one table per instruction-set level.
//
// The model calls kernels through the table that dispatch.hpp chose for this CPU, so a program
// built for any x86-64 runs the AVX-512, AVX2+FMA+F16C or SSE2 kernels, whichever the CPU has
// (kernels/isa/ compiles one table per level; cpu_features.hpp decides). The scalar reference is
// a table too (ref/ref_table.hpp): every SIMD table is tested against it, entry by entry.
//
// This header includes no SIMD code: a translation unit that only calls kernels compiles none.
#pragma once

#include <cstdint>
#include <type_traits>

#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/tensor/quant_x8.hpp"

namespace lav2::kernels {

/// \brief An instruction-set level, narrowest first. `ref` is the scalar reference; `native` is
/// xsimd::default_arch of a program built without the per-level units on a CPU family other than
/// x86 (dispatch.hpp), where the levels below do not apply.
enum class Isa : int { ref = 0, sse2 = 1, avx2 = 2, avx512 = 3, native = 4 };
/// Every level, narrowest first.
inline constexpr Isa kAllIsas[] = {Isa::ref, Isa::sse2, Isa::avx2, Isa::avx512, Isa::native};

/// \brief The level's name as LAV2_ISA spells it: "ref", "sse2", "avx2", "avx512" (or "native").
inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::sse2: return "sse2";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::native: return "native";
  }
  return "?";
}

/// \brief One function pointer per kernel, with the signatures of dispatch.hpp, and what the
/// table was built for.
struct KernelTable {
  template <class W>
  using MatmulFn = void (*)(ThreadPool&, float*, const float*, const W*, std::int64_t, std::int64_t, std::int64_t,
                            Epilogue);
  template <class KV>
  using AttentionFn = void (*)(float*, const float*, const KV*, const KV*, std::int64_t, std::int64_t, std::int64_t,
                               float, float*);

  Isa isa = Isa::ref;
  const char* arch_name = "ref";  ///< xsimd's name of the architecture ("avx512bw", "fma3+avx2", "sse2")
  int float_lanes = 1;            ///< f32 lanes of one batch: the tests' edge sizes

  float (*dot)(const float*, const float*, std::int64_t);
  void (*axpy)(float*, float, const float*, std::int64_t);
  void (*add)(float*, const float*, std::int64_t);
  void (*rmsnorm)(float*, const float*, const float*, std::int64_t, float);
  void (*layernorm)(float*, const float*, const float*, const float*, std::int64_t, float);
  /// Training (kernels/ref/backward.hpp): dx, dw (accumulated), dy, x, w, n, eps.
  void (*rmsnorm_backward)(float*, float*, const float*, const float*, const float*, std::int64_t, float);
  void (*rope_interleaved)(float*, std::int64_t, const float*, const float*);
  void (*softmax)(float*, std::int64_t);
  void (*silu)(float*, std::int64_t);
  void (*swiglu)(float*, const float*, const float*, std::int64_t);
  void (*gelu_erf)(float*, std::int64_t);
  void (*quick_gelu)(float*, std::int64_t);
  AttentionFn<float> attention_head;
  AttentionFn<f16_t> attention_head_f16kv;
  void (*adapter_attention_head)(float*, const float*, const float*, const float*, std::int64_t, std::int64_t,
                                 std::int64_t, float, float, float*);
  MatmulFn<float> matmul_f32;
  MatmulFn<f16_t> matmul_f16;
  MatmulFn<bf16_t> matmul_bf16;
  MatmulFn<BlockQ8_0> matmul_q8_0;  ///< decode: q8_0 activations, integer dots; prefill: dequantised GEMM
  MatmulFn<BlockQ4_0> matmul_q4_0;
  MatmulFn<BlockQ4_K> matmul_q4_k;  ///< decode: q8_K activations, integer dots; prefill: dequantised GEMM
  MatmulFn<BlockQ6_K> matmul_q6_k;
  MatmulFn<BlockQ4_0x8> matmul_q4_0_x8;  ///< q4_0 repacked by eight rows: the same products as matmul_q4_0
  void (*convert_f16_to_f32)(float*, const f16_t*, std::int64_t);
  void (*convert_f32_to_f16)(f16_t*, const float*, std::int64_t);
  void (*convert_bf16_to_f32)(float*, const bf16_t*, std::int64_t);
  void (*convert_f32_to_bf16)(bf16_t*, const float*, std::int64_t);

  // The machine probes' inner loops (probes.hpp), at this level's width.
  /// Sum of x (n, a multiple of 64 floats, 64-byte aligned) with four accumulators.
  float (*stream_sum)(const float* x, std::int64_t n);
  /// The same over two halves read in step (two streams), and with software prefetch ahead.
  float (*stream_sum_two)(const float* x, std::int64_t n);
  float (*stream_sum_prefetch)(const float* x, std::int64_t n);
  /// kFmaChains independent chains of `iterations` FMAs each; returns their sum.
  float (*fma_chains)(std::int64_t iterations);

  template <class W>
  MatmulFn<W> matmul() const {
    if constexpr (std::is_same_v<W, float>) return matmul_f32;
    else if constexpr (std::is_same_v<W, f16_t>) return matmul_f16;
    else if constexpr (std::is_same_v<W, bf16_t>) return matmul_bf16;
    else if constexpr (std::is_same_v<W, BlockQ8_0>) return matmul_q8_0;
    else if constexpr (std::is_same_v<W, BlockQ4_0>) return matmul_q4_0;
    else if constexpr (std::is_same_v<W, BlockQ4_K>) return matmul_q4_k;
    else if constexpr (std::is_same_v<W, BlockQ6_K>) return matmul_q6_k;
    else return matmul_q4_0_x8;
  }
  template <class KV>
  AttentionFn<KV> attention() const {
    if constexpr (std::is_same_v<KV, float>) return attention_head;
    else return attention_head_f16kv;
  }
};

/// Independent FMA chains of KernelTable::fma_chains: at least 10, enough to cover the FMA
/// latency on every port of current x86 cores (4 cycles x 2 ports = 8 in flight).
inline constexpr int kFmaChains = 12;

}  // namespace lav2::kernels
