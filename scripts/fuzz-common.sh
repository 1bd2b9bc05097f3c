# Sourced by scripts/fuzz.sh (CI's short deterministic runs) and scripts/fuzz-campaign.sh (the long
# CPU-time-budgeted campaign): the target list, the fuzzer build, the seed corpora and the flags every
# run shares, so both fuzz the same binaries from the same seeds.
#   fuzz_build <out> <targets...>   configures <out>/ (clang-14, ASan + UBSan) and builds fuzz_<target>
#   fuzz_seed <out>                 fills <out>/corpus/<target>/ from tests/data and tests/corpus
#   fuzz_args <out> <target>        prints the libFuzzer flags of a run (dictionary, limits, artifacts)
# Environment: LAV2_FUZZ_MAX_LEN (65536); LAV2_FUZZ_CLI_FROM (build), see fuzz_build.
fuzz_all_targets=(torch_checkpoint torchscript safetensors json_config tokenizer_model tokenizer_json tokenize image cli gguf
  openai_request)
fuzz_max_len=${LAV2_FUZZ_MAX_LEN:-65536}

fuzz_build() {
  local out=$1
  shift
  # fuzz_cli links the subcommands' objects of the normal build (LAV2_FUZZ_CLI_FROM, default build/,
  # which scripts/test.sh has just made) when each is newer than every file it was compiled from
  # (ninja's own dependency record); otherwise it compiles them, which takes minutes (see
  # tests/fuzz/CMakeLists.txt).
  local cli_objs="" from=${LAV2_FUZZ_CLI_FROM:-build} objs o
  objs=("$from"/cli/CMakeFiles/lav2_cli.dir/cmd_*.cpp.o)
  fresh() {  # fresh <object>: no recorded dependency is newer than it
    local rel=${1#"$from"/} dep
    ninja -C "$from" -t deps "$rel" 2>/dev/null | grep -q '(VALID)' || return 1
    while read -r dep; do
      [[ $dep = /* ]] || dep=$from/$dep
      [[ -e $dep && ! $dep -nt $1 ]] || return 1
    done < <(ninja -C "$from" -t deps "$rel" | awk 'NR > 1 && NF { print $1 }')
  }
  if [[ -f "${objs[0]}" ]] && ((${#objs[@]} == $(ls cli/cmd_*.cpp | wc -l))); then
    cli_objs=$(realpath "${objs[@]}" | paste -sd';')
    for o in "${objs[@]}"; do fresh "$o" || cli_objs=""; done
  fi
  cmake -S . -B "$out" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DLAV2_BUILD_FUZZERS=ON -DLAV2_BUILD_TESTS=OFF -DLAV2_BUILD_EXAMPLES=OFF -DLAV2_BUILD_BENCHMARKS=OFF \
    -DLAV2_INSTALL=OFF -DLAV2_NATIVE=OFF -DLAV2_FUZZ_CLI_OBJECTS="$cli_objs" >/dev/null
  cmake --build "$out" -j "$(nproc)" --target "${@/#/fuzz_}"
}

fuzz_seed() {
  local out=$1
  seed() {  # seed <target> <files...>: copies the files no larger than max_len into the corpus
    local dir=$out/corpus/$1 f
    shift
    mkdir -p "$dir"
    for f in "$@"; do
      [[ -f "$f" ]] && (($(stat -c %s "$f") <= fuzz_max_len)) && cp -n "$f" "$dir/seed_$(basename "$(dirname "$f")")_$(basename "$f")"
    done
    return 0
  }
  shopt -s nullglob globstar
  seed torch_checkpoint tests/data/io/*.pth tests/data/tiny_adapter/**/*.pth tests/corpus/torch/*.pth
  # the bare pickles inside the fixtures, so the unpickler half starts from real data.pkl streams
  mkdir -p "$out/corpus/torch_checkpoint"
  python3 - "$out/corpus/torch_checkpoint" tests/data/io/*.pth tests/corpus/torch/*.pth <<'PY'
import os, sys, zipfile
for p in sys.argv[2:]:
    try:
        with zipfile.ZipFile(p) as z:
            for n in z.namelist():
                if n.endswith(".pkl"):
                    with open(os.path.join(sys.argv[1], "pkl_" + os.path.basename(p) + "_" + os.path.basename(n)), "wb") as f:
                        f.write(z.read(n))
    except Exception:
        pass
PY
  seed torchscript tests/data/tiny_clip/ts_*.pt tests/corpus/torchscript/*
  seed safetensors tests/data/io/*.safetensors tests/corpus/safetensors/*.safetensors
  seed json_config tests/data/io/*.json tests/data/tiny_llama/tiny/params.json tests/data/tiny_llama_bad/*/params.json \
    tests/corpus/params/*.json tests/data/tiny_adapter/*/adapter.pth tests/data/tiny_adapter/bad/*.pth tests/data/io/nested.pth
  seed gguf tests/data/gguf/*.gguf tests/corpus/gguf/*.gguf
  seed tokenizer_model tests/data/tokenizer/*.model tests/corpus/tokenizer/*.model
  seed tokenizer_json tests/corpus/tokenizer/*.json
  seed image tests/data/images/special/*.png tests/data/images/jpeg/*.jpg tests/data/images/resize/00*.png \
    tests/corpus/image/*.png tests/corpus/image/*.jpg
  mkdir -p "$out/corpus/tokenize" "$out/corpus/cli"
  printf '\x00Hello world, 123 \xc3\xa9t\xc3\xa9' >"$out/corpus/tokenize/seed_text"
  printf '\x01  two  spaces\xff\xfe broken \xe2\x82' >"$out/corpus/tokenize/seed_user"
  printf '\x02\x01\x00\x05\x00\xff\x7f\x00\x80\x10\x00' >"$out/corpus/tokenize/seed_ids"
  printf 'generate\0--llama-dir\0DIR\0--prompt\0hi\0--max-new-tokens\0-5\0--threads\0999999' >"$out/corpus/cli/seed_generate"
  printf 'generate\0--llama-dir=DIR\0--prompt\0\xff\xfe\0--template\0alpaca-input\0--input\0x\0--json' >"$out/corpus/cli/seed_generate2"
  printf 'tokenize\0--tokenizer\0tok.model\0--bos\0--\0-text' >"$out/corpus/cli/seed_tokenize"
  printf 'bench\0--help' >"$out/corpus/cli/seed_bench"
  printf 'selfcheck' >"$out/corpus/cli/seed_selfcheck"
  printf -- '--version' >"$out/corpus/cli/seed_version"
  mkdir -p "$out/corpus/openai_request"
  printf '%s' '{"model":"lav2","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},{"role":"assistant","content":"A cat."},{"role":"user","content":"More?"}],"max_tokens":8,"temperature":0,"top_p":0.5,"seed":1,"stop":["###"],"stream":true,"stream_options":{"include_usage":true}}' >"$out/corpus/openai_request/seed_full"
  printf '%s' '{"model":"lav2","messages":[{"role":"user","content":"Hi"}],"n":1,"stop":"x","max_completion_tokens":3}' >"$out/corpus/openai_request/seed_min"
  printf '%s' '{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"file:///etc/passwd"}]}]}' >"$out/corpus/openai_request/seed_file"
  mkdir -p "$out/artifacts" "$out/logs"
}

# The corpus directory comes first (new units are written there); limits as in fuzz_util.hpp.
fuzz_args() {
  local out=$1 t=$2
  echo "$out/corpus/$t"
  case $t in torch_checkpoint | torchscript | json_config) echo "-dict=tests/fuzz/pickle.dict" ;; esac
  printf '%s\n' "-max_len=$fuzz_max_len" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    "-artifact_prefix=$out/artifacts/$t-"
}
