// Run-time sizes of the adapter: how many prompts, in how many layers, the LoRA rank and the
// fusion depth. Read from the checkpoint's 'config' (official keys w_bias, w_lora, lora_rank;
// lav2's keys query_len, query_layer, fusion_mode, fusion_depth, adapter, bias_set, scale_mode)
// and checked against the tensors at load.
#pragma once

#include "lav2/model/policies.hpp"

namespace lav2::model {

/// \brief Adapter sizes; every field is a run-time value.
struct AdapterConfig {
  int query_len = 10;    ///< prompts per adapter layer (official 10)
  int query_layer = 0;   ///< adapter layers, the last ones (official 31 of 32; V1 30)
  int lora_rank = 16;    ///< LoRA rank r (official 16)
  int fusion_depth = 0;  ///< K for FirstK / PaperEarly
};

}  // namespace lav2::model
