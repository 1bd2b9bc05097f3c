// Visual instruction following with the library API: LLaMA + a LLaMA-Adapter V2 checkpoint + CLIP.
//   example_describe_image LLAMA_DIR TOKENIZER ADAPTER CLIP IMAGE "instruction"
// (with the bundled tiny model: tests/data/tiny_llama/tiny tests/data/tiny_llama/tokenizer.model
//  tests/data/tiny_adapter/full_bias/adapter.pth tests/data/tiny_clip/ViT-tiny.pt <png>)
#include <cstdio>
#include <memory>
#include <string>

#include <lav2/core/error.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/model/model_loader.hpp>
#include <lav2/text/prompt.hpp>
#include <lav2/text/tokenizer.hpp>
#include <lav2/vision/visual_encoder.hpp>

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s LLAMA_DIR TOKENIZER ADAPTER CLIP IMAGE INSTRUCTION\n", argv[0]);
    return 2;
  }
  try {
    using namespace lav2;
    ThreadPool pool(0);  // all cores
    const auto tokenizer = text::Tokenizer::load(argv[2]);
    const auto loaded = model::load_model(argv[1], tokenizer.vocab_size(), argv[3]);

    // Image -> CLIP features [257, C] -> visual query [Q, dim] -> the adapter's prompts (once).
    const auto clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(argv[4]));
    const auto encoder = vision::VisualEncoder::from_adapter(clip, loaded.adapter.tensors, argv[3]);
    const Tensor<float> query = encoder.encode_file(pool, argv[5]);  // BGR, as trained

    const std::string prompt = text::format_prompt(text::PromptTemplate::alpaca, argv[6]);
    const std::vector<int> ids = tokenizer.encode(prompt, /*bos=*/true, /*eos=*/false);
    model::GenerateOptions options;  // the official defaults: T 0.1, top-p 0.75, 256 tokens
    auto state = loaded.model.new_state(pool, model::StateOptions{}, query.data(), query.dim(0));
    model::generate(loaded.model, state, pool, tokenizer, ids, options, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;  // false would stop generation here
    });
    std::printf("\n");
    return 0;
  } catch (const lav2::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
