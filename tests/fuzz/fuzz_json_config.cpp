// libFuzzer target: configuration readers.
//   - params.json: io::parse_json_text (size and depth limits) then model::parse_params_json
//   - an adapter checkpoint's 'config' (model::open_adapter): an input that starts with "PK"
//     is opened as a .pth and its config read against a fixed small LLaMA shape
#include <cstring>

#include <lav2/io/json_file.hpp>
#include <lav2/io/torch_checkpoint.hpp>
#include <lav2/model/llama_config.hpp>
#include <lav2/model/model_loader.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lav2::Limits lim = lav2::fuzz::small_limits();
  if (size >= 2 && std::memcmp(data, "PK", 2) == 0) {
    LAV2_FUZZ_EXPECTED_ERRORS({
      lav2::io::TorchCheckpoint ck(lav2::io::MappedFile::from_buffer(data, size, "fuzz.pth"), lim.checkpoint);
      lav2::model::LlamaConfig c;
      c.dim = 64, c.n_layers = 4, c.n_heads = 4, c.head_dim = 16, c.hidden_dim = 192, c.vocab_size = 512;
      (void)lav2::model::open_adapter(ck, c);
    });
    return 0;
  }
  LAV2_FUZZ_EXPECTED_ERRORS({
    const lav2::io::JsonFile j =
        lav2::io::parse_json_text(std::string_view(reinterpret_cast<const char*>(data), size), "params.json", lim.json);
    (void)lav2::model::parse_params_json(j.value, j.path);
  });
  return 0;
}
