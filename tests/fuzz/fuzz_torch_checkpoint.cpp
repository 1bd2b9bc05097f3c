// libFuzzer target: the torch.save reader (io/torch_checkpoint.hpp): the zip container, the
// restricted unpickler and the tensor checks. The input is run twice: as a bare pickle stream
// (data.pkl) through the Unpickler, and as a whole .pth file through TorchCheckpoint, whose
// tensor views are then touched at both ends.
#include <lav2/io/pickle.hpp>
#include <lav2/io/torch_checkpoint.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lav2::Limits lim = lav2::fuzz::small_limits();
  LAV2_FUZZ_EXPECTED_ERRORS({
    lav2::io::Unpickler up(data, size, "data.pkl", lim.checkpoint.pickle);
    (void)up.load();
  });
  LAV2_FUZZ_EXPECTED_ERRORS({
    lav2::io::TorchCheckpoint ck(lav2::io::MappedFile::from_buffer(data, size, "fuzz.pth"), lim.checkpoint);
    (void)lav2::fuzz::touch_all(ck.tensors());
    if (ck.root().find("model")) (void)lav2::fuzz::touch_all(ck.tensors("model"));
  });
  return 0;
}
