#include <doctest/doctest.h>

#include <cstdint>

#include <lav2/tensor/tensor.hpp>

using namespace lav2;

TEST_CASE("Tensor is zeroed, 64-byte aligned and viewable") {
  Tensor<float> t(Shape{3, 5});
  CHECK(t.numel() == 15);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  for (float v : t) CHECK(v == 0.0f);
  auto v = t.view();
  v(2, 4) = 7.0f;
  CHECK(t[14] == 7.0f);
  CHECK(v.is_contiguous());
  TensorView<const float> cv = v;
  CHECK(cv.row(2)[4] == 7.0f);
}

TEST_CASE("strided views and shape checks") {
  float data[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  TensorView<float> t(data, Shape{3, 2}, Strides{4, 1});  // every other pair of a 3x4
  CHECK(!t.is_contiguous());
  CHECK(t(2, 1) == 9.0f);
  CHECK(Shape{4096, 11008}.to_string() == "(4096, 11008)");
  CHECK(Shape{64}.to_string() == "(64,)");
  CHECK_THROWS_AS(Shape({-1, 3}).numel(), input_error);
  CHECK_THROWS_AS(Shape({INT64_MAX, 3}).numel(), input_error);
  AnyTensorView any{DType::f16, data, Shape{3}, contiguous_strides(Shape{3})};
  CHECK_THROWS_AS(any.as<float>(), input_error);
}

TEST_CASE("tensor memory: 64-byte aligned, 2 MiB aligned (huge-page advised) from 2 MiB up, zeroed") {
  const lav2::Tensor<float> small(lav2::Shape{1000});
  CHECK(reinterpret_cast<std::uintptr_t>(small.data()) % 64 == 0);
  const lav2::Tensor<float> large(lav2::Shape{3, 1 << 18});  // 3 MiB
  CHECK(reinterpret_cast<std::uintptr_t>(large.data()) % lav2::kHugePageBytes == 0);
  bool zero = true;
  for (float v : large) zero = zero && v == 0.0f;
  CHECK(zero);
  CHECK(lav2::alignment_for(lav2::kHugePageBytes - 1) == 64);
  CHECK(lav2::alignment_for(lav2::kHugePageBytes) == lav2::kHugePageBytes);
  void* p = lav2::aligned_alloc_bytes(0);  // a valid, freeable block
  CHECK(p != nullptr);
  lav2::aligned_free(p, 0);
}
