// Text generation with base LLaMA from a program built against the installed lav2.
//   lav2_app LLAMA_DIR "prompt"     (tokenizer: LLAMA_DIR/../tokenizer.model, Meta's layout)
// For images, adapters and experts, see ../ask_image.cpp and ../ask_with_expert.cpp.
#include <cstdio>
#include <string>

#include <lav2/lav2.hpp>

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: %s LLAMA_DIR PROMPT\n", argv[0]), 2;
  try {
    using namespace lav2;
    const auto tokenizer = text::Tokenizer::load(std::string(argv[1]) + "/../tokenizer.model");
    const auto loaded = model::load_model(argv[1], tokenizer.vocab_size());        // no adapter: base LLaMA
    ThreadPool pool(0);                                                            // all cores
    auto state = loaded.model.new_state(pool, model::StateOptions{}, nullptr, 0);  // no visual query
    model::GenerateOptions opt;
    opt.max_new_tokens = 64;
    const auto r = model::generate(loaded.model, state, pool, tokenizer, tokenizer.encode(argv[2], true, false), opt,
                                   [](std::string_view piece) {
                                     std::fwrite(piece.data(), 1, piece.size(), stdout);
                                     return true;
                                   });
    std::printf("\n[%zu tokens, %s]\n", r.generated_ids.size(), r.finish_reason.c_str());
    return 0;
  } catch (const lav2::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
