// Every subcommand's usage and input errors (CONTRACT.md): an unknown flag, a missing required
// flag, a bad value and a missing file each exit 2 with one line on stderr that begins
// "lav2: error:" and names the flag or the file. Commands without required flags (info, selfcheck)
// or without file arguments (selfcheck, bench) have no such case; the table says so.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cli/cli_runner.hpp"

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kTiny = " --llama-dir '" + kData + "/tiny_llama/tiny' ";
const std::string kTok = " --tokenizer '" + kData + "/tiny_llama/tokenizer.model' ";
const std::string kGen = "generate" + kTiny + "--prompt hi ";
const std::string kAdapter = " --adapter '" + kData + "/tiny_adapter/full_bias/adapter.pth' ";
const std::string kClipFlag = " --clip '" + kData + "/tiny_clip/ViT-tiny.pt' ";
const std::string kTrain =
    "train" + kTiny + kAdapter + kClipFlag + "--data '" + kData + "/train/cli/data.json' --steps 2 ";
const std::string kOut = " --out /tmp/lav2_test_cli_errors_train ";
const std::string kTrainPhase = kTrain + "--phase finetune ";
const std::string kTrainFt = kTrainPhase + kOut + "--max-words 192 ";

struct Case {
  std::string args;                // after `lav2`
  std::vector<std::string> names;  // each must appear in the message
  std::string launcher = "";       // e.g. an environment
};

const std::vector<Case> kCases = {
    // generate
    {"generate --bogus", {"unknown option '--bogus'", "lav2 generate"}},  // before "--llama-dir is required"
    {kGen + "--bogus=3", {"unknown option '--bogus=3'"}},
    {kGen + "extra", {"unexpected argument 'extra'", "lav2 generate"}},
    {"generate --prompt hi", {"exactly one of --llama-dir", "--model"}},
    {"generate" + kTiny, {"--prompt is required"}},
    {"generate" + kTiny + "--prompt", {"--prompt"}},
    {kGen + "--temperature abc", {"--temperature", "'abc' is not a number"}},
    {kGen + "--temperature nan", {"--temperature", "not a finite number"}},
    {kGen + "--top-p 5", {"--top-p 5 is outside (0, 1]"}},
    {kGen + "--seed -1", {"--seed", "'-1' is not a non-negative decimal integer"}},
    {kGen + "--threads 0x2", {"--threads", "'0x2' is not a decimal integer"}},
    {kGen + "--max-new-tokens -3", {"--max-new-tokens -3"}},
    {kGen + "--max-seq-len 99999999999999", {"--max-seq-len", "too large"}},
    {kGen + "--template chatml", {"--template", "chatml"}},
    {kGen + "--kv-dtype f8", {"--kv-dtype", "f8"}},
    {kGen + "--channel-order grb", {"--channel-order", "grb"}},
    {kGen + "--max-new-tokens 1 --max-new-tokens 2", {"--max-new-tokens"}},
    {"generate --llama-dir /nonexistent/lav2 --prompt hi", {"/nonexistent/lav2"}},
    {kGen + "--tokenizer /nonexistent/tok.model", {"/nonexistent/tok.model"}},
    {kGen + "--adapter /nonexistent/adapter.pth", {"/nonexistent/adapter.pth"}},
    {kGen + kAdapter + "--clip /nonexistent/clip.pt", {"/nonexistent/clip.pt"}},
    {kGen + kAdapter + "--clip '" + kData + "/tiny_clip/ViT-tiny.pt' --image /nonexistent/x.png",
     {"/nonexistent/x.png"}},
    {kGen + "--dump /dev/null/dump", {"--dump", "/dev/null/dump"}},
    // tokenize
    {"tokenize --bogus hi", {"unknown option '--bogus'", "lav2 tokenize"}},
    {"tokenize hi", {"--tokenizer is required"}},
    {"tokenize" + kTok, {"text is required"}},
    {"tokenize" + kTok + "a b", {"unexpected argument 'b'"}},
    {"tokenize --tokenizer '" + kData + "/tiny_llama/tiny/params.json' hi", {"params.json"}},
    {"tokenize --tokenizer /nonexistent/tok.model hi", {"/nonexistent/tok.model"}},
    // info (no required flag: one of --preset / --llama-dir)
    {"info --bogus", {"unknown option '--bogus'", "lav2 info"}},
    {"info", {"--preset", "--llama-dir"}},
    {"info --preset", {"--preset"}},
    {"info --preset 9b", {"--preset '9b'"}},
    {"info --llama-dir /nonexistent/lav2", {"/nonexistent/lav2"}},
    {"info" + kTiny + "--adapter /nonexistent/adapter.pth", {"/nonexistent/adapter.pth"}},
    // selfcheck (no required flag, no file)
    {"selfcheck --bogus", {"unknown option '--bogus'", "lav2 selfcheck"}},
    {"selfcheck extra", {"unexpected argument 'extra'"}},
    {"selfcheck --threads 0", {"--threads", "0"}},
    {"selfcheck --threads x", {"--threads", "'x' is not a decimal integer"}},
    {"selfcheck", {"LAV2_ISA", "'bogus'"}, "env LAV2_ISA=bogus"},
    // bench (no file argument in this build)
    {"bench --bogus", {"unknown option '--bogus'", "lav2 bench"}},
    {"bench", {"exactly one of --random-model", "--model"}},
    {"bench --random-model 9b", {"--random-model '9b'"}},
    {"bench --random-model tiny --dtype q9", {"--dtype 'q9'"}},
    {"bench --random-model tiny --threads -1", {"--threads", "-1"}},
    {"bench --random-model tiny --layers x", {"--layers", "'x'"}},
    {"bench --random-model tiny --prompt-tokens 0", {"--prompt-tokens"}},
    // train
    {"train --bogus", {"unknown option '--bogus'", "lav2 train"}},
    {kTrain + kOut, {"--phase is required"}},
    {kTrain + kOut + "--phase both", {"--phase", "both"}},
    {"train" + kTiny + kAdapter + "--phase finetune --data x.json --out /tmp/x", {"--steps is required"}},
    {kTrainFt + "--steps 0", {"--steps", "0"}},
    {kTrainFt + "--warmup-steps 2", {"--warmup-steps 2 must be below --steps 2"}},
    {kTrainFt + "--lr -1", {"--lr -1 is negative"}},
    {kTrainFt + "--lr nan", {"--lr", "not a finite number"}},
    {kTrainFt + "--batch 0", {"--batch", "0"}},
    {kTrainFt + "--accum x", {"--accum", "'x'"}},
    {kTrainPhase + kOut + "--max-words 1", {"--max-words", "1"}},
    {kTrainPhase + kOut + "--max-words 8", {"data.json", "record 0", "fills --max-words 8"}},
    {kTrainFt + "--joint-ratio 2", {"--joint-ratio is for --phase joint"}},
    {kTrain + kOut + "--phase joint", {"--phase joint needs --data", "--captions"}},
    {kTrainFt + "--data /nonexistent/d.json", {"--data '/nonexistent/d.json'"}},
    {kTrainFt + "--captions /nonexistent/c.tsv", {"--captions '/nonexistent/c.tsv'"}},
    {kTrainPhase + "--out /dev/null/out", {"--out", "/dev/null/out"}},
    {kTrainFt + "--dump-grads /dev/null/g", {"--dump-grads", "/dev/null/g"}},
    {"train --llama-dir /nonexistent/lav2" + kAdapter + "--phase finetune --data x --steps 2 --out /tmp/x",
     {"/nonexistent/lav2"}},
    {"train" + kTiny + "--adapter /nonexistent/a.pth --phase finetune --data '" + kData +
         "/train/cli/data.json' --steps 2 --out /tmp/lav2_test_cli_errors_train2",
     {"/nonexistent/a.pth"}},
    {"train" + kTiny + kAdapter + "--phase finetune --data '" + kData +
         "/train/cli/data.json' --steps 2 --out /tmp/lav2_test_cli_errors_train3",
     {"--adapter needs --clip"}},
    // the top level
    {"--bogus generate", {"unknown option '--bogus' for 'lav2'"}},
    {"genrate",
     {"unknown command 'genrate'", "bench, chat, convert, generate, info, selfcheck, serve, tokenize, train"}},
};

}  // namespace

TEST_CASE("cli: every subcommand's usage and input errors exit 2 with one 'lav2: error:' line naming the cause") {
  for (const Case& c : kCases) {
    CAPTURE(c.args);
    const lav2::test::CliResult r = lav2::test::run_cli(c.args, c.launcher);
    INFO("output: ", r.out);
    CHECK(r.code == 2);
    CHECK(r.out.rfind("lav2: error: ", 0) == 0);  // nothing before it, not even text
    CHECK(r.out.find('\n') == r.out.size() - 1);  // one line
    for (const std::string& n : c.names) CHECK(r.out.find(n) != std::string::npos);
  }
}
