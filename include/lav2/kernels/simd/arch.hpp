// The one include of xsimd (and of the x86 intrinsics) for lav2's SIMD kernels.
//
// GCC 12.2's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their own
// _mm512_undefined_*() placeholders once inlined (GCC PR 105593, fixed in 12.3); the warning's
// location is inside those headers, so silencing it around their first inclusion keeps our
// -Wall -Wextra builds clean without hiding anything in lav2's code.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
