// The kernels the model calls, and the one place that chooses which implementation runs.
//
// Every call goes through the KernelTable (kernel_table.hpp) of the level chosen for this CPU at
// run time: the widest of AVX-512, AVX2+FMA+F16C and SSE2 that cpuid reports, or the level
// LAV2_ISA names (ref, sse2, avx2, avx512; an unknown name or a level this CPU lacks throws
// input_error). The per-level tables come from the kernel units that lav2_add_kernel_units()
// compiles into a program (cmake/lav2_kernel_units.cmake; LAV2_KERNEL_UNITS=1). A program built
// without them still works header-only: it has the scalar table and one xsimd table for the
// -march it was compiled with. LAV2_USE_SIMD=0 leaves only the scalar reference.
//
// Kernels take pointers and sizes, never model configs; none allocates except matmul's per-call
// packing scratch; none throws. Unless a kernel says otherwise, pointers must not alias.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/cpu_features.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/kernels/kernel_table.hpp"
#include "lav2/kernels/ref/ref_table.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/mat_ptr.hpp"

#ifndef LAV2_USE_SIMD
#define LAV2_USE_SIMD 1
#endif
#ifndef LAV2_KERNEL_UNITS
#define LAV2_KERNEL_UNITS 0
#endif

#if LAV2_USE_SIMD && LAV2_KERNEL_UNITS
#include "lav2/kernels/isa/unit_tables.hpp"
#elif LAV2_USE_SIMD
#include "lav2/kernels/simd/simd_table.hpp"
#endif

namespace lav2::kernels {

namespace detail {
#if LAV2_USE_SIMD && !LAV2_KERNEL_UNITS
/// The level xsimd::default_arch is, in a build without the units.
inline constexpr Isa kHeaderIsa =
#if defined(__AVX512F__) && defined(__AVX512CD__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__) && defined(__FMA__) && defined(__F16C__)
    Isa::avx512;
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    Isa::avx2;
#elif defined(__SSE2__) && (defined(__x86_64__) || defined(__i386__))
    Isa::sse2;
#else
    Isa::native;
#endif
inline const KernelTable& header_table() {
  static const KernelTable t = simd::make_simd_table<xsimd::default_arch>(kHeaderIsa);
  return t;
}
#endif
}  // namespace detail

/// \brief Whether this program has a table for level `isa` (whether or not the CPU can run it).
inline bool is_compiled(Isa isa) {
  if (isa == Isa::ref) return true;
#if LAV2_USE_SIMD && LAV2_KERNEL_UNITS
  return isa == Isa::sse2 || isa == Isa::avx2 || isa == Isa::avx512;
#elif LAV2_USE_SIMD
  return isa == detail::kHeaderIsa;
#else
  return false;
#endif
}

namespace detail {
/// The table of a compiled level. Only called once the CPU is known to run it: a unit's table
/// function is itself compiled for its level.
inline const KernelTable& compiled_table(Isa isa) {
#if LAV2_USE_SIMD && LAV2_KERNEL_UNITS
  if (isa == Isa::sse2) return isa::sse2_table();
  if (isa == Isa::avx2) return isa::avx2_table();
  if (isa == Isa::avx512) return isa::avx512_table();
#elif LAV2_USE_SIMD
  if (isa == detail::kHeaderIsa) return detail::header_table();
#endif
  return ref::ref_table();
}
}  // namespace detail

/// \brief The levels this program has and this CPU runs, narrowest (ref) first.
inline std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (is_compiled(isa) && cpu_supports(isa)) out.push_back(isa);
  return out;
}

/// \brief The table of level `isa`; throws input_error, naming `source` (e.g. "LAV2_ISA"), when
/// the program lacks it or the CPU cannot run it.
inline const KernelTable& table_for(Isa isa, const char* source = "the requested kernel level") {
  const bool compiled = is_compiled(isa);
  if (!compiled && LAV2_KERNEL_UNITS)
    LAV2_THROW(input_error, source, ": kernel level '", isa_name(isa), "' is not compiled into this program");
  if (!compiled)
    LAV2_THROW(input_error, source, ": kernel level '", isa_name(isa),
               "' is not compiled into this program: it was built without lav2_add_kernel_units(), so it has "
               "only 'ref' and its own -march level '",
               isa_name(available_isas().back()), "'");
  if (!cpu_supports(isa))
    LAV2_THROW(input_error, source, ": kernel level '", isa_name(isa),
               "' needs CPU features this CPU lacks: ", missing_features(isa));
  return detail::compiled_table(isa);
}

/// \brief The level named `name` ("ref", "sse2", "avx2", "avx512"); throws input_error naming
/// `source` otherwise.
inline Isa parse_isa(std::string_view name, const char* source = "LAV2_ISA") {
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) return isa;
  LAV2_THROW(input_error, source, " is '", name, "'; expected one of ref, sse2, avx2, avx512");
}

namespace detail {
inline std::atomic<const KernelTable*>& active_slot() {
  static std::atomic<const KernelTable*> slot{nullptr};
  return slot;
}
/// First use: LAV2_ISA if set, else the widest available level.
inline const KernelTable& choose_kernels() {
  const KernelTable* t = nullptr;
  if (const char* env = std::getenv("LAV2_ISA"); env && *env) t = &table_for(parse_isa(env), "LAV2_ISA");
  else t = &detail::compiled_table(available_isas().back());
  active_slot().store(t, std::memory_order_release);
  return *t;
}
}  // namespace detail

/// \brief The table every kernel call below goes through (chosen on first use; see the file
/// comment). Throws input_error on the first call if LAV2_ISA is invalid for this CPU.
inline const KernelTable& active_kernels() {
  const KernelTable* t = detail::active_slot().load(std::memory_order_acquire);
  return t ? *t : detail::choose_kernels();
}

/// \brief Makes level `isa` the active one from now on, for every thread (throws as table_for).
/// For tests and benchmarks that compare levels; do not switch while kernels run.
inline void use_isa(Isa isa) { detail::active_slot().store(&table_for(isa), std::memory_order_release); }

/// \brief The active level's name ("avx512", "avx2", "sse2", "ref").
inline const char* isa_name() { return isa_name(active_kernels().isa); }

/// \brief xsimd's name of the active level's architecture ("avx512bw", "fma3+avx2", "sse2", "ref").
inline const char* kernel_arch_name() { return active_kernels().arch_name; }

/// \brief out[M, N] = x[M, K] · w[N, K]^T: nn.Linear, weights as PyTorch stores them; `ep`
/// optionally adds the bias and/or accumulates into `out` (a residual) in the same pass
/// (epilogue.hpp: the same bits as separate adds).
/// \tparam W float, f16_t or bf16_t, widened exactly to f32 before multiplying; or BlockQ8_0 /
///   BlockQ4_0 rows of K/32 blocks (K a multiple of 32), or BlockQ4_K / BlockQ6_K rows of K/256
///   super-blocks (K a multiple of 256): ref/matmul_quant.hpp gives their two paths.
/// \param pool threads to split the N output features over; each output is computed by one
///   thread, so results are bit-identical for any pool size. M < 4 uses the matvec path (one
///   pass over w per row); larger M the packed GEMM, whose outputs are single FMA chains over
///   k = 0..K-1 (simd/matmul.hpp). The two paths may differ in the last bits for the same row.
template <class W>
void matmul(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N, std::int64_t K,
            Epilogue ep = {}) {
  active_kernels().matmul<W>()(pool, out, x, w, M, N, K, ep);
}

/// \brief out[M, N] = x[M, K] · w^T for a weight handle of any supported dtype: the one closed
/// dtype switch of lav2. `w` is (N, K) with contiguous rows (the binders guarantee it; a padded
/// stride is a caller's bug and throws internal_error). A dtype outside is_matmul_dtype() throws
/// internal_error too: the loaders refuse such files before any kernel runs.
inline void matmul(ThreadPool& pool, float* out, const float* x, const MatPtr& w, std::int64_t M, Epilogue ep = {}) {
  LAV2_ASSERT(w.contiguous());
  const std::int64_t N = w.rows, K = w.cols;
  switch (w.dtype) {
    case DType::f32: return matmul(pool, out, x, static_cast<const float*>(w.data), M, N, K, ep);
    case DType::f16: return matmul(pool, out, x, static_cast<const f16_t*>(w.data), M, N, K, ep);
    case DType::bf16: return matmul(pool, out, x, static_cast<const bf16_t*>(w.data), M, N, K, ep);
    case DType::q8_0: return matmul(pool, out, x, static_cast<const BlockQ8_0*>(w.data), M, N, K, ep);
    case DType::q4_0: return matmul(pool, out, x, static_cast<const BlockQ4_0*>(w.data), M, N, K, ep);
    case DType::q4_k: return matmul(pool, out, x, static_cast<const BlockQ4_K*>(w.data), M, N, K, ep);
    case DType::q6_k: return matmul(pool, out, x, static_cast<const BlockQ6_K*>(w.data), M, N, K, ep);
    case DType::q4_0_x8: return matmul(pool, out, x, static_cast<const BlockQ4_0x8*>(w.data), M, N, K, ep);
    default: break;
  }
  LAV2_THROW(internal_error, "matmul: weight dtype ", dtype_name(w.dtype), " has no kernel");
}

/// \brief RMSNorm: out = x * rsqrt(mean(x^2) + eps) * weight; `weight` may be null. (n) each.
inline void rmsnorm(float* out, const float* x, const float* weight, std::int64_t n, float eps) {
  active_kernels().rmsnorm(out, x, weight, n, eps);
}
/// \brief LayerNorm: out = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be null.
inline void layernorm(float* out, const float* x, const float* weight, const float* bias, std::int64_t n, float eps) {
  active_kernels().layernorm(out, x, weight, bias, n, eps);
}
/// \brief Backward of rmsnorm (training): dx = r w dy - x r^3/n sum(w dy x), dw += dy x r with
/// r = rsqrt(mean(x^2) + eps); `w` may be null (then no dw), `dw` may be null (a frozen weight).
inline void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, std::int64_t n,
                             float eps) {
  active_kernels().rmsnorm_backward(dx, dw, dy, x, w, n, eps);
}
/// \brief Rotates interleaved pairs (x[2i], x[2i+1]) of `x` (head_dim) by cos[i], sin[i].
inline void rope_interleaved(float* x, std::int64_t head_dim, const float* cos, const float* sin) {
  active_kernels().rope_interleaved(x, head_dim, cos, sin);
}
/// \brief In-place, max-subtracted softmax of `x` (n).
inline void softmax(float* x, std::int64_t n) { active_kernels().softmax(x, n); }
/// \brief In-place x * sigmoid(x).
inline void silu(float* x, std::int64_t n) { active_kernels().silu(x, n); }
/// \brief out = silu(gate) * up; `out` may equal `gate` or `up`.
inline void swiglu(float* out, const float* gate, const float* up, std::int64_t n) {
  active_kernels().swiglu(out, gate, up, n);
}
/// \brief In-place exact GELU, 0.5 x (1 + erf(x / sqrt 2)).
inline void gelu_erf(float* x, std::int64_t n) { active_kernels().gelu_erf(x, n); }
/// \brief In-place QuickGELU, x * sigmoid(1.702 x).
inline void quick_gelu(float* x, std::int64_t n) { active_kernels().quick_gelu(x, n); }
/// \brief sum_i a[i] * b[i].
inline float dot(const float* a, const float* b, std::int64_t n) { return active_kernels().dot(a, b, n); }
/// \brief y += a * x.
inline void axpy(float* y, float a, const float* x, std::int64_t n) { active_kernels().axpy(y, a, x, n); }
/// \brief y += x.
inline void add(float* y, const float* x, std::int64_t n) { active_kernels().add(y, x, n); }

/// \brief One attention head over a KV cache: out = softmax(scale * q · k_j) · v.
/// Row j of k / v is at k + j*kv_stride / v + j*kv_stride; `scratch` is (n_keys).
/// K and V rows are float or f16_t (an f16 KV cache, widened exactly as they are read).
template <class KV>
inline void attention_head(float* out, const float* q, const KV* k, const KV* v, std::int64_t n_keys,
                           std::int64_t head_dim, std::int64_t kv_stride, float scale, float* scratch) {
  active_kernels().attention<KV>()(out, q, k, v, n_keys, head_dim, kv_stride, scale, scratch);
}
/// \brief The gated adapter step: out += gate * softmax(scale * q · ka_j) · va, with `gate` the
/// finished per-head factor (tanh(g) * new_gate, or g for V1). `scratch` is (n_prompts).
inline void adapter_attention_head(float* out, const float* q, const float* ka, const float* va, std::int64_t n_prompts,
                                   std::int64_t head_dim, std::int64_t kv_stride, float scale, float gate,
                                   float* scratch) {
  active_kernels().adapter_attention_head(out, q, ka, va, n_prompts, head_dim, kv_stride, scale, gate, scratch);
}

/// \brief Exact f16 -> f32 of (n) values.
inline void convert_f16_to_f32(float* out, const f16_t* in, std::int64_t n) {
  active_kernels().convert_f16_to_f32(out, in, n);
}
/// \brief f32 -> f16, round to nearest even.
inline void convert_f32_to_f16(f16_t* out, const float* in, std::int64_t n) {
  active_kernels().convert_f32_to_f16(out, in, n);
}
/// \brief Exact bf16 -> f32.
inline void convert_bf16_to_f32(float* out, const bf16_t* in, std::int64_t n) {
  active_kernels().convert_bf16_to_f32(out, in, n);
}
/// \brief f32 -> bf16, round to nearest even.
inline void convert_f32_to_bf16(bf16_t* out, const float* in, std::int64_t n) {
  active_kernels().convert_f32_to_bf16(out, in, n);
}

}  // namespace lav2::kernels
