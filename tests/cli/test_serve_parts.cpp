// The parts of `lav2 serve` on their own: the OpenAI request parser (every refusal names its
// field), base64 and data: URLs, local images only inside --allow-local-images (../ and symlinks),
// and the admission of --parallel / --queue (first come, first served; 503 beyond the queue).
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "serve/admission.hpp"
#include "serve/image_source.hpp"
#include "serve/openai_request.hpp"

namespace fs = std::filesystem;
using lav2::cli::serve::ApiError;
using lav2::cli::serve::parse_chat_request;

namespace {

// The status and param of the ApiError that parsing `body` throws (0 and "" if none).
std::pair<int, std::string> refusal(const std::string& body) {
  try {
    (void)parse_chat_request(body);
  } catch (const ApiError& e) {
    return {e.status, e.param};
  }
  return {0, ""};
}

const std::string kUserHi = R"("messages":[{"role":"user","content":"Hi"}])";

}  // namespace

TEST_CASE("serve: a chat request's fields, system text and history") {
  const auto r = parse_chat_request(R"({"model":"lav2","messages":[
      {"role":"system","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"What is it?"},
                                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
      {"role":"assistant","content":"A cat."},
      {"role":"developer","content":"Answer in English."},
      {"role":"user","content":"Its colour?"},{"role":"user","content":"And its name?"}],
      "max_tokens":7,"temperature":0,"top_p":0.5,"seed":42,"stop":["###","\n\n"],"stream":true,
      "stream_options":{"include_usage":true},"n":1,"presence_penalty":0})");
  CHECK(r.model == "lav2");
  CHECK(r.system == "Be brief.\nAnswer in English.");
  REQUIRE(r.history.size() == 1);
  CHECK(r.history[0].instruction == "What is it?");
  CHECK(r.history[0].response == "A cat.");
  CHECK(r.instruction == "Its colour?\nAnd its name?");
  REQUIRE(r.image);
  CHECK(r.image->url == "data:image/png;base64,AAAA");
  CHECK(r.image->param == "messages[1].content[1].image_url.url");
  CHECK(*r.max_tokens == 7);
  CHECK(*r.temperature == 0.0f);
  CHECK(*r.top_p == 0.5f);
  CHECK(*r.seed == 42);
  CHECK(r.stop == std::vector<std::string>{"###", "\n\n"});
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.prompt() == lav2::text::format_alpaca_conversation({{"Be brief.\nAnswer in English.\nWhat is it?", "A cat."}},
                                                             "Its colour?\nAnd its name?"));
  // One user message: the official single-turn prompt, the system text on the line before.
  const auto one = parse_chat_request(
      R"({"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}],"stop":"x"})");
  CHECK(one.prompt() == lav2::text::format_prompt(lav2::text::PromptTemplate::alpaca, "S\nHi"));
  CHECK(one.stop == std::vector<std::string>{"x"});
  CHECK(!one.max_tokens);
  CHECK(!one.stream);
  // null is "not given"
  const auto nulls = parse_chat_request(R"({"model":"m",)" + kUserHi +
                                        R"(,"max_tokens":null,"temperature":null,"stop":null,"stream":null})");
  CHECK(!nulls.max_tokens);
  CHECK(!nulls.temperature);
}

TEST_CASE("serve: malformed requests and wrong types are 400s naming the field") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", ""},
      {"[]", "body"},
      {R"({"messages":[{"role":"user","content":"Hi"}]})", "model"},
      {R"({"model":5,)" + kUserHi + "}", "model"},
      {R"({"model":"m"})", "messages"},
      {R"({"model":"m","messages":[]})", "messages"},
      {R"({"model":"m","messages":{}})", "messages"},
      {R"({"model":"m","messages":[5]})", "messages[0]"},
      {R"({"model":"m","messages":[{"content":"Hi"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"tool","content":"Hi"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"audio"}]}]})", "messages[0].content[0].type"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":3}]}]})",
       "messages[0].content[0].text"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":7}}]}]})",
       "messages[0].content[0].image_url.url"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"a"}},)"
       R"({"type":"image_url","image_url":{"url":"b"}}]}]})",
       "messages[0].content[1].image_url.url"},
      {R"({"model":"m","messages":[{"role":"assistant","content":"Hi"},{"role":"user","content":"x"}]})",
       "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"x"}]})", "messages"},
      {R"({"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[)"
       R"({"type":"image_url","image_url":{"url":"a"}}]},{"role":"user","content":"x"}]})",
       "messages[1].content[0]"},
      {R"({"model":"m",)" + kUserHi + R"(,"max_tokens":"8"})", "max_tokens"},
      {R"({"model":"m",)" + kUserHi + R"(,"max_tokens":0})", "max_tokens"},
      {R"({"model":"m",)" + kUserHi + R"(,"max_tokens":2.5})", "max_tokens"},
      {R"({"model":"m",)" + kUserHi + R"(,"temperature":3})", "temperature"},
      {R"({"model":"m",)" + kUserHi + R"(,"temperature":"hot"})", "temperature"},
      {R"({"model":"m",)" + kUserHi + R"(,"top_p":0})", "top_p"},
      {R"({"model":"m",)" + kUserHi + R"(,"seed":-1})", "seed"},
      {R"({"model":"m",)" + kUserHi + R"(,"stop":[1]})", "stop[0]"},
      {R"({"model":"m",)" + kUserHi + R"(,"stop":["a","b","c","d","e"]})", "stop"},
      {R"({"model":"m",)" + kUserHi + R"(,"stop":""})", "stop"},
      {R"({"model":"m",)" + kUserHi + R"(,"stream":"yes"})", "stream"},
      {R"({"model":"m",)" + kUserHi + R"(,"stream_options":{"include_usage":true}})", "stream_options"},
      {R"({"model":"m",)" + kUserHi + R"(,"n":2})", "n"},
  };
  for (const auto& [body, param] : cases) {
    CAPTURE(body);
    const auto [status, got] = refusal(body);
    CHECK(status == 400);
    CHECK(got == param);
  }
  // Deep nesting is refused by the JSON reader's depth limit, not by a stack overflow.
  const auto [status, param] = refusal(R"({"model":"m","x":)" + std::string(100000, '[') + "}");
  CHECK(status == 400);
  lav2::cli::serve::RequestLimits small;
  small.max_bytes = 10;
  try {
    (void)parse_chat_request(R"({"model":"m",)" + kUserHi + "}", small);
    FAIL("no error");
  } catch (const ApiError& e) {
    CHECK(e.status == 413);
  }
  // The error object is OpenAI's, with the field.
  const nlohmann::json j = nlohmann::json::parse(lav2::cli::serve::error_json(ApiError(400, "bad", "stop[0]")));
  CHECK(j["error"]["message"] == "bad");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(j["error"]["param"] == "stop[0]");
  CHECK(j["error"]["code"].is_null());
}

TEST_CASE("serve: base64 and data: URLs, size-capped") {
  std::vector<std::uint8_t> out;
  using lav2::cli::serve::decode_base64;
  CHECK(decode_base64("aGVsbG8=", 100, out));
  CHECK(std::string(out.begin(), out.end()) == "hello");
  CHECK(decode_base64("aGVsbG8", 100, out));  // padding optional
  CHECK(std::string(out.begin(), out.end()) == "hello");
  CHECK(decode_base64("", 100, out));
  CHECK(out.empty());
  CHECK(!decode_base64("aGVsbG8=", 4, out));  // over the cap
  CHECK(!decode_base64("aGV sbG8=", 100, out));
  CHECK(!decode_base64("a", 100, out));
  CHECK(!decode_base64("aGVsbG9=", 100, out));  // non-zero unused bits
  CHECK(!decode_base64("a=Vs", 100, out));
  lav2::cli::serve::ImageSourcePolicy policy;
  policy.max_image_bytes = 4;
  auto status_of = [&](const std::string& url) {
    try {
      (void)lav2::cli::serve::read_image_source(url, "p", policy);
    } catch (const ApiError& e) {
      CHECK(e.param == "p");
      return e.status;
    }
    return 0;
  };
  CHECK(lav2::cli::serve::read_image_source("data:image/png;base64,AAECAw==", "p", policy) ==
        std::vector<std::uint8_t>{0, 1, 2, 3});
  CHECK(status_of("data:image/png;base64,AAECAwQ=") == 413);  // 5 bytes > 4
  CHECK(status_of("data:image/png,AAAA") == 400);             // not base64
  CHECK(status_of("data:text/plain;base64,AAAA") == 400);
  CHECK(status_of("data:image/png;base64,A!AA") == 400);
  CHECK(status_of("https://example.com/cat.png") == 400);  // nothing is fetched
  CHECK(status_of("/etc/passwd") == 400);                  // no --allow-local-images
}

TEST_CASE("serve: local images only inside --allow-local-images, checked on the file opened") {
  const fs::path root = fs::temp_directory_path() / ("lav2_allow_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "allowed" / "sub");
  std::ofstream(root / "allowed" / "sub" / "in.png") << "inside";
  std::ofstream(root / "outside.png") << "outside";
  fs::create_symlink(root / "outside.png", root / "allowed" / "link_out.png");
  fs::create_symlink(root / "allowed" / "sub" / "in.png", root / "allowed" / "link_in.png");
  fs::create_symlink(root, root / "allowed" / "up");
  lav2::cli::serve::ImageSourcePolicy policy;
  policy.allow_dir = (root / "allowed").string();
  auto read = [&](const std::string& url) {
    const auto b = lav2::cli::serve::read_image_source(url, "u", policy);
    return std::string(b.begin(), b.end());
  };
  auto refused = [&](const std::string& url) {
    try {
      (void)read(url);
    } catch (const ApiError& e) {
      return e.status == 400 && e.param == "u";
    }
    return false;
  };
  CHECK(read("sub/in.png") == "inside");
  CHECK(read("file://" + (root / "allowed" / "sub" / "in.png").string()) == "inside");
  CHECK(read((root / "allowed" / "sub" / ".." / "sub" / "in.png").string()) == "inside");
  CHECK(read("link_in.png") == "inside");  // a symlink that stays inside
  CHECK(refused("../outside.png"));
  CHECK(refused("sub/../../outside.png"));
  CHECK(refused((root / "outside.png").string()));
  CHECK(refused("file://" + (root / "outside.png").string()));
  CHECK(refused("link_out.png"));    // a symlink that leads out
  CHECK(refused("up/outside.png"));  // a directory symlink that leads out
  CHECK(refused("sub"));             // not a regular file
  CHECK(refused("missing.png"));
  CHECK(refused("/etc/passwd"));
  // A directory whose name is a prefix of the allowed one's is not inside it.
  fs::create_directories(root / "allowed2");
  std::ofstream(root / "allowed2" / "x.png") << "x";
  CHECK(refused((root / "allowed2" / "x.png").string()));
  CHECK(refused("../allowed2/x.png"));
  fs::remove_all(root);
}

TEST_CASE("serve: admission runs --parallel at once, queues --queue in order, refuses the rest") {
  lav2::cli::serve::Admission adm(2, 2);
  auto a = adm.acquire();
  auto b = adm.acquire();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->index() != b->index());
  CHECK(adm.stats().running == 2);
  std::vector<int> order;
  std::mutex order_mutex;
  auto waiter = [&](int id) {
    auto s = adm.acquire();
    REQUIRE(s);
    std::lock_guard<std::mutex> lock(order_mutex);
    order.push_back(id);
  };
  auto wait_for_waiting = [&](int n) {
    while (adm.stats().waiting != n) std::this_thread::yield();
  };
  std::thread c(waiter, 1);
  wait_for_waiting(1);
  std::thread d(waiter, 2);
  wait_for_waiting(2);
  CHECK(!adm.acquire());  // 2 running, 2 waiting: refused at once
  CHECK(adm.stats().refused == 1);
  a.reset();  // frees a slot: the first in line (1) goes first, then 2 (each frees its slot on return)
  c.join();
  d.join();
  CHECK(order == std::vector<int>{1, 2});
  b.reset();
  CHECK(adm.stats().running == 0);
  CHECK(adm.stats().waiting == 0);
  lav2::cli::serve::Admission none(1, 0);
  auto only = none.acquire();
  CHECK(only);
  CHECK(!none.acquire());
}
