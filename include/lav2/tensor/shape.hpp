// Shapes and strides of up to kMaxRank dimensions, with overflow-checked element counts.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "lav2/core/error.hpp"

namespace lav2 {

/// \brief Largest tensor rank lav2 handles (CLIP's conv1 weight is rank 4).
inline constexpr int kMaxRank = 6;

/// \brief Dimensions of a tensor, outermost first (PyTorch order). Rank 0 is a scalar.
struct Shape {
  int rank = 0;
  std::array<std::int64_t, kMaxRank> dims{};

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> d) {
    if (d.size() > std::size_t(kMaxRank)) LAV2_THROW(input_error, "shape of rank ", d.size(), " exceeds ", kMaxRank);
    for (std::int64_t v : d) dims[std::size_t(rank++)] = v;
  }
  std::int64_t operator[](int i) const { return dims[std::size_t(i)]; }
  std::int64_t& operator[](int i) { return dims[std::size_t(i)]; }

  /// Product of the dims; throws input_error on a negative dim or when it overflows int64.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) {
      const std::int64_t d = dims[std::size_t(i)];
      if (d < 0) LAV2_THROW(input_error, "shape ", to_string(), " has a negative dimension");
      if (d != 0 && n > INT64_MAX / d) LAV2_THROW(input_error, "shape ", to_string(), " overflows int64");
      n *= d;
    }
    return n;
  }
  /// "(4096, 11008)", the form used in every message.
  std::string to_string() const {
    std::string s = "(";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[std::size_t(i)]);
    return s + (rank == 1 ? ",)" : ")");
  }
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[std::size_t(i)] != b.dims[std::size_t(i)]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
};

/// \brief Strides in elements, one per dim of the matching Shape.
using Strides = std::array<std::int64_t, kMaxRank>;

/// \brief Row-major (C order) strides for `s`.
inline Strides contiguous_strides(const Shape& s) {
  Strides st{};
  std::int64_t acc = 1;
  for (int i = s.rank - 1; i >= 0; --i) {
    st[std::size_t(i)] = acc;
    acc *= s.dims[std::size_t(i)];
  }
  return st;
}

}  // namespace lav2
