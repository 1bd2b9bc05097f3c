// The compute-bound path of matmul: out[M, N] = x[M, K] · w[N, K]^T for M >= kGemmMinRows.
//
// Register blocking: x is packed once, transposed, into panels of kMc = 2 batches of activation
// rows; the micro-kernel holds a tile of kNr outputs n (14 on AVX-512, 6 on AVX2) x 2 batches of
// rows m in 2 * kNr registers and, per k, broadcasts one weight of each of the kNr rows into
// 2 * kNr FMAs. Alone, with its operands in L1/L2, it runs at 0.98-0.99 of the FMA-peak probe.
//
// Feeding it: each thread widens (f16/bf16) or copies (f32) a chunk of its weight rows, kKc
// inputs at a time, into an L2-resident f32 block with a compile-time row stride (every broadcast
// is a constant offset from one pointer) and runs every panel of x against it, so the weights are
// read from memory once per call. The next block's cache lines are prefetched a few per k step
// *inside* the micro-kernels of the current block: issued in one burst before the block (as an
// earlier version did), they overflowed the core's miss buffers and stalled it, and the widening pass
// that followed took 30% of the time at M = 64.
//
// Determinism: work is split over N only, so each output is computed by one thread with the same
// instructions for any thread count; output (m, n) is one FMA chain over k = 0, 1, ..., K-1 in
// order (the tile is stored and reloaded between kKc blocks, which does not change the chain).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>

#include "lav2/core/aligned_alloc.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/kernels/epilogue.hpp"
#include "lav2/kernels/simd/convert.hpp"
#include "lav2/kernels/simd/quant_k_codes.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/quant.hpp"
#include "lav2/tensor/quant_x8.hpp"

namespace lav2::kernels::simd::detail {

/// Below this many activation rows, matmul runs the matvec path once per row.
inline constexpr std::int64_t kGemmMinRows = 4;

/// GEMM blocking for one arch. The micro-tile is kNr weight rows (outputs n) x kMb batches of
/// activation rows (m): kNr * kMb accumulators + kMb activation loads + 1 broadcast registers.
/// AVX-512 (32 registers): 14 x 2 = 28 + 2 + 1 = 31; AVX2 and narrower (16): 6 x 2 = 12 + 3 = 15.
/// Either way >= 12 independent FMA chains cover FMA latency x throughput (4 x 2 on Zen 4/5, Intel).
template <class Arch>
struct GemmShape {
  static constexpr std::int64_t kLanes = fbatch<Arch>::size;
  static constexpr std::int64_t kNr = kLanes >= 16 ? 14 : 6;  // weight rows per micro-tile
  static constexpr std::int64_t kMb = 2;                      // activation batches per micro-tile
  static constexpr std::int64_t kMc = kMb * kLanes;           // activation rows per packed panel
  // Inputs per block: a panel block of x (kKc x kMc f32 = 32 KiB on AVX-512) and the tile's
  // weights (kNr x kKc f32 = 14 KiB) come from L1/L2.
  static constexpr std::int64_t kKc = 256;
  // Weight-row blocks per chunk: the chunk's widened weights (kChunk * kNr x kKc f32, 112 KiB)
  // and tile accumulators (kChunk * kNr x M) stay in L2 while x streams through once per chunk.
  static constexpr std::int64_t kChunk = 8;
  // Panels of x per inner block: kKc x kMcBlock * kMc f32 = 384 KiB of L2, reused by every
  // weight block of the chunk.
  static constexpr std::int64_t kPanelsPerBlock = 12;
};

/// Aligned (core/aligned_alloc.hpp), uninitialised scratch of floats.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(std::int64_t n)
      : bytes_(std::size_t(std::max<std::int64_t>(n, 1)) * sizeof(float)),
        data_(static_cast<float*>(aligned_alloc_bytes(bytes_)), AlignedDeleter{bytes_}) {}
  float* get() { return data_.get(); }

 private:
  std::size_t bytes_;
  std::unique_ptr<float, AlignedDeleter> data_;
};

/// Scratch of `n` floats owned by the calling thread, one per `Tag`, reused across calls: a GEMM
/// needs megabytes for packed x, and fresh pages would fault on every call. Requests above
/// kMaxKeptFloats (64 MiB) get a buffer of their own in `fallback`, freed with it, so a
/// one-off huge prefill does not pin its scratch for the life of the thread.
template <class Tag>
inline float* thread_scratch(std::int64_t n, std::unique_ptr<AlignedBuffer>& fallback) {
  constexpr std::int64_t kMaxKeptFloats = std::int64_t(16) << 20;
  if (n > kMaxKeptFloats) {
    fallback = std::make_unique<AlignedBuffer>(n);
    return fallback->get();
  }
  thread_local std::unique_ptr<AlignedBuffer> kept;
  thread_local std::int64_t capacity = 0;
  if (n > capacity) {
    kept.reset();  // free before allocating the larger one
    kept = std::make_unique<AlignedBuffer>(n);
    capacity = n;
  }
  return kept->get();
}
struct PackedXTag {};
struct TileTag {};
struct WideTag {};

/// Walks the cache lines of `rows` byte ranges [start, start + bytes) spaced `stride` bytes
/// apart, prefetching one line (into L2) per next(). Lines are 64-byte aligned; a range that
/// starts mid-line covers the line it starts in.
class LinePrefetcher {
 public:
  LinePrefetcher() = default;
  LinePrefetcher(const void* start, std::int64_t bytes, std::int64_t stride, std::int64_t rows) : stride_(stride) {
    if (rows <= 0 || bytes <= 0) return;
    const auto s = reinterpret_cast<std::uintptr_t>(start);
    const std::uintptr_t first = s & ~std::uintptr_t(63), last = (s + std::uintptr_t(bytes) - 1) & ~std::uintptr_t(63);
    lines_per_row_ = std::int64_t((last - first) / 64) + 1;
    row_ = line_ = reinterpret_cast<const char*>(first);
    remaining_ = rows * lines_per_row_;
  }
  std::int64_t remaining() const { return remaining_; }
  void next() {
    if (remaining_ <= 0) return;
    __builtin_prefetch(line_, 0, 2);
    --remaining_;
    line_ += 64;
    if (++col_ == lines_per_row_) {
      col_ = 0;
      row_ += stride_;
      line_ = row_;
    }
  }
  void drain() {
    while (remaining_ > 0) next();
  }

 private:
  const char* row_ = nullptr;
  const char* line_ = nullptr;
  std::int64_t stride_ = 0, lines_per_row_ = 1, col_ = 0, remaining_ = 0;
};

#if defined(__AVX512F__)
/// Transposes a 16 x 16 block in registers: on return r[i] holds column i of the rows given.
/// Three rounds of in-lane unpacks and 128-bit lane shuffles, 64 shuffles for 256 floats.
inline void transpose_16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // r[4q + c] now holds rows 4q..4q+3 of columns c, c+4, c+8, c+12 (one per 128-bit lane).
  for (int q = 0; q < 4; ++q) {
    const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
    r[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int c = 0; c < 4; ++c) {
    // Lanes (rows 0-3 | 0-3 | 4-7 | 4-7) of columns (c | c+8 | c | c+8), and likewise +4.
    const __m512 lo01 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), hi01 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 lo23 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88),
                 hi23 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    t[c] = _mm512_shuffle_f32x4(lo01, lo23, 0x88);
    t[c + 8] = _mm512_shuffle_f32x4(lo01, lo23, 0xdd);
    t[c + 4] = _mm512_shuffle_f32x4(hi01, hi23, 0x88);
    t[c + 12] = _mm512_shuffle_f32x4(hi01, hi23, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}
#endif

/// Packs x (M, K) transposed into panels of kMc activation rows: panel p holds
/// xt[k][j] = x[p*kMc + j][k] at p*K*kMc + k*kMc + j, zero for rows >= M. Threads claim panels.
/// Works in blocks of 16 rows x 16 inputs: each source row's run is one cache line, read whole,
/// and (on AVX-512) transposed in registers. Walking one k across the kMc rows instead touches
/// kMc lines K * 4 bytes apart, which share one L1 set when K is a power of two and evict each
/// other: that made packing 10-20% of a GEMM at M = 257.
template <class Arch>
inline void pack_x_transposed(ThreadPool& pool, float* xt, const float* x, std::int64_t M, std::int64_t K) {
  constexpr std::int64_t kMc = GemmShape<Arch>::kMc;
  constexpr std::int64_t kB = 16;                    // inputs per block
  constexpr std::int64_t kJb = kMc < kB ? kMc : kB;  // rows per block (kMc is 8 on SSE)
  const std::int64_t panels = (M + kMc - 1) / kMc;
  pool.parallel_for_dynamic(
      panels,
      [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
          float* panel = xt + p * K * kMc;
          for (std::int64_t j0 = 0; j0 < kMc; j0 += kJb) {
            const std::int64_t row0 = p * kMc + j0, rows = std::clamp<std::int64_t>(M - row0, 0, kJb);
            std::int64_t k0 = 0;
#if defined(__AVX512F__)
            if constexpr (kJb == 16) {
              for (; k0 + kB <= K; k0 += kB) {
                __m512 r[16];
                for (std::int64_t j = 0; j < 16; ++j)
                  r[j] = j < rows ? _mm512_loadu_ps(x + (row0 + j) * K + k0) : _mm512_setzero_ps();
                transpose_16x16(r);
                for (std::int64_t i = 0; i < 16; ++i) _mm512_store_ps(panel + (k0 + i) * kMc + j0, r[i]);
              }
            }
#endif
            for (; k0 < K; k0 += kB) {
              const std::int64_t kb = std::min(kB, K - k0);
              float* dst = panel + k0 * kMc + j0;
              for (std::int64_t j = 0; j < kJb; ++j)
                for (std::int64_t i = 0; i < kb; ++i) dst[i * kMc + j] = j < rows ? x[(row0 + j) * K + k0 + i] : 0.0f;
            }
          }
        }
      },
      1);
}

/// acc[r][j] (kNr weight rows x kMbUsed batches of activation rows, row stride kMc) =
/// (accumulate ? acc : 0) + sum over k < kc of w[r][k] * xt[k][j]. `w` is a widened block
/// [kNr][kKc] (the compile-time row stride keeps every broadcast a constant offset from one
/// pointer), `xt` a packed panel [kc][kMc]. kMbUsed = 1 serves a last panel of <= kLanes rows.
/// The first `pf_steps` k steps each also prefetch one line of the next weight block.
template <class Arch, int kMbUsed>
inline void micro_kernel(std::int64_t kc, const float* w, const float* xt, float* acc, bool accumulate,
                         LinePrefetcher& pf, std::int64_t pf_steps) {
  using B = fbatch<Arch>;
  using S = GemmShape<Arch>;
  constexpr std::int64_t kLanes = S::kLanes, kMc = S::kMc, kNr = S::kNr, kKc = S::kKc;
  B c[kNr][kMbUsed];
  for (int r = 0; r < kNr; ++r)
    for (int b = 0; b < kMbUsed; ++b) c[r][b] = accumulate ? B::load_aligned(acc + r * kMc + b * kLanes) : B(0.0f);
  const std::int64_t k_pf = std::min(kc, pf_steps);
  std::int64_t k = 0;
  for (int phase = 0; phase < 2; ++phase) {
    const std::int64_t k_end = phase == 0 ? k_pf : kc;
    for (; k < k_end; ++k) {
      if (phase == 0) pf.next();
      B xv[kMbUsed];
      for (int b = 0; b < kMbUsed; ++b) xv[b] = B::load_aligned(xt + k * kMc + b * kLanes);
      for (int r = 0; r < kNr; ++r) {
        const B wr(w[r * kKc + k]);
        for (int b = 0; b < kMbUsed; ++b) c[r][b] = xsimd::fma(wr, xv[b], c[r][b]);
      }
    }
  }
  for (int r = 0; r < kNr; ++r)
    for (int b = 0; b < kMbUsed; ++b) c[r][b].store_aligned(acc + r * kMc + b * kLanes);
}

/// Rows of a last panel that go through tail_rows_kernel rather than a micro-kernel, which
/// would spend a whole batch of lanes per k on each (CLIP's 257 tokens leave one such row).
inline constexpr std::int64_t kTailRows = 4;

/// The `rows` (<= kTailRows) rows of a last panel as dot products: acc[r][jj] = (accumulate ?
/// acc : 0) + sum over k < kc of w[r][k] * x_jj[k], with x_jj row jj of the *unpacked* x
/// (stride K) and `w` a widened block. One accumulator batch per weight row over k, reduced by
/// xsimd::hadd, then the kc % lanes tail with explicit fmas. A row's bits thus differ from a
/// micro-kernel row's (as the matvec's do) but never depend on the thread count.
template <class Arch>
inline void tail_rows_kernel(std::int64_t kc, const float* w, const float* x, std::int64_t K, std::int64_t rows,
                             float* acc, bool accumulate) {
  using B = fbatch<Arch>;
  using S = GemmShape<Arch>;
  constexpr std::int64_t kLanes = S::kLanes, kMc = S::kMc, kNr = S::kNr, kKc = S::kKc;
  for (std::int64_t jj = 0; jj < rows; ++jj) {
    const float* xr = x + jj * K;
    B s[kNr];
    for (int r = 0; r < kNr; ++r) s[r] = B(0.0f);
    std::int64_t k = 0;
    for (; k + kLanes <= kc; k += kLanes) {
      const B xv = B::load_unaligned(xr + k);
      for (int r = 0; r < kNr; ++r) s[r] = xsimd::fma(B::load_unaligned(w + r * kKc + k), xv, s[r]);
    }
    for (int r = 0; r < kNr; ++r) {
      float v = xsimd::hadd(s[r]);
      for (std::int64_t t = k; t < kc; ++t) v = std::fma(w[r * kKc + t], xr[t], v);
      float& a = acc[r * kMc + jj];
      a = accumulate ? a + v : v;
    }
  }
}

/// Writes one tile, acc[r][jj] (kNr x kMc), to out[m0 + jj][n0 + r] for jj < m_rows and
/// r < n_valid, through `ep`. On AVX-512 each half of 16 rows is transposed in registers and
/// written with masked row stores; elsewhere element by element. Both compute ep.apply's sums.
template <class Arch>
inline void store_tile(float* out, std::int64_t N, const float* tile, std::int64_t m0, std::int64_t m_rows,
                       std::int64_t n0, std::int64_t n_valid, const Epilogue& ep) {
  using S = GemmShape<Arch>;
  constexpr std::int64_t kMc = S::kMc;
#if defined(__AVX512F__)
  if constexpr (S::kLanes == 16 && S::kNr <= 16) {
    const __mmask16 mask = __mmask16((1u << n_valid) - 1u);
    const __m512 bias = ep.bias ? _mm512_maskz_loadu_ps(mask, ep.bias + n0) : _mm512_setzero_ps();
    for (std::int64_t h = 0; h * 16 < m_rows; ++h) {
      __m512 r[16];
      for (std::int64_t i = 0; i < 16; ++i)
        r[i] = i < S::kNr ? _mm512_load_ps(tile + i * kMc + h * 16) : _mm512_setzero_ps();
      transpose_16x16(r);
      for (std::int64_t i = 0; i < 16 && h * 16 + i < m_rows; ++i) {
        float* dst = out + (m0 + h * 16 + i) * N + n0;
        __m512 v = r[i];
        if (ep.bias) v = _mm512_add_ps(v, bias);
        if (ep.accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), v);
        _mm512_mask_storeu_ps(dst, mask, v);
      }
    }
    return;
  }
#endif
  for (std::int64_t jj = 0; jj < m_rows; ++jj) {
    float* dst = out + (m0 + jj) * N + n0;
    for (std::int64_t r = 0; r < n_valid; ++r) dst[r] = ep.apply(tile[r * kMc + jj], n0 + r, dst[r]);
  }
}

/// Widens (or copies) rows [n_lo, n_lo + rows) x inputs [pc, pc + kc) of w into wide[row][kKc];
/// rows past N repeat row N-1: computed, never written.
template <class Arch, class W, std::enable_if_t<!is_quant_block_v<W>, int> = 0>
inline void widen_block(float* wide, const W* w, std::int64_t N, std::int64_t K, std::int64_t n_lo, std::int64_t rows,
                        std::int64_t pc, std::int64_t kc) {
  constexpr std::int64_t kLanes = GemmShape<Arch>::kLanes, kKc = GemmShape<Arch>::kKc;
  for (std::int64_t row = 0; row < rows; ++row) {
    const W* src = w + std::min(n_lo + row, N - 1) * K + pc;
    float* dst = wide + row * kKc;
    std::int64_t k = 0;
    for (; k + kLanes <= kc; k += kLanes) load_as_f32<Arch>(src + k).store_aligned(dst + k);
    for (; k < kc; ++k) dst[k] = to_f32(src[k]);
  }
}

/// The same for q8_0 / q4_0 / q4_K / q6_K weights (K, pc and `kc` multiples of the block's 32 or
/// 256 values):
/// the blocks are dequantised exactly (d * q is exact in f32), so the GEMM multiplies the very
/// values the file encodes.
template <class Arch, class Block, std::enable_if_t<is_quant_block_v<Block>, int> = 0>
inline void widen_block(float* wide, const Block* w, std::int64_t N, std::int64_t K, std::int64_t n_lo,
                        std::int64_t rows, std::int64_t pc, std::int64_t kc) {
  constexpr std::int64_t kKc = GemmShape<Arch>::kKc, kValues = quant_block_values_v<Block>;
  static_assert(kKc % kValues == 0, "the GEMM's k blocks hold whole quantised blocks");
  const std::int64_t nb = K / kValues;
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::int64_t n = std::min(n_lo + row, N - 1);
    if constexpr (std::is_same_v<Block, BlockQ4_0x8>) {  // row n is lane n % 8 of group n / 8
      dequantize_x8_lane(w + (n / kX8Rows) * nb + pc / kValues, int(n % kX8Rows), wide + row * kKc, kc);
    } else {
      const Block* src = w + n * nb + pc / kValues;
      // The K-quants' AVX2 unpacking (quant_k_codes.hpp, the same bits as the scalar rows): the
      // scalar rows are compiled for baseline x86-64, and with them q6_K prefill (4096^2, M = 64,
      // one thread) took 24.7 ms against q8_0's 16.4; with these 18.5 against 18.0 (a loaded VM).
      if constexpr (kValues == kQuantBlockK) dequantize_row_k<Arch>(src, wide + row * kKc, kc);
      else dequantize_row(src, wide + row * kKc, kc);
    }
  }
}

/// Rows [n_begin, n_end) x inputs [k_begin, k_end) of quantised weights as a LinePrefetcher.
template <class Block, std::enable_if_t<is_quant_block_v<Block>, int> = 0>
inline LinePrefetcher block_prefetcher(const Block* w, std::int64_t K, std::int64_t n_begin, std::int64_t n_end,
                                       std::int64_t k_begin, std::int64_t k_end) {
  constexpr std::int64_t kSize = std::int64_t(sizeof(Block)), kValues = quant_block_values_v<Block>;
  const std::int64_t nb = K / kValues;
  if constexpr (std::is_same_v<Block, BlockQ4_0x8>)  // the groups holding rows [n_begin, n_end)
    return LinePrefetcher(w + n_begin / kX8Rows * nb + k_begin / kValues, (k_end - k_begin) / kValues * kSize,
                          nb * kSize, (n_end + kX8Rows - 1) / kX8Rows - n_begin / kX8Rows);
  return LinePrefetcher(w + n_begin * nb + k_begin / kValues, (k_end - k_begin) / kValues * kSize, nb * kSize,
                        n_end - n_begin);
}

/// Rows [n_begin, n_end) x inputs [k_begin, k_end) of w as a LinePrefetcher.
template <class W, std::enable_if_t<!is_quant_block_v<W>, int> = 0>
inline LinePrefetcher block_prefetcher(const W* w, std::int64_t K, std::int64_t n_begin, std::int64_t n_end,
                                       std::int64_t k_begin, std::int64_t k_end) {
  constexpr std::int64_t kSize = std::int64_t(sizeof(W));
  return LinePrefetcher(w + n_begin * K + k_begin, (k_end - k_begin) * kSize, K * kSize, n_end - n_begin);
}

/// The GEMM path. Threads claim chunks of weight blocks (kNr rows each) from a shared counter,
/// so a thread that the OS or hypervisor delays costs the call only its current chunk, not a
/// static half. Chunks are kChunk blocks while plenty remain and shrink towards the end
/// (remaining / (2 * threads)), so the threads finish together; each thread claims its next
/// chunk one kKc block early, to prefetch it. Per chunk, from the outside in:
///   kKc inputs (widen the chunk's weights to f32) -> kPanelsPerBlock panels of x -> weight
///   block -> panel -> micro-kernel (which prefetches the next kKc block or the next chunk's
///   first).
/// Tile accumulators live in a per-thread buffer across k blocks and go to `out` (transposed,
/// through `ep`) when the chunk is done. Which thread computes a chunk, and how blocks are
/// grouped into chunks, vary; what is computed for each output does not.
template <class Arch, class W>
void gemm(ThreadPool& pool, float* out, const float* x, const W* w, std::int64_t M, std::int64_t N, std::int64_t K,
          const Epilogue& ep) {
  using S = GemmShape<Arch>;
  constexpr std::int64_t kNr = S::kNr, kKc = S::kKc, kMc = S::kMc, kLanes = S::kLanes;
  const std::int64_t m_panels = (M + kMc - 1) / kMc, n_blocks = (N + kNr - 1) / kNr;
  const std::int64_t chunk = std::min(S::kChunk, n_blocks);
  // K in equal blocks of at most kKc: K = 257 runs as 129 + 128, not 256 + a block of 1.
  const std::int64_t k_blocks = (K + kKc - 1) / kKc;
  std::int64_t k_step = (K + k_blocks - 1) / k_blocks;
  if constexpr (is_quant_block_v<W>) {  // whole blocks
    constexpr std::int64_t kValues = quant_block_values_v<W>;
    k_step = (k_step + kValues - 1) / kValues * kValues;
  }
  // A last panel of at most kTailRows rows goes through tail_rows_kernel, which reads x unpacked:
  // only the rows before it are packed.
  const std::int64_t tail_rows = M % kMc != 0 && M % kMc <= kTailRows ? M % kMc : 0;
  std::unique_ptr<AlignedBuffer> xt_own;
  float* xt = thread_scratch<PackedXTag>(m_panels * kMc * K, xt_own);
  pack_x_transposed<Arch>(pool, xt, x, M - tail_rows, K);
  // Claims [begin, end) of the weight blocks; begin == n_blocks when none are left.
  std::atomic<std::int64_t> next_block{0};
  const std::int64_t taper = 2 * std::int64_t(pool.size());
  const auto claim = [&] {
    std::int64_t begin = next_block.load(std::memory_order_relaxed), size = 0;
    do {
      size = std::clamp<std::int64_t>((n_blocks - begin) / taper, 1, chunk);
    } while (begin < n_blocks && !next_block.compare_exchange_weak(begin, begin + size, std::memory_order_relaxed));
    return std::pair<std::int64_t, std::int64_t>{std::min(begin, n_blocks), std::min(begin + size, n_blocks)};
  };
  // The first kKc block of the chunk [j0, j1), as a prefetcher.
  const auto first_block = [&](std::pair<std::int64_t, std::int64_t> j) {
    if (j.first >= j.second) return LinePrefetcher();
    return block_prefetcher(w, K, j.first * kNr, std::min(j.second * kNr, N), 0, std::min(k_step, K));
  };
  pool.parallel_for(pool.size(), [&](std::int64_t, std::int64_t) {
    std::unique_ptr<AlignedBuffer> acc_own, wide_own;
    float* acc = thread_scratch<TileTag>(chunk * m_panels * kNr * kMc, acc_own);
    float* wide = thread_scratch<WideTag>(chunk * kNr * kKc, wide_own);
    std::pair<std::int64_t, std::int64_t> mine = claim(), next{n_blocks, n_blocks};
    LinePrefetcher pf = first_block(mine);
    pf.drain();  // the first block has nothing to hide behind
    while (mine.first < mine.second) {
      const std::int64_t j0 = mine.first, j1 = mine.second;
      const std::int64_t n_lo = j0 * kNr, n_hi = std::min(j1 * kNr, N);
      for (std::int64_t pc = 0; pc < K; pc += k_step) {
        const std::int64_t kc = std::min(k_step, K - pc);
        widen_block<Arch>(wide, w, N, K, n_lo, (j1 - j0) * kNr, pc, kc);
        // The block after this one, spread over this block's micro-kernel calls.
        if (pc + k_step < K) {
          pf = block_prefetcher(w, K, n_lo, n_hi, pc + k_step, std::min(pc + 2 * k_step, K));
        } else {
          next = claim();
          pf = first_block(next);
        }
        const std::int64_t calls = (j1 - j0) * m_panels;
        const std::int64_t pf_steps = (pf.remaining() + calls - 1) / calls;
        for (std::int64_t p0 = 0; p0 < m_panels; p0 += S::kPanelsPerBlock) {
          const std::int64_t p1 = std::min(p0 + S::kPanelsPerBlock, m_panels);
          for (std::int64_t j = j0; j < j1; ++j) {
            const float* wb = wide + (j - j0) * kNr * kKc;
            for (std::int64_t p = p0; p < p1; ++p) {
              float* tile = acc + ((j - j0) * m_panels + p) * kNr * kMc;
              const float* xp = xt + p * K * kMc + pc * kMc;
              if (tail_rows > 0 && p == m_panels - 1) {
                tail_rows_kernel<Arch>(kc, wb, x + p * kMc * K + pc, K, tail_rows, tile, pc > 0);
                for (std::int64_t i = 0; i < pf_steps; ++i) pf.next();
              } else if (M - p * kMc > kLanes) {
                micro_kernel<Arch, 2>(kc, wb, xp, tile, pc > 0, pf, pf_steps);
              } else {
                micro_kernel<Arch, 1>(kc, wb, xp, tile, pc > 0, pf, pf_steps);
              }
            }
          }
        }
        pf.drain();  // what a short last k block had no steps for
      }
      // acc[j][p][r][jj] is out[p*kMc + jj][j*kNr + r].
      for (std::int64_t j = j0; j < j1; ++j) {
        const std::int64_t n0 = j * kNr, n_valid = std::min(kNr, N - n0);
        for (std::int64_t p = 0; p < m_panels; ++p)
          store_tile<Arch>(out, N, acc + ((j - j0) * m_panels + p) * kNr * kMc, p * kMc, std::min(kMc, M - p * kMc), n0,
                           n_valid, ep);
      }
      mine = next;
    }
  });
}

}  // namespace lav2::kernels::simd::detail
