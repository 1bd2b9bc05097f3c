// The xsimd kernels of one architecture as a KernelTable. Each instruction-set unit
// (kernels/isa/detail/kernel_unit.hpp) instantiates this once, compiled with that level's flags; a
// program without the units instantiates it for xsimd::default_arch (dispatch.hpp).
#pragma once

#include <cstdint>

#include "lav2/kernels/kernel_table.hpp"
#include "lav2/kernels/simd/backward.hpp"
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/kernels/simd/matmul.hpp"
#include "lav2/kernels/simd/ops.hpp"
#include "lav2/kernels/simd/probe_loops.hpp"

namespace lav2::kernels::simd {

namespace detail {
/// Points `slot` at a function that calls the functor F for Arch with the slot's arguments. The
/// lambda is local to this Arch's instantiation, so every level has its own symbol.
template <class Arch, class F, class R, class... A>
void bind(R (*&slot)(A...)) {
  slot = [](A... a) -> R { return F{}(Arch{}, a...); };
}
}  // namespace detail

/// \brief The table of Arch's kernels, labelled `isa`.
template <class Arch>
KernelTable make_simd_table(Isa isa) {
  using detail::bind;
  KernelTable t;
  t.isa = isa;
  t.arch_name = Arch::name();
  t.float_lanes = int(xsimd::batch<float, Arch>::size);
  bind<Arch, dot_fn>(t.dot);
  bind<Arch, axpy_fn>(t.axpy);
  bind<Arch, add_fn>(t.add);
  bind<Arch, rmsnorm_fn>(t.rmsnorm);
  bind<Arch, layernorm_fn>(t.layernorm);
  bind<Arch, rmsnorm_backward_fn>(t.rmsnorm_backward);
  bind<Arch, rope_interleaved_fn>(t.rope_interleaved);
  bind<Arch, softmax_fn>(t.softmax);
  bind<Arch, silu_fn>(t.silu);
  bind<Arch, swiglu_fn>(t.swiglu);
  bind<Arch, gelu_erf_fn>(t.gelu_erf);
  bind<Arch, quick_gelu_fn>(t.quick_gelu);
  bind<Arch, attention_head_fn>(t.attention_head);
  bind<Arch, attention_head_fn>(t.attention_head_f16kv);
  bind<Arch, adapter_attention_head_fn>(t.adapter_attention_head);
  bind<Arch, matmul_fn>(t.matmul_f32);
  bind<Arch, matmul_fn>(t.matmul_f16);
  bind<Arch, matmul_fn>(t.matmul_bf16);
  bind<Arch, matmul_fn>(t.matmul_q8_0);
  bind<Arch, matmul_fn>(t.matmul_q4_0);
  bind<Arch, matmul_fn>(t.matmul_q4_k);
  bind<Arch, matmul_fn>(t.matmul_q6_k);
  bind<Arch, matmul_fn>(t.matmul_q4_0_x8);
  bind<Arch, convert_f16_to_f32_fn>(t.convert_f16_to_f32);
  bind<Arch, convert_f32_to_f16_fn>(t.convert_f32_to_f16);
  bind<Arch, convert_bf16_to_f32_fn>(t.convert_bf16_to_f32);
  bind<Arch, convert_f32_to_bf16_fn>(t.convert_f32_to_bf16);
  t.stream_sum = stream_sum<Arch>;
  t.stream_sum_two = stream_sum_two<Arch>;
  t.stream_sum_prefetch = stream_sum_prefetch<Arch>;
  t.fma_chains = fma_chains<Arch>;
  return t;
}

}  // namespace lav2::kernels::simd
