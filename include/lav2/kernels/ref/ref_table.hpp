// The scalar reference kernels as a KernelTable: the specification every SIMD table is tested
// against, and the table LAV2_ISA=ref (or a build with LAV2_USE_SIMD=0) runs.
#pragma once

#include <cstdint>

#include "lav2/kernels/kernel_table.hpp"
#include "lav2/kernels/ref/backward.hpp"
#include "lav2/kernels/ref/matmul.hpp"
#include "lav2/kernels/ref/matmul_quant.hpp"
#include "lav2/kernels/ref/ops.hpp"

namespace lav2::kernels::ref {

/// \brief Scalar probe loops: the reference has no batches, so one accumulator per lane of 1.
inline float stream_sum(const float* x, std::int64_t n) {
  float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (std::int64_t i = 0; i + 4 <= n; i += 4) a0 += x[i], a1 += x[i + 1], a2 += x[i + 2], a3 += x[i + 3];
  return (a0 + a1) + (a2 + a3);
}
inline float fma_chains(std::int64_t iterations) {
  float acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = float(c) * 1e-3f;
  for (std::int64_t i = 0; i < iterations; ++i)
    for (float& a : acc) a = a * 0.999999f + 1e-6f;
  float total = 0;
  for (float a : acc) total += a;
  return total;
}

/// \brief The scalar reference table.
inline const KernelTable& ref_table() {
  static const KernelTable t = [] {
    KernelTable r;
    r.isa = Isa::ref;
    r.arch_name = "ref";
    r.float_lanes = 1;
    r.dot = dot<float>;
    r.axpy = axpy<float>;
    r.add = add;
    r.rmsnorm = rmsnorm;
    r.layernorm = layernorm;
    r.rmsnorm_backward = rmsnorm_backward;
    r.rope_interleaved = rope_interleaved;
    r.softmax = softmax;
    r.silu = silu;
    r.swiglu = swiglu;
    r.gelu_erf = gelu_erf;
    r.quick_gelu = quick_gelu;
    r.attention_head = attention_head<float>;
    r.attention_head_f16kv = attention_head<f16_t>;
    r.adapter_attention_head = adapter_attention_head;
    r.matmul_f32 = matmul<float>;
    r.matmul_f16 = matmul<f16_t>;
    r.matmul_bf16 = matmul<bf16_t>;
    r.matmul_q8_0 = matmul_quant<BlockQ8_0>;
    r.matmul_q4_0 = matmul_quant<BlockQ4_0>;
    r.matmul_q4_k = matmul_quant<BlockQ4_K>;
    r.matmul_q6_k = matmul_quant<BlockQ6_K>;
    r.matmul_q4_0_x8 = matmul_quant<BlockQ4_0x8>;
    r.convert_f16_to_f32 = convert_f16_to_f32;
    r.convert_f32_to_f16 = convert_f32_to_f16;
    r.convert_bf16_to_f32 = convert_bf16_to_f32;
    r.convert_f32_to_bf16 = convert_f32_to_bf16;
    r.stream_sum = stream_sum;
    r.stream_sum_two = stream_sum;
    r.stream_sum_prefetch = stream_sum;
    r.fma_chains = fma_chains;
    return r;
  }();
  return t;
}

}  // namespace lav2::kernels::ref
