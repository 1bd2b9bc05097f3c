// `lav2 serve`: an OpenAI-compatible HTTP server over one loaded model (docs/serve.md).
//   lav2 serve <model flags of generate> [--host 127.0.0.1] [--port 8080] [--api-key KEY]
//              [--max-request-bytes N] [--max-image-bytes N] [--parallel N] [--queue N]
//              [--allow-local-images DIR] [--served-model-name NAME] [sampling flags: the defaults]
//   POST /v1/chat/completions (stream or not)   GET /v1/models   GET /health   GET / (a chat page)
//
// One immutable model; each request gets its own state (model/run_state.hpp) and runs on the
// thread pool of the slot it holds (serve/admission.hpp): --parallel requests decode at once, up to
// --queue more wait in order, the rest get 503. Everything a request can get wrong is answered
// with a 4xx and OpenAI's error object naming the field (serve/openai_request.hpp), before it
// takes a slot; nothing a client sends stops the server. cpp-httplib (Debian's libcpp-httplib-dev)
// speaks HTTP.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <lav2/core/error.hpp>
#include <lav2/core/thread_pool.hpp>
#include <lav2/model/generate.hpp>
#include <lav2/vision/image.hpp>

#include "command.hpp"
#include "model_session.hpp"
#include "process_stats.hpp"
#include "serve/admission.hpp"
#include "serve/api_error.hpp"
#include "serve/chat_page.hpp"
#include "serve/image_source.hpp"
#include "serve/openai_request.hpp"

namespace {

using namespace lav2;
using cli::serve::ApiError;
using json = nlohmann::json;

constexpr int kSendBufferBytes = 64 << 10;
constexpr int kWriteTimeoutSeconds = 30;

struct ServeArgs {
  cli::ModelFlags model;
  cli::SamplingFlags sampling;
  std::string host = "127.0.0.1", api_key, allow_local_images, served_name = "lav2";
  int port = 8080, parallel = 1, queue = 8;
  std::uint64_t max_request_bytes = 20ull << 20, max_image_bytes = 16ull << 20;
};

/// Compares a presented token with the key in time that depends only on the token's length (not
/// on where they differ, nor on the key's length).
bool equal_constant_time(const std::string& given, const std::string& key) {
  unsigned char diff = given.size() != key.size() ? 1 : 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ (key.empty() ? 0 : key[i % key.size()]));
  return diff == 0;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(cli::serve::error_json(e), "application/json");
}

// OpenAI's finish_reason for generate()'s.
const char* finish_reason(const std::string& r) { return r == "length" || r == "max_seq_len" ? "length" : "stop"; }

// A request checked and tokenized, ready to run once it holds a slot.
struct Prepared {
  cli::serve::ChatRequest req;
  std::vector<int> ids;
  model::GenerateOptions opt;
  std::optional<Tensor<float>> image;  // preprocessed; none: the all-zero image
  std::string id;
  std::int64_t created = 0;
  std::uint64_t number = 0;
};

class Server {
 public:
  Server(const ServeArgs& a, const cli::ModelSession& s) : a_(a), s_(s), admission_(a.parallel, a.queue) {
    const int hw = std::max(1, int(std::thread::hardware_concurrency()));
    const int per_slot = a.model.threads > 0 ? a.model.threads : std::max(1, hw / a.parallel);
    for (int i = 0; i < a.parallel; ++i) pools_.push_back(std::make_unique<ThreadPool>(per_slot));
    if (s.takes_visual()) zero_query_ = s.visual_query(*pools_[0], nullptr);  // the text-only path, once
    policy_.allow_dir = a.allow_local_images;
    policy_.max_image_bytes = a.max_image_bytes;
  }

  int run() {
    httplib::Server svr;
    // Threads for the connections: the decoding slots, the waiting queue, and a few more so that
    // /health and refusals are answered while every slot is busy.
    const std::size_t threads = std::size_t(a_.parallel + a_.queue + 4);
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    svr.set_payload_max_length(std::size_t(a_.max_request_bytes));
    // A client that stops reading a stream is noticed after at most kSendBufferBytes (the kernel
    // doubles it) and kWriteTimeoutSeconds: its write fails, generation stops, its slot is freed.
    // The accepted sockets inherit the listening socket's send buffer size.
    svr.set_write_timeout(kWriteTimeoutSeconds);
    svr.set_socket_options([](socket_t sock) {
      httplib::default_socket_options(sock);
      const int bytes = kSendBufferBytes;
      setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    });
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (a_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
      const std::string auth = req.get_header_value("Authorization");
      const std::string given = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
      if (equal_constant_time(given, a_.api_key)) return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, ApiError(401, "missing or wrong API key (Authorization: Bearer KEY)", "", "invalid_api_key"));
      res.set_header("WWW-Authenticate", "Bearer");
      return httplib::Server::HandlerResponse::Handled;
    });
    svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      const std::string what = res.status == 404   ? "no such endpoint: " + req.method + " " + req.path
                               : res.status == 413 ? "the request is larger than --max-request-bytes"
                                                   : "bad request";
      send_error(res, ApiError(res.status, what, "", res.status == 413 ? "request_too_large" : ""));
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what += std::string(": ") + e.what();
      } catch (...) {
      }
      send_error(res, ApiError(500, what, "", "", "server_error"));
    });
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const auto st = admission_.stats();
      res.set_content(dump({{"status", "ok"},
                            {"model", a_.served_name},
                            {"parallel", st.parallel},
                            {"queue", st.queue},
                            {"running", st.running},
                            {"waiting", st.waiting},
                            {"refused", st.refused}}),
                      "application/json");
    });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          dump({{"object", "list"},
                {"data",
                 json::array(
                     {{{"id", a_.served_name}, {"object", "model"}, {"created", started_}, {"owned_by", "lav2"}}})}}),
          "application/json");
    });
    svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(cli::serve::kChatPage, "text/html; charset=utf-8");
    });
    svr.Post("/v1/chat/completions",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               chat_completions(req, res, reader);
             });

    const bool bound =
        a_.port == 0 ? (port_ = svr.bind_to_any_port(a_.host)) > 0 : svr.bind_to_port(a_.host, port_ = a_.port);
    if (!bound) LAV2_THROW(input_error, "--host ", a_.host, " --port ", a_.port, ": cannot listen there");
    std::printf("lav2 serve: listening on http://%s:%d (model '%s', %d decoding at once, %d waiting at most)\n",
                a_.host.c_str(), port_, a_.served_name.c_str(), a_.parallel, a_.queue);
    std::fflush(stdout);
    // SIGINT / SIGTERM stop the server cleanly: every thread has them blocked, one waits for them.
    std::thread stopper([&svr] {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      sigaddset(&set, SIGUSR1);
      int sig = 0;
      sigwait(&set, &sig);
      svr.stop();
    });
    svr.listen_after_bind();
    pthread_kill(stopper.native_handle(), SIGUSR1);  // if listening ended otherwise
    stopper.join();
    std::fprintf(stderr, "lav2 serve: stopped\n");
    return 0;
  }

 private:
  void chat_completions(const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
    const std::uint64_t number = ++requests_;
    std::string body;
    bool too_large = false;
    // httplib refuses a Content-Length over --max-request-bytes itself (status 413, reader false);
    // a chunked body is counted here, and read to its end so that the 413 reaches the client.
    const bool read = reader([&](const char* data, std::size_t n) {
      if (body.size() + n > a_.max_request_bytes) too_large = true;
      if (!too_large) body.append(data, n);
      return true;
    });
    try {
      if (!read && res.status != 413) throw ApiError(400, "the request body could not be read", "", "bad_body");
      if (too_large || !read)
        throw ApiError(413, "the request is larger than --max-request-bytes " + std::to_string(a_.max_request_bytes),
                       "", "request_too_large");
      auto p = std::make_shared<Prepared>(prepare(body));
      p->number = number;
      std::optional<cli::serve::Admission::Slot> slot = admission_.acquire();
      if (!slot)
        throw ApiError(503,
                       "the server is busy: " + std::to_string(a_.parallel) + " requests decoding and " +
                           std::to_string(a_.queue) + " waiting (--parallel, --queue); retry later",
                       "", "server_busy", "server_error");
      if (p->req.stream) return stream(res, p, std::make_shared<cli::serve::Admission::Slot>(std::move(*slot)));
      cli::StageTimes t;
      const model::GenerateResult r = generate(*p, slot->index(), {}, t);
      const std::int64_t completion = completion_tokens(r);
      json out = chunk_base(*p, "chat.completion");
      out["choices"] = json::array({{{"index", 0},
                                     {"message", {{"role", "assistant"}, {"content", r.text}}},
                                     {"finish_reason", finish_reason(r.finish_reason)},
                                     {"logprobs", nullptr}}});
      out["usage"] = usage(*p, completion);
      res.set_content(dump(out), "application/json");
      log(*p, r, t, slot->index(), "");
    } catch (const ApiError& e) {
      send_error(res, e);
      std::fprintf(stderr, "lav2 serve: #%llu %d %s\n", static_cast<unsigned long long>(number), e.status, e.what());
    }
  }

  // Checks the body, reads and preprocesses the image, tokenizes the prompt: every 4xx before a slot.
  Prepared prepare(const std::string& body) const {
    cli::serve::RequestLimits lim;
    lim.max_bytes = a_.max_request_bytes;
    Prepared p;
    p.req = cli::serve::parse_chat_request(body, lim);
    if (p.req.model != a_.served_name)
      throw ApiError(404,
                     "model '" + p.req.model + "' is not served here; GET /v1/models lists '" + a_.served_name + "'",
                     "model", "model_not_found");
    if (p.req.image) {
      const cli::serve::ImagePart& part = *p.req.image;
      if (!s_.takes_visual())
        cli::serve::bad_field(part.param, "this model (" + s_.model().spec().describe() + ") takes no image");
      const std::vector<std::uint8_t> bytes = cli::serve::read_image_source(part.url, part.param, policy_);
      try {
        p.image = s_.preprocess(vision::decode_image(bytes.data(), bytes.size(), "the image", {}, s_.order()));
      } catch (const lav2::error& e) {
        cli::serve::bad_field(part.param, std::string("not a usable PNG/JPEG image: ") + e.what());
      }
    }
    try {
      p.ids = s_.tok().encode(p.req.prompt(), /*bos=*/true, /*eos=*/false);
    } catch (const lav2::error& e) {
      cli::serve::bad_field("messages", e.what());
    }
    const std::int64_t max_seq = a_.model.max_seq_len;
    if (std::int64_t(p.ids.size()) >= max_seq)
      throw ApiError(400,
                     "messages: the prompt has " + std::to_string(p.ids.size()) +
                         " tokens, which leaves no room to answer under the context length " + std::to_string(max_seq) +
                         " (--max-seq-len)",
                     "messages", "context_length_exceeded");
    p.opt = a_.sampling;
    if (p.req.max_tokens) p.opt.max_new_tokens = int(std::min<std::int64_t>(*p.req.max_tokens, max_seq));
    if (p.req.temperature) p.opt.temperature = *p.req.temperature;
    if (p.req.top_p) p.opt.top_p = *p.req.top_p;
    if (p.req.seed) p.opt.seed = *p.req.seed;
    if (!p.req.stop.empty()) p.opt.stop = p.req.stop;
    p.created = std::int64_t(std::time(nullptr));
    p.id = "chatcmpl-lav2-" + std::to_string(started_) + "-" + std::to_string(requests_.load());
    return p;
  }

  // Runs a prepared request on slot `slot`'s pool: its own state over the shared model.
  model::GenerateResult generate(const Prepared& p, int slot, const model::TextCallback& on_text,
                                 cli::StageTimes& t) const {
    ThreadPool& pool = *pools_[std::size_t(slot)];
    std::optional<Tensor<float>> query;
    if (p.image) {
      cli::ProcessTimer timer;
      query = s_.visual_query(pool, &*p.image);
      t.image_encode_s = timer.seconds();
    }
    const Tensor<float>* q = query ? &*query : zero_query_ ? &*zero_query_ : nullptr;
    model::RunState state = s_.new_state(pool, q);
    model::GenerateResult r = model::generate(s_.model(), state, pool, s_.tok(), p.ids, p.opt, on_text);
    t.prefill_tokens = r.prompt_tokens, t.prefill_s = r.prefill_s;
    t.decode_tokens = r.decode_steps, t.decode_s = r.decode_s;
    return r;
  }

  // Server-sent events: a role chunk, a chunk per piece of text, the finish chunk, the usage chunk
  // (stream_options.include_usage), then `data: [DONE]`. A failed write (the client has gone)
  // stops generation; the slot is freed with the response.
  void stream(httplib::Response& res, const std::shared_ptr<Prepared>& p,
              const std::shared_ptr<cli::serve::Admission::Slot>& slot) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, p, slot](std::size_t, httplib::DataSink& sink) {
      auto event = [&](const json& j) {
        const std::string s = "data: " + dump(j) + "\n\n";
        return sink.write(s.data(), s.size());
      };
      auto delta = [&](json d, const json& finish) {
        json c = chunk_base(*p, "chat.completion.chunk");
        c["choices"] =
            json::array({{{"index", 0}, {"delta", std::move(d)}, {"finish_reason", finish}, {"logprobs", nullptr}}});
        return event(c);
      };
      bool open = delta({{"role", "assistant"}, {"content", ""}}, nullptr);
      cli::StageTimes t;
      model::GenerateResult r;
      try {
        r = generate(
            *p, slot->index(),
            [&](std::string_view piece) {
              return open = open && delta({{"content", std::string(piece)}}, nullptr);
            },
            t);
      } catch (const lav2::error& e) {
        open = open && event(json::parse(cli::serve::error_json(ApiError(500, e.what(), "", "", "server_error"))));
      }
      if (open) open = delta(json::object(), finish_reason(r.finish_reason));
      if (open && p->req.include_usage) {
        json c = chunk_base(*p, "chat.completion.chunk");
        c["choices"] = json::array();
        c["usage"] = usage(*p, completion_tokens(r));
        open = event(c);
      }
      if (open) open = sink.write("data: [DONE]\n\n", 14);
      if (open) sink.done();
      log(*p, r, t, slot->index(), open ? " stream" : " stream: the client went away, stopped");
      return open;
    });
  }

  json chunk_base(const Prepared& p, const char* object) const {
    return {{"id", p.id}, {"object", object}, {"created", p.created}, {"model", a_.served_name}};
  }
  // Tokens generated, without a final EOS.
  static std::int64_t completion_tokens(const model::GenerateResult& r) {
    return std::int64_t(r.generated_ids.size()) - (r.finish_reason == "eos" ? 1 : 0);
  }
  static json usage(const Prepared& p, std::int64_t completion) {
    const std::int64_t prompt = std::int64_t(p.ids.size());
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }

  void log(const Prepared& p, const model::GenerateResult& r, const cli::StageTimes& t, int slot,
           const std::string& how) const {
    std::fprintf(stderr, "lav2 serve: #%llu 200%s, slot %d, prompt %zu tokens, %lld generated (%s)\n",
                 static_cast<unsigned long long>(p.number), how.c_str(), slot, p.ids.size(),
                 static_cast<long long>(completion_tokens(r)), r.finish_reason.c_str());
    if (a_.model.verbose) cli::print_stage_times(t, "lav2 serve: #" + std::to_string(p.number) + ": ");
  }

  const ServeArgs& a_;
  const cli::ModelSession& s_;
  cli::serve::Admission admission_;
  std::vector<std::unique_ptr<ThreadPool>> pools_;
  std::optional<Tensor<float>> zero_query_;
  cli::serve::ImageSourcePolicy policy_;
  std::atomic<std::uint64_t> requests_{0};
  std::int64_t started_ = std::int64_t(std::time(nullptr));
  int port_ = 0;
};

int run_serve(ServeArgs a) {
  (void)cli::generate_options(a.sampling);  // flag errors before loading
  // The key from the environment keeps it out of the process list (ps shows the arguments).
  if (const char* env = std::getenv("LAV2_API_KEY"); a.api_key.empty() && env) a.api_key = env;
  if (a.max_request_bytes < 1024)
    LAV2_THROW(input_error, "--max-request-bytes ", a.max_request_bytes, " is below 1024");
  if (!a.allow_local_images.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(a.allow_local_images, ec))
      LAV2_THROW(input_error, "--allow-local-images '", a.allow_local_images, "' is not a directory");
  }
  // Block the stop signals before any thread starts, so that only the stopper receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that goes away is a failed write, not the end of the server
  const cli::ModelSession session = cli::open_model_session(a.model);
  Server server(a, session);
  return server.run();
}

const lav2::cli::CommandRegistrar kRegister{
    "serve", "Serve an OpenAI-compatible chat API (and a chat page) over HTTP", [](lav2::cli::Options& sub) {
      auto a = std::make_shared<ServeArgs>();
      cli::add_model_flags(sub, a->model);
      cli::add_sampling_flags(sub, a->sampling);
      sub.add("--host", a->host, "address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)");
      sub.add("--port", a->port, "TCP port (8080; 0: a free one, printed)").range(0, 65535);
      sub.add("--api-key", a->api_key,
              "require 'Authorization: Bearer KEY' on /v1/ (constant-time compare; default: $LAV2_API_KEY)");
      sub.add("--max-request-bytes", a->max_request_bytes, "largest request body (20971520 = 20 MiB); larger: 413");
      sub.add("--max-image-bytes", a->max_image_bytes,
              "largest image, decoded from base64 or read (16 MiB); larger: 413");
      sub.add("--parallel", a->parallel, "requests decoded at once, each with its own state and threads (1)")
          .range(1, 256);
      sub.add("--queue", a->queue, "requests that may wait for a slot, in order (8); more: 503").range(0, 4096);
      sub.add("--allow-local-images", a->allow_local_images,
              "let image_url name files (file://PATH or PATH) inside DIR; none by default");
      sub.add("--served-model-name", a->served_name, "the model id of /v1/models and requests ('lav2')");
      return [a] { return run_serve(*a); };
    }};

}  // namespace
