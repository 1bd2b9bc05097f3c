// The examples that end `lav2 <command> --help` (and `lav2 --help`): copy-paste command lines.
// main.cpp sets them as each subcommand's footer; a command without an entry has none, which
// tests/cli/test_help_cli.cpp reports.
#pragma once

#include <string>

namespace lav2::cli {

/// \brief The "Examples:" footer of `command` ("" for the top level), or "" if it has none.
inline std::string help_examples(const std::string& command) {
  const std::string m = " --llama-dir llama/7B --adapter BIAS-7B.pth --clip ViT-L-14.pt";
  if (command.empty())
    return "\nExamples:\n"
           "  lav2 generate" +
           m +
           " --image cat.jpg --prompt 'What is in the picture?'\n"
           "  lav2 chat" +
           m +
           " --image cat.jpg\n"
           "  lav2 serve" +
           m +
           " --port 8080\n"
           "  lav2 <command> --help   (each command lists its flags and examples)\n";
  if (command == "generate")
    return "\nExamples:\n"
           "  lav2 generate" +
           m +
           " --image cat.jpg --prompt 'Describe the image.'\n"
           "  lav2 generate --llama-dir llama/7B --prompt 'Tell me about alpacas.' --temperature 0 --json\n"
           "  lav2 generate --model llama-7b.Q4_K_M.gguf --mm lav2-bias.gguf --image cat.jpg --prompt 'Describe it.' "
           "--verbose\n"
           "  lav2 generate --llama-dir llama/7B --prompt hi --max-new-tokens 8 --dump out/\n";
  if (command == "chat")
    return "\nExamples:\n"
           "  lav2 chat" +
           m +
           " --image cat.jpg\n"
           "  > What is in the picture?\n"
           "  > /image dog.png        (a new image; the history is kept and read again)\n"
           "  > /reset                (forget the history)\n"
           "  > /quit                 (or end of input; Ctrl-C stops the current answer only)\n"
           "  printf 'Hi\\nAnd then?\\n' | lav2 chat --llama-dir llama/7B --temperature 0 --verbose\n";
  if (command == "serve")
    return "\nExamples:\n"
           "  lav2 serve" +
           m +
           " --port 8080\n"
           "  lav2 serve --model llama-7b.gguf --mm lav2-bias.gguf --port 8080 --api-key \"$KEY\" --parallel 2\n"
           "  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
           "    -d '{\"model\":\"lav2\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":32}'\n"
           "  (docs/serve.md: the endpoints, images, streaming, limits and errors)\n";
  if (command == "tokenize")
    return "\nExamples:\n"
           "  lav2 tokenize --tokenizer llama/tokenizer.model 'Hello world'\n"
           "  lav2 tokenize --tokenizer llama/tokenizer.model --bos -- '-leading dash'\n";
  if (command == "info")
    return "\nExamples:\n"
           "  lav2 info --preset 7b-bias\n"
           "  lav2 info --llama-dir llama/7B --adapter BIAS-7B.pth --json\n";
  if (command == "selfcheck")
    return "\nExamples:\n"
           "  lav2 selfcheck\n"
           "  LAV2_ISA=avx2 lav2 selfcheck --threads 4\n";
  if (command == "bench")
    return "\nExamples:\n"
           "  lav2 bench --random-model 7b --layers 2 --dtype q4_0 --threads 8 --prompt-tokens 64 --gen-tokens 16 "
           "--json\n"
           "  lav2 bench --model llama-7b.Q4_K_M.gguf --threads 8 --prompt-tokens 128 --gen-tokens 32\n";
  if (command == "convert")
    return "\nExamples:\n"
           "  lav2 convert --llama-dir llama/7B --out-base llama-7b-f16.gguf\n"
           "  lav2 convert --llama-dir llama/7B --dtype q4_0 --out-base llama-7b-q4_0.gguf"
           " --adapter BIAS-7B.pth --clip ViT-L-14.pt --out-mm lav2-bias.gguf\n";
  return "";
}

}  // namespace lav2::cli
