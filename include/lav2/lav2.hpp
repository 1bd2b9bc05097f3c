// lav2: LLaMA-Adapter V2 on CPUs. The umbrella header: includes every public header.
#pragma once

#include "lav2/version.hpp"
#include "lav2/core/error.hpp"
#include "lav2/core/thread_pool.hpp"
#include "lav2/tensor/dtype.hpp"
#include "lav2/tensor/shape.hpp"
#include "lav2/tensor/tensor.hpp"
#include "lav2/text/utf8.hpp"
#include "lav2/text/protobuf_reader.hpp"
#include "lav2/text/sentencepiece_model.hpp"
#include "lav2/text/json_reader.hpp"
#include "lav2/text/hf_tokenizer_json.hpp"
#include "lav2/text/tokenizer.hpp"
#include "lav2/kernels/dispatch.hpp"
#include "lav2/kernels/selfcheck.hpp"
#include "lav2/vision/image.hpp"
#include "lav2/vision/image_preprocess.hpp"
