// f16/bf16 <-> f32 conversions for the SIMD kernels.
//
// xsimd 8.1 has no 16-bit float batches, so these use x86 intrinsics where the target has them
// (AVX-512F: 16 lanes; F16C/AVX2: 8; F16C/SSE4.1: 4) and fall back to the exact scalar
// conversions of tensor/dtype.hpp everywhere else. All of them give bit-identical results to the
// scalar ones: widening is exact; narrowing to f16 uses round-to-nearest-even, which is what
// VCVTPS2PH does with imm8 = _MM_FROUND_TO_NEAREST_INT, including overflow to inf, subnormal
// results and NaN quieting (sign | 0x7e00 | top payload bits); narrowing to bf16 is integer
// arithmetic on the bit pattern, the same formula as f32_to_bf16.
#pragma once

#include <cstdint>
#include <cstring>

#include "lav2/kernels/simd/arch.hpp"

#include "lav2/tensor/dtype.hpp"

namespace lav2::kernels::simd {

namespace detail {

template <class Arch>
using fbatch = xsimd::batch<float, Arch>;

/// Loads fbatch<Arch>::size consecutive values from `p`, widened to f32.
template <class Arch>
inline fbatch<Arch> load_as_f32(const float* p) {
  return fbatch<Arch>::load_unaligned(p);
}

template <class Arch>
inline fbatch<Arch> load_as_f32(const f16_t* p) {
  constexpr std::size_t kLanes = fbatch<Arch>::size;
#if defined(__AVX512F__)
  if constexpr (kLanes == 16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#endif
#if defined(__F16C__)
  if constexpr (kLanes == 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if constexpr (kLanes == 4) return _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#endif
  alignas(64) float tmp[kLanes];
  for (std::size_t i = 0; i < kLanes; ++i) tmp[i] = f16_to_f32(p[i].bits);
  return fbatch<Arch>::load_aligned(tmp);
}

template <class Arch>
using ubatch = xsimd::batch<std::uint32_t, Arch>;

/// Loads fbatch<Arch>::size 16-bit patterns from `p`, zero-extended to 32 bits.
template <class Arch>
inline ubatch<Arch> load_u16_as_u32(const std::uint16_t* p) {
  constexpr std::size_t kLanes = ubatch<Arch>::size;
#if defined(__AVX512F__)
  if constexpr (kLanes == 16) return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#endif
#if defined(__AVX2__)
  if constexpr (kLanes == 8) return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#endif
#if defined(__SSE4_1__)
  if constexpr (kLanes == 4) return _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#endif
  alignas(64) std::uint32_t tmp[kLanes];
  for (std::size_t i = 0; i < kLanes; ++i) tmp[i] = p[i];
  return ubatch<Arch>::load_aligned(tmp);
}

/// bf16 is the top half of an f32: zero-extend each pattern to 32 bits and shift it up.
template <class Arch>
inline fbatch<Arch> load_as_f32(const bf16_t* p) {
  return xsimd::bitwise_cast<fbatch<Arch>>(load_u16_as_u32<Arch>(&p->bits) << 16);
}

/// Like load_as_f32(const f16_t*), but also exact for signalling NaNs: VCVTPH2PS quiets them
/// (sets f32 bit 22), while the scalar spec keeps the payload as it is. Only the conversion
/// kernel needs this; in matmul a NaN weight makes a quiet NaN output either way.
template <class Arch>
inline fbatch<Arch> load_f16_exact(const f16_t* p) {
  using U = ubatch<Arch>;
  const U f = xsimd::bitwise_cast<U>(load_as_f32<Arch>(p));
  const U h = load_u16_as_u32<Arch>(&p->bits);
  const auto signalling = ((h & U(0x7e00u)) == U(0x7c00u)) && ((h & U(0x01ffu)) != U(0u));
  return xsimd::bitwise_cast<fbatch<Arch>>(xsimd::select(signalling, f & U(~0x00400000u), f));
}

/// Stores `v` narrowed to f16 (round to nearest even) at `p` (fbatch<Arch>::size values).
template <class Arch>
inline void store_as_f16(f16_t* p, const fbatch<Arch>& v) {
  constexpr std::size_t kLanes = fbatch<Arch>::size;
#if defined(__AVX512F__)
  if constexpr (kLanes == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    return;
  }
#endif
#if defined(__F16C__)
  if constexpr (kLanes == 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    return;
  }
  if constexpr (kLanes == 4) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    return;
  }
#endif
  alignas(64) float tmp[kLanes];
  v.store_aligned(tmp);
  for (std::size_t i = 0; i < kLanes; ++i) p[i].bits = f32_to_f16(tmp[i]);
}

/// Stores `v` narrowed to bf16 (round to nearest even, NaN quieted) at `p`.
template <class Arch>
inline void store_as_bf16(bf16_t* p, const fbatch<Arch>& v) {
  using U = ubatch<Arch>;
  constexpr std::size_t kLanes = fbatch<Arch>::size;
  const U x = xsimd::bitwise_cast<U>(v);
  // Same formula as f32_to_bf16: add 0x7fff plus the lowest kept bit, keep the top 16 bits.
  const U rounded = (x + U(0x7fffu) + ((x >> 16) & U(1u))) >> 16;
  const U quiet_nan = (x >> 16) | U(0x0040u);
  // |x| > inf as integers means NaN.
  const U r = xsimd::select((x & U(0x7fffffffu)) > U(0x7f800000u), quiet_nan, rounded);
  alignas(64) std::uint32_t tmp[kLanes];
  r.store_aligned(tmp);
  for (std::size_t i = 0; i < kLanes; ++i) p[i].bits = std::uint16_t(tmp[i]);
}

}  // namespace detail

/// \brief Widen (n) f16 to f32; bit-identical to ref::convert_f16_to_f32.
struct convert_f16_to_f32_fn {
  template <class Arch>
  void operator()(Arch, float* out, const f16_t* in, std::int64_t n) const;
};
/// \brief Narrow (n) f32 to f16; bit-identical to ref::convert_f32_to_f16.
struct convert_f32_to_f16_fn {
  template <class Arch>
  void operator()(Arch, f16_t* out, const float* in, std::int64_t n) const;
};
/// \brief Widen (n) bf16 to f32; bit-identical to ref::convert_bf16_to_f32.
struct convert_bf16_to_f32_fn {
  template <class Arch>
  void operator()(Arch, float* out, const bf16_t* in, std::int64_t n) const;
};
/// \brief Narrow (n) f32 to bf16; bit-identical to ref::convert_f32_to_bf16.
struct convert_f32_to_bf16_fn {
  template <class Arch>
  void operator()(Arch, bf16_t* out, const float* in, std::int64_t n) const;
};

namespace detail {
/// Whole batches through `vec(out + i, in + i)`, the tail through the scalar spec `scalar`.
template <class Arch, class Out, class In, class Vec, class Scalar>
inline void convert_loop(Out* out, const In* in, std::int64_t n, Vec vec, Scalar scalar) {
  constexpr std::int64_t kLanes = fbatch<Arch>::size;
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vec(out + i, in + i);
  for (; i < n; ++i) out[i] = scalar(in[i]);
}
}  // namespace detail

template <class Arch>
void convert_f16_to_f32_fn::operator()(Arch, float* out, const f16_t* in, std::int64_t n) const {
  detail::convert_loop<Arch>(
      out, in, n, [](float* o, const f16_t* p) { detail::load_f16_exact<Arch>(p).store_unaligned(o); },
      [](f16_t h) { return f16_to_f32(h.bits); });
}
template <class Arch>
void convert_f32_to_f16_fn::operator()(Arch, f16_t* out, const float* in, std::int64_t n) const {
  detail::convert_loop<Arch>(
      out, in, n,
      [](f16_t* o, const float* p) { detail::store_as_f16<Arch>(o, detail::fbatch<Arch>::load_unaligned(p)); },
      [](float f) { return f16_t{f32_to_f16(f)}; });
}
template <class Arch>
void convert_bf16_to_f32_fn::operator()(Arch, float* out, const bf16_t* in, std::int64_t n) const {
  detail::convert_loop<Arch>(
      out, in, n, [](float* o, const bf16_t* p) { detail::load_as_f32<Arch>(p).store_unaligned(o); },
      [](bf16_t b) { return bf16_to_f32(b.bits); });
}
template <class Arch>
void convert_f32_to_bf16_fn::operator()(Arch, bf16_t* out, const float* in, std::int64_t n) const {
  detail::convert_loop<Arch>(
      out, in, n,
      [](bf16_t* o, const float* p) { detail::store_as_bf16<Arch>(o, detail::fbatch<Arch>::load_unaligned(p)); },
      [](float f) { return bf16_t{f32_to_bf16(f)}; });
}

}  // namespace lav2::kernels::simd
