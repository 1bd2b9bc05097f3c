// The training umbrella: every public header of lav2/train/ (backward ops, AdamW, parameter
// groups, the training models). Inference never includes it: lav2.hpp stops at the model,
// vision and text layers.
#pragma once

#include "lav2/lav2.hpp"

#include "lav2/train/activation.hpp"
#include "lav2/train/adamw.hpp"
#include "lav2/train/adapter_attention.hpp"
#include "lav2/train/attention.hpp"
#include "lav2/train/augment.hpp"
#include "lav2/train/checkpoint.hpp"
#include "lav2/train/data.hpp"
#include "lav2/train/embedding.hpp"
#include "lav2/train/linear.hpp"
#include "lav2/train/llama_train.hpp"
#include "lav2/train/loss.hpp"
#include "lav2/train/lr_schedule.hpp"
#include "lav2/train/norm.hpp"
#include "lav2/train/param_groups.hpp"
#include "lav2/train/phase_model.hpp"
#include "lav2/train/projector_train.hpp"
#include "lav2/train/rope.hpp"
#include "lav2/train/trainer.hpp"
#include "lav2/train/workspace.hpp"
