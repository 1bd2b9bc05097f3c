// A model with q8_0 / q4_0 frozen linears (the f32 weights quantised, as `lav2 convert` will do)
// runs the same forward pass through the quantised kernels: its logits follow the f32 model's
// within the quantisation error, on the prefill path (dequantised GEMM) and the decode path
// (q8_0 activations), and the 8-bit model tracks f32 more closely than the 4-bit one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <lav2/model/random_llama.hpp>

#include "common/compare.hpp"

using namespace lav2;

namespace {
// Logits after a 9-token prefill and after one more decode step.
std::vector<std::vector<float>> run(const model::LlamaModel& m, ThreadPool& pool) {
  model::StateOptions opt;
  opt.max_seq_len = 16;
  model::RunState st = m.new_state(pool, opt);
  const std::vector<int> ids = {1, 15, 200, 3, 99, 7, 42, 300, 11};
  std::vector<float> prefill(std::size_t(m.config().vocab_size)), decode(prefill.size());
  m.forward(pool, st, ids.data(), std::int64_t(ids.size()), prefill.data());
  const int next = 5;
  m.forward(pool, st, &next, 1, decode.data());
  return {prefill, decode};
}
}  // namespace

TEST_CASE("q8_0 and q4_0 models follow the f32 model's logits") {
  ThreadPool pool(2);
  const model::LlamaConfig c = model::preset_config("tiny");
  const auto f32 = run(model::random_llama(c, DType::f32, pool, 3, 0.05f), pool);
  double err8 = 0, err4 = 0;
  for (const DType dt : {DType::q8_0, DType::q4_0}) {
    const auto q = run(model::random_llama(c, dt, pool, 3, 0.05f), pool);
    for (int path = 0; path < 2; ++path) {
      const double scale =
          lav2::test::max_abs(f32[std::size_t(path)].data(), std::int64_t(f32[std::size_t(path)].size()));
      const double err = lav2::test::max_abs_diff(q[std::size_t(path)], f32[std::size_t(path)]);
      INFO(std::string(dtype_name(dt)), std::string(path ? " decode" : " prefill"), ": max|diff| = ", err,
           ", max|logit| = ", scale);
      // q8_0 keeps ~2-3 significant digits, q4_0 about one; both stay well under the logits' range.
      CHECK(err <= (dt == DType::q8_0 ? 0.03 : 0.3) * scale);
      CHECK(err > 0.0);  // the quantised kernels really ran
      (dt == DType::q8_0 ? err8 : err4) = std::max(dt == DType::q8_0 ? err8 : err4, err);
    }
  }
  CHECK(err8 < err4);
}

TEST_CASE("a q4_0 model repacked at build (q4_0_x8) computes what the file's layout computes") {
  ThreadPool pool(2);
  const model::LlamaConfig c = model::preset_config("tiny");
  const auto repacked_model = model::random_llama(c, DType::q4_0, pool, 3, 0.05f);
  ::setenv("LAV2_REPACK", "0", 1);
  const auto file_model = model::random_llama(c, DType::q4_0, pool, 3, 0.05f);
  ::unsetenv("LAV2_REPACK");
  CHECK(repacked_model.weights().layers[0].wq.weight.dtype == DType::q4_0_x8);
  CHECK(repacked_model.weights().output.dtype == DType::q4_0_x8);
  CHECK(repacked_model.weights().tok_embeddings.dtype == DType::q4_0);  // read by rows, kept
  CHECK(file_model.weights().layers[0].wq.weight.dtype == DType::q4_0);
  const auto a = run(repacked_model, pool), b = run(file_model, pool);
  // The same exact block integers, summed in another lane order by the decode dots (the logits
  // of a prefill too: its last row meets `output` alone): float rounding only. (The GEMM's bits
  // equal q4_0's: test_matmul_x8.cpp.)
  for (int path = 0; path < 2; ++path) {
    const auto& want = b[std::size_t(path)];
    const double scale = lav2::test::max_abs(want.data(), std::int64_t(want.size()));
    const double err = lav2::test::max_abs_diff(a[std::size_t(path)], want);
    INFO(std::string(path ? "decode" : "prefill"), ": max|diff| = ", err, ", max|logit| = ", scale);
    CHECK(err <= 1e-5 * scale);
  }
}
