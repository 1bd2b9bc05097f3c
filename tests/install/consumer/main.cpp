// A downstream program that uses the installed lav2 package only (find_package(lav2)): includes
// the umbrella header, builds a tiny random LLaMA, plain and with a random V2 BIAS adapter, runs a
// forward pass over a per-request state and checks that the logits are finite and deterministic
// (a second state over the same model, and a second model from the same seed, give the same bits).
#include <lav2/lav2.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

std::vector<float> run(const lav2::model::LlamaModel& model, lav2::ThreadPool& pool, const std::vector<int>& ids) {
  const auto& c = model.config();
  // A V2 adapter takes a visual query of query_len rows; zeros stand in for an encoded image.
  const std::int64_t n_visual = model.spec().takes_visual() ? model.spec().query_len : 0;
  std::vector<float> visual(std::size_t(n_visual * c.dim), 0.0f);
  lav2::model::StateOptions opt;
  opt.max_seq_len = 16;
  lav2::model::RunState state = model.new_state(pool, opt, n_visual ? visual.data() : nullptr, n_visual);
  std::vector<float> logits(std::size_t(c.vocab_size));
  model.forward(pool, state, ids.data(), std::int64_t(ids.size()), logits.data());  // prefill
  const int next = 7;
  model.forward(pool, state, &next, 1, logits.data());  // one decode step
  return logits;
}

bool check(const char* what, const lav2::model::AdapterSpec& spec, lav2::ThreadPool& pool) {
  const lav2::model::LlamaConfig c = lav2::model::preset_config("tiny");
  const auto model = lav2::model::random_llama(c, lav2::DType::f16, pool, 42, 0.02f, spec);
  const auto twin = lav2::model::random_llama(c, lav2::DType::f16, pool, 42, 0.02f, spec);
  const std::vector<int> ids = {1, 15, 200, 3, 99};
  const auto a = run(model, pool, ids), b = run(model, pool, ids), t = run(twin, pool, ids);
  bool finite = true, nonzero = false;
  for (float v : a) finite = finite && std::isfinite(v), nonzero = nonzero || v != 0.0f;
  const bool same = std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0 &&
                    std::memcmp(a.data(), t.data(), a.size() * sizeof(float)) == 0;
  std::printf("%s: %zu logits, finite=%d nonzero=%d deterministic=%d, logit[0]=%g\n", what, a.size(), finite, nonzero,
              same, double(a[0]));
  return finite && nonzero && same;
}

// A loader entry (LAV2_API: compiled in the library unit, or inline header-only) refuses bytes
// that are not an image, naming them.
bool check_loader() {
  const std::uint8_t not_an_image[] = {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'};
  try {
    (void)lav2::vision::decode_image(not_an_image, sizeof not_an_image, "bytes");
  } catch (const lav2::load_error& e) {
    std::printf("decode_image: %s\n", e.what());
    return std::strstr(e.what(), "'bytes'") != nullptr;
  }
  return false;
}

}  // namespace

int main() {
  lav2::ThreadPool pool(2);
  const bool f16_ok = lav2::f16_to_f32(lav2::f32_to_f16(1.5f)) == 1.5f;
  const bool base_ok = check("tiny LLaMA", lav2::model::AdapterSpec{}, pool);
  const auto c = lav2::model::preset_config("tiny");
  const bool adapter_ok = check("tiny LLaMA + V2 BIAS adapter", lav2::model::random_adapter_spec(c), pool);
  const bool ok = f16_ok && base_ok && adapter_ok && check_loader();
  std::printf("lav2 %s (%s): %s\n", lav2::kVersion, LAV2_COMPILED ? "library unit" : "header-only",
              ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
