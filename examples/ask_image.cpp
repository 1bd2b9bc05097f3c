// The smallest multimodal program: load LLaMA + a V2 adapter + CLIP, encode an image, ask, stream.
//   example_ask_image LLAMA_DIR ADAPTER CLIP IMAGE "question"
// The tokenizer is LLAMA_DIR/../tokenizer.model, as in Meta's layout (LLaMA/7B, LLaMA/tokenizer.model).
#include <cstdio>
#include <memory>
#include <string>

#include <lav2/lav2.hpp>

int main(int argc, char** argv) {
  if (argc != 6) return std::fprintf(stderr, "usage: %s LLAMA_DIR ADAPTER CLIP IMAGE QUESTION\n", argv[0]), 2;
  try {
    using namespace lav2;
    ThreadPool pool(0);  // all cores
    const auto tokenizer = text::Tokenizer::load(std::string(argv[1]) + "/../tokenizer.model");
    const auto loaded = model::load_model(argv[1], tokenizer.vocab_size(), argv[2]);
    // CLIP features -> the adapter's projector -> a visual query [Q, dim], computed once per image.
    const auto clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(argv[3]));
    const auto encoder = vision::VisualEncoder::from_adapter(clip, loaded.adapter.tensors, argv[2]);
    const Tensor<float> query = encoder.encode_file(pool, argv[4]);  // BGR, as the weights were trained
    auto state = loaded.model.new_state(pool, model::StateOptions{}, query.data(), query.dim(0));

    const auto ids = tokenizer.encode(text::format_prompt(text::PromptTemplate::alpaca, argv[5]), true, false);
    model::GenerateOptions opt;  // the official defaults: T 0.1, top-p 0.75, 256 tokens
    opt.stop = {"###"};          // the Alpaca section marker: the answer is over
    model::generate(loaded.model, state, pool, tokenizer, ids, opt, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);  // never half a UTF-8 character
      std::fflush(stdout);
      return true;  // false stops here
    });
    std::printf("\n");
    return 0;
  } catch (const lav2::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
