// `lav2 info`: the parameter counts of docs/model.md section 9, computed from the weight tables.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.hpp"

namespace {
nlohmann::json info(const std::string& args) {
  const auto r = lav2::test::run_cli("info --json " + args);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}
}  // namespace

TEST_CASE("info: the official 7B BIAS and LORA-BIAS counts") {
  auto j = info("--preset 7b-bias");
  CHECK(j["pretrain_group"] == 61731584);
  CHECK(j["finetune_group"] == 1363968);
  CHECK(j["trainable"] == 63095552);
  CHECK(j["llama_params"] == 6738415616LL);
  CHECK(j["groups"]["adapter_prompts"] == 1269760);
  CHECK(j["groups"]["gates"] == 1024);
  CHECK(j["groups"]["biases"] == 1097728);
  CHECK(j["groups"]["norms"] == 266240);
  CHECK(j["groups"]["visual"] == 7680 + 592128 + 56702976 + 3158016);
  j = info("--preset 7b-lora-bias");
  CHECK(j["trainable"] == 103072544);
  CHECK(j["groups"]["lora"].get<long long>() + j["groups"]["gates"].get<long long>() - 1024 ==
        39976992);  // LoRA + new_gate
}

TEST_CASE("info: chat65b's bias + input scale + norm set is the paper's 14M; output scales give 14.9M") {
  auto j = info("--preset 65b-chat");
  CHECK(j["trainable"] == 13811712);
  j = info("--preset 65b-paper-scale");
  CHECK(j["trainable"] == 14917632);
  j = info("--preset 7b-v1");
  CHECK(j["groups"]["adapter_prompts"] == 30 * 10 * 4096);
}

TEST_CASE("info on a checkpoint counts its tensors; bad flags exit 2") {
  const std::string data = LAV2_TEST_DATA_DIR;
  auto j =
      info("--llama-dir '" + data + "/tiny_llama/tiny' --adapter '" + data + "/tiny_adapter/full_bias/adapter.pth'");
  CHECK(j["groups"]["adapter_prompts"] == 20 * 64);
  CHECK(j["groups"]["gates"] == 3 * 4);
  CHECK(j["groups"]["visual"] > 0);
  CHECK(lav2::test::run_cli("info --preset 13b").code == 2);
  CHECK(lav2::test::run_cli("info").code == 2);
}
