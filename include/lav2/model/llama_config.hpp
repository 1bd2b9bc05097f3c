// LLaMA hyper-parameters: read from Meta's params.json, completed and checked against the
// tensors and the tokenizer.
//
//   params.json (LLaMA-1 7B): {"dim":4096,"multiple_of":256,"n_heads":32,"n_layers":32,
//                              "norm_eps":1e-06,"vocab_size":-1}
// vocab_size -1 means "ask the tokenizer"; the FFN width is not stored and follows the official
// rule hidden = multiple_of * ceil(int(2*4*dim/3) / multiple_of) (7B: 11008).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "lav2/core/error.hpp"

namespace lav2::model {

/// \brief Run-time sizes of a LLaMA model. Every dimension comes from the checkpoint.
struct LlamaConfig {
  int dim = 0;         ///< model width (7B: 4096)
  int n_layers = 0;    ///< transformer blocks (7B: 32)
  int n_heads = 0;     ///< attention heads (7B: 32); no GQA in LLaMA-1
  int head_dim = 0;    ///< dim / n_heads (7B: 128)
  int hidden_dim = 0;  ///< SwiGLU width (7B: 11008)
  int vocab_size = 0;  ///< output rows (7B: 32000)
  int multiple_of = 256;
  float norm_eps = 1e-5f;  ///< ModelArgs default; params.json overrides (7B: 1e-6)
  float rope_theta = 10000.0f;
};

/// \brief The official FFN width: int(2*(4*dim)/3) rounded up to a multiple of `multiple_of`.
inline int ffn_hidden_dim(int dim, int multiple_of) {
  const std::int64_t hidden = (2 * 4 * std::int64_t(dim)) / 3;
  return int(multiple_of * ((hidden + multiple_of - 1) / multiple_of));
}

namespace detail {
inline int json_positive_int(const nlohmann::json& j, const char* key, const std::string& file, int max_value) {
  if (!j.contains(key)) LAV2_THROW(load_error, "params '", file, "': field '", key, "' is missing");
  const auto& v = j.at(key);
  if (!v.is_number_integer())
    LAV2_THROW(load_error, "params '", file, "': field '", key, "' must be an integer, got ", v.dump());
  const std::int64_t x = v.get<std::int64_t>();
  if (x <= 0 || x > max_value)
    LAV2_THROW(load_error, "params '", file, "': field '", key, "' is ", x, ", expected 1..", max_value);
  return int(x);
}
}  // namespace detail

/// \brief Parses params.json text. `file` names the file in messages. vocab_size -1 is kept as 0
/// (resolved later from the tokenizer); hidden_dim is computed from dim and multiple_of.
inline LlamaConfig parse_params_json(const nlohmann::json& j, const std::string& file) {
  if (!j.is_object()) LAV2_THROW(load_error, "params '", file, "': expected a JSON object, got ", j.type_name());
  LlamaConfig c;
  c.dim = detail::json_positive_int(j, "dim", file, 1 << 16);
  c.n_layers = detail::json_positive_int(j, "n_layers", file, 1024);
  c.n_heads = detail::json_positive_int(j, "n_heads", file, 1024);
  if (j.contains("multiple_of")) c.multiple_of = detail::json_positive_int(j, "multiple_of", file, 1 << 16);
  if (j.contains("norm_eps")) {
    const auto& e = j.at("norm_eps");
    if (!e.is_number() || !(e.get<double>() > 0.0) || e.get<double>() >= 1.0)
      LAV2_THROW(load_error, "params '", file, "': field 'norm_eps' is ", e.dump(), ", expected a number in (0, 1)");
    c.norm_eps = e.get<float>();
  }
  if (j.contains("vocab_size")) {
    const auto& v = j.at("vocab_size");
    if (!v.is_number_integer() ||
        (v.get<std::int64_t>() != -1 && (v.get<std::int64_t>() <= 0 || v.get<std::int64_t>() > (1 << 22))))
      LAV2_THROW(load_error, "params '", file, "': field 'vocab_size' is ", v.dump(), ", expected -1 or 1..", 1 << 22);
    c.vocab_size = v.get<std::int64_t>() == -1 ? 0 : int(v.get<std::int64_t>());
  }
  if (j.contains("n_kv_heads") && !j.at("n_kv_heads").is_null() && j.at("n_kv_heads") != j.at("n_heads"))
    LAV2_THROW(load_error, "params '", file, "': field 'n_kv_heads' is ", j.at("n_kv_heads").dump(),
               "; grouped-query attention (LLaMA-2 70B) is not supported, expected ", c.n_heads);
  if (c.dim % c.n_heads != 0)
    LAV2_THROW(load_error, "params '", file, "': dim ", c.dim, " is not divisible by n_heads ", c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  if (c.head_dim % 2 != 0)
    LAV2_THROW(load_error, "params '", file, "': head_dim ", c.head_dim, " must be even for RoPE");
  c.hidden_dim = ffn_hidden_dim(c.dim, c.multiple_of);
  // LLaMA-2/3 params.json may carry ffn_dim_multiplier (null in LLaMA-1/2 7B): hidden is scaled
  // before the rounding, as in Meta's later model.py.
  if (j.contains("ffn_dim_multiplier") && !j.at("ffn_dim_multiplier").is_null()) {
    const auto& m = j.at("ffn_dim_multiplier");
    if (!m.is_number() || !(m.get<double>() > 0.0) || m.get<double>() > 64.0)
      LAV2_THROW(load_error, "params '", file, "': field 'ffn_dim_multiplier' is ", m.dump(),
                 ", expected a number in (0, 64]");
    const std::int64_t hidden = std::int64_t(m.get<double>() * double((2 * 4 * std::int64_t(c.dim)) / 3));
    c.hidden_dim = int(c.multiple_of * ((hidden + c.multiple_of - 1) / c.multiple_of));
  }
  if (j.contains("rope_theta")) {
    const auto& t = j.at("rope_theta");
    if (!t.is_number() || !(t.get<double>() > 1.0) || t.get<double>() > 1e9)
      LAV2_THROW(load_error, "params '", file, "': field 'rope_theta' is ", t.dump(),
                 ", expected a number in (1, 1e9]");
    c.rope_theta = t.get<float>();
  }
  return c;
}

}  // namespace lav2::model
