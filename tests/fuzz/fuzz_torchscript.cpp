// libFuzzer target: the TorchScript archive reader (io/torchscript.hpp): zip, the unpickler in
// TorchScript mode over data.pkl and constants.pkl, the module graph walk and tensor checks.
#include <lav2/io/torchscript.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lav2::Limits lim = lav2::fuzz::small_limits();
  LAV2_FUZZ_EXPECTED_ERRORS({
    lav2::io::TorchScriptArchive ts(lav2::io::MappedFile::from_buffer(data, size, "fuzz.pt"), lim.checkpoint);
    (void)lav2::fuzz::touch_all(ts.tensors());
    (void)lav2::fuzz::touch_all(ts.constant_tensors());
    (void)ts.root_class();
  });
  return 0;
}
