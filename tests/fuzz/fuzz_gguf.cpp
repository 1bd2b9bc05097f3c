// libFuzzer target: the GGUF reader (io/gguf.hpp): header, metadata values and arrays, tensor
// infos, the offsets' layout and the data section's bounds.
#include <lav2/io/gguf.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lav2::Limits lim = lav2::fuzz::small_limits();
  LAV2_FUZZ_EXPECTED_ERRORS({
    lav2::io::GgufFile f(lav2::io::MappedFile::from_buffer(data, size, "fuzz.gguf"), lim.gguf);
    (void)lav2::fuzz::touch_all(f.tensors());
  });
  return 0;
}
