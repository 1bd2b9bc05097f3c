#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <lav2/text/prompt.hpp>
#include <lav2/text/sampling.hpp>

using lav2::text::Sampler;

TEST_CASE("greedy picks the first maximum") {
  const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f};
  Sampler s(0.0f, 0.75f, 1);
  CHECK(s.sample(logits, 4) == 1);
  CHECK(lav2::text::argmax(logits, 4) == 1);
}

TEST_CASE("top-p sampling follows the truncated, renormalised distribution (chi-square)") {
  // probs at T=1: softmax(log p) = p. Sorted: 0.4, 0.25, 0.15, 0.1, 0.06, 0.04.
  // top_p = 0.75: keep while cumsum - p <= 0.75: 0.4 (0), 0.25 (0.4), 0.15 (0.65), 0.1 (0.80 > 0.75: drop).
  const std::vector<double> p = {0.1, 0.4, 0.06, 0.25, 0.04, 0.15};
  std::vector<float> logits;
  for (double v : p) logits.push_back(float(std::log(v)));
  Sampler s(1.0f, 0.75f, 42);
  const int n_draws = 80000;
  std::vector<int> counts(p.size(), 0);
  for (int i = 0; i < n_draws; ++i) counts[std::size_t(s.sample(logits.data(), std::int64_t(logits.size())))]++;
  CHECK(counts[0] == 0);  // 0.1: cut
  CHECK(counts[2] == 0);
  CHECK(counts[4] == 0);
  const double kept = 0.4 + 0.25 + 0.15;
  double chi2 = 0.0;
  for (int idx : {1, 3, 5}) {
    const double expected = n_draws * p[std::size_t(idx)] / kept;
    chi2 += (counts[std::size_t(idx)] - expected) * (counts[std::size_t(idx)] - expected) / expected;
  }
  // 2 degrees of freedom: P(chi2 > 13.82) = 0.001.
  CHECK(chi2 < 13.82);
}

TEST_CASE("temperature sharpens, the seed reproduces, top_p = 1 keeps everything") {
  const float logits[] = {1.0f, 0.0f, -1.0f};
  Sampler a(0.5f, 1.0f, 7), b(0.5f, 1.0f, 7);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30000; ++i) {
    const int x = a.sample(logits, 3);
    CHECK(x == b.sample(logits, 3));
    counts[std::size_t(x)]++;
  }
  // softmax([2, 0, -2]) = 0.8668, 0.1173, 0.0159
  CHECK(std::abs(counts[0] / 30000.0 - 0.8668) < 0.01);
  CHECK(counts[2] > 0);
}

TEST_CASE("a top-p that keeps nothing but the first still draws the most likely token") {
  const float logits[] = {0.0f, 3.0f, 1.0f};
  Sampler s(1.0f, 1e-6f, 3);
  for (int i = 0; i < 100; ++i) CHECK(s.sample(logits, 3) == 1);
}

TEST_CASE("bad sampling parameters are input errors") {
  CHECK_THROWS_AS(Sampler(NAN, 0.5f, 0), lav2::input_error);
  CHECK_THROWS_AS(Sampler(1.0f, 0.0f, 0), lav2::input_error);
  CHECK_THROWS_AS(Sampler(1.0f, 1.5f, 0), lav2::input_error);
}

TEST_CASE("greedy and sampling refuse non-finite logits") {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    CAPTURE(bad);
    const float logits[] = {0.5f, 2.0f, bad, 1.0f};
    // NaN compares false with everything, so a plain argmax would return a token and hide it.
    CHECK_THROWS_WITH_AS(lav2::text::argmax(logits, 4), doctest::Contains("logit 2 of 4"), lav2::input_error);
    Sampler greedy(0.0f, 0.75f, 1), sampler(0.8f, 0.75f, 1);
    CHECK_THROWS_AS(greedy.sample(logits, 4), lav2::input_error);
    CHECK_THROWS_WITH_AS(sampler.sample(logits, 4), doctest::Contains("non-finite"), lav2::input_error);
  }
}

TEST_CASE("prompt templates are the official strings") {
  using namespace lav2::text;
  CHECK(format_prompt(PromptTemplate::alpaca, "Hi") ==
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nHi\n\n### Response:");
  CHECK(format_prompt(PromptTemplate::alpaca_input, "Hi", std::string_view("")) ==
        "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
        "response that appropriately completes the request.\n\n### Instruction:\nHi\n\n### Input:\n\n\n### Response:");
  CHECK(format_prompt(PromptTemplate::none, "raw") == "raw");
  CHECK_THROWS_AS(parse_prompt_template("chat"), lav2::input_error);
}
