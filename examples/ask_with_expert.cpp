// An expert reads the image first and its text joins the prompt (the paper's fourth idea,
// docs/experts.md): the caption expert, a second adapter over the same base LLaMA and CLIP, and
// OCR when lav2 was built with Tesseract (link lav2::tesseract).
//   example_ask_with_expert LLAMA_DIR ADAPTER CLIP CAPTION IMAGE "question"   (CAPTION: CAPTION-7B.pth)
// The tokenizer is LLAMA_DIR/../tokenizer.model, as in Meta's layout.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <lav2/lav2.hpp>

int main(int argc, char** argv) {
  if (argc != 7) return std::fprintf(stderr, "usage: %s LLAMA_DIR ADAPTER CLIP CAPTION IMAGE QUESTION\n", argv[0]), 2;
  try {
    using namespace lav2;
    const auto tokenizer = text::Tokenizer::load(std::string(argv[1]) + "/../tokenizer.model");
    // The base LLaMA is opened (memory-mapped) once; the main model and the caption expert are two
    // adapters over it, and share one CLIP tower: only the caption adapter's own tensors are extra.
    const std::shared_ptr<const model::LlamaDir> base = model::open_llama_base(argv[1], tokenizer.vocab_size());
    const model::LoadedModel loaded = model::load_model(base, argv[2]);
    const auto clip = std::make_shared<const vision::ClipVisionModel>(vision::ClipVisionModel::load(argv[3]));
    std::vector<std::unique_ptr<experts::Expert>> readers;
    readers.push_back(experts::CaptionExpert::load(base, clip, argv[4], tokenizer));
#if LAV2_WITH_TESSERACT
    readers.push_back(std::make_unique<experts::OcrExpert>());  // needs tesseract-ocr-eng
#endif

    ThreadPool pool(0);  // all cores
    // The image, decoded once (BGR, as the weights were trained); CLIP runs on it once for all.
    experts::ImageContext image(vision::load_image(argv[5], {}, vision::ChannelOrder::bgr));
    std::vector<experts::ExpertText> context;
    for (const auto& e : readers) context.push_back(e->run(image, pool));
    const auto encoder = vision::VisualEncoder::from_adapter(clip, loaded.adapter.tensors, argv[2]);
    const Tensor<float> query = encoder.project(pool, image.clip_features(pool, *clip));

    // The experts' blocks become the Alpaca `### Input:` (prompt_composer.hpp has the template).
    const std::string prompt = experts::compose_prompt(text::PromptTemplate::alpaca, argv[6], {}, context);
    std::printf("--- prompt ---\n%s\n--- answer ---\n", prompt.c_str());
    auto state = loaded.model.new_state(pool, model::StateOptions{}, query.data(), query.dim(0));
    model::GenerateOptions opt;  // the official defaults: T 0.1, top-p 0.75, 256 tokens
    opt.stop = {"###"};
    model::generate(loaded.model, state, pool, tokenizer, tokenizer.encode(prompt, true, false), opt,
                    [](std::string_view piece) {
                      std::fwrite(piece.data(), 1, piece.size(), stdout);
                      std::fflush(stdout);
                      return true;
                    });
    std::printf("\n");
    return 0;
  } catch (const lav2::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
