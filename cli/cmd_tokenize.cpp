// `lav2 tokenize --tokenizer FILE [--bos] [--eos] TEXT`: prints the ids as a JSON array.
// FILE is a SentencePiece tokenizer.model or a Hugging Face tokenizer.json (told apart by content).
// A TEXT that starts with '-' goes after `--`.
#include <cstdio>
#include <string>

#include <lav2/text/tokenizer.hpp>

#include "command.hpp"

namespace {

struct TokenizeOptions {
  std::string tokenizer, text;
  bool bos = false, eos = false;
};

const lav2::cli::CommandRegistrar kRegisterTokenize{
    "tokenize", "Print the token ids of TEXT as a JSON array", [](lav2::cli::Options& sub) -> lav2::cli::RunFn {
      auto opt = std::make_shared<TokenizeOptions>();
      sub.add("--tokenizer", opt->tokenizer, "tokenizer.model or tokenizer.json").required();
      sub.flag("--bos", opt->bos, "prepend the BOS id");
      sub.flag("--eos", opt->eos, "append the EOS id");
      sub.add("text", opt->text, "the text (put -- before a text that starts with '-')").required();
      return [opt]() -> int {
        const lav2::text::Tokenizer tok = lav2::text::Tokenizer::load(opt->tokenizer);
        const std::vector<int> ids = tok.encode(opt->text, opt->bos, opt->eos);
        std::string out = "[";
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (i) out += ",";
          out += std::to_string(ids[i]);
        }
        out += "]\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        return 0;
      };
    }};

}  // namespace
