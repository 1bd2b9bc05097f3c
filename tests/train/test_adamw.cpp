// AdamW against torch.optim.AdamW: tests/data/train/adamw.json (tools/reference/make_adamw_fixture.py)
// holds 7 adapter-shaped parameters, the gradients of 3 steps under the official schedule and
// weight-decay rule, and torch's values after them; lav2 must match within 1e-5 abs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include <lav2/train/adamw.hpp>
#include <lav2/train/lr_schedule.hpp>

#include "train/grad_check.hpp"

using namespace lav2;
using namespace lav2::train;

TEST_CASE("AdamW: 3 steps match torch.optim.AdamW (official betas, decay rule and schedule)") {
  std::ifstream in(std::string(LAV2_TEST_DATA_DIR) + "/train/adamw.json");
  REQUIRE(in);
  const nlohmann::json fx = nlohmann::json::parse(in);
  AdamWConfig cfg;
  cfg.beta1 = fx["betas"][0], cfg.beta2 = fx["betas"][1], cfg.eps = fx["eps"], cfg.weight_decay = fx["weight_decay"];
  CHECK(cfg.beta1 == 0.9);  // the defaults are the official ones
  CHECK(cfg.beta2 == 0.95);
  const auto& ps = fx["params"];
  std::vector<std::vector<float>> values, grads(ps.size());
  std::vector<ParamRef> refs;
  for (const auto& p : ps) {
    values.push_back(p["init"].get<std::vector<float>>());
    Shape shape;
    for (std::int64_t d : p["shape"].get<std::vector<std::int64_t>>()) shape.dims[std::size_t(shape.rank++)] = d;
    refs.push_back(ParamRef{p["name"], nullptr, nullptr, std::int64_t(values.back().size()),
                            official_weight_decay(p["name"], shape)});
  }
  for (std::size_t i = 0; i < ps.size(); ++i) {
    grads[i].assign(values[i].size(), 0.0f);
    refs[i].value = values[i].data(), refs[i].grad = grads[i].data();
  }
  // The rule: gates (1, H, 1, 1) and matrices decay; 1-D tensors and *.bias do not.
  CHECK(refs[0].decay);
  CHECK(refs[4].decay);
  CHECK_FALSE(refs[2].decay);
  CHECK_FALSE(refs[3].decay);
  CHECK_FALSE(refs[6].decay);
  AdamW opt(refs, cfg);
  const std::vector<double> lrs = fx["lrs"];
  for (std::size_t it = 0; it < lrs.size(); ++it) {
    const double lr = learning_rate(std::int64_t(it), fx["warmup"], fx["total"], fx["base_lr"], fx["min_lr"]);
    CHECK(lr == doctest::Approx(lrs[it]).epsilon(1e-15));
    std::vector<bool> has_grad;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const auto& g = ps[i]["grads"][it];
      has_grad.push_back(!g.is_null());
      if (g.is_null()) continue;
      const std::vector<float> step_grad = g;  // into the buffer the optimiser points at
      REQUIRE(step_grad.size() == grads[i].size());
      std::copy(step_grad.begin(), step_grad.end(), grads[i].begin());
    }
    opt.step(lr, has_grad);
  }
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const std::vector<float> want = ps[i]["final"];
    train::test::expect_close(ps[i]["name"].get<std::string>() + " after 3 steps", values[i], want, 1e-5, 0);
  }
  // The parameter without a gradient is bit-identical, decay included, and has taken no step.
  const std::vector<float> init0 = ps[0]["init"];
  CHECK(std::memcmp(values[0].data(), init0.data(), init0.size() * sizeof(float)) == 0);
  CHECK(opt.step_count(0) == 0);
  CHECK(opt.step_count(1) == 3);
}

TEST_CASE("learning rate: linear warmup then half-cycle cosine; bad schedules refused") {
  CHECK(learning_rate(0, 10, 100, 1e-3) == 0.0);
  CHECK(learning_rate(5, 10, 100, 1e-3) == doctest::Approx(5e-4));
  CHECK(learning_rate(10, 10, 100, 1e-3) == doctest::Approx(1e-3));
  CHECK(learning_rate(55, 10, 100, 1e-3) == doctest::Approx(5e-4));
  CHECK(learning_rate(100, 10, 100, 1e-3, 1e-5) == doctest::Approx(1e-5));
  CHECK(learning_rate(3, 0, 4, 2.0) == doctest::Approx(2.0 * 0.5 * (1 + std::cos(3.14159265358979 * 3 / 4))));
  CHECK_THROWS_AS(learning_rate(0, 5, 5, 1e-3), input_error);
  CHECK_THROWS_AS(learning_rate(0, 0, 0, 1e-3), input_error);
}

TEST_CASE("AdamW: a parameter without buffers is refused") {
  std::vector<float> v(3);
  CHECK_THROWS_AS(AdamW({ParamRef{"x", v.data(), nullptr, 3, true}}, AdamWConfig{}), input_error);
}
