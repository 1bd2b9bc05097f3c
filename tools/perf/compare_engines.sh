#!/usr/bin/env bash
# Alternating A/B runs of lav2 and other engines' llama-bench on the same GGUF files, in one
# sitting (docs/performance.md). The other engines are built by you, outside this repository.
#   tools/perf/compare_engines.sh OUT.jsonl PAIRS THREADS FILE.gguf... 
# Environment: LAV2 (default build/bin/lav2), LLAMA_BENCH (llama.cpp's llama-bench, optional),
# IK_BENCH (ik_llama.cpp's llama-bench, optional; run with -rtr 1, its fastest CPU mode).
# Each line of OUT.jsonl is one run: {"engine", "file", "pair", "pp64", "tg32", ...}; lav2's lines
# carry its bench JSON (stream_gbs, fma_peak_gflops, isa, weight_bytes_per_token, ...).
set -euo pipefail
out=$1 pairs=$2 threads=$3
shift 3
lav2=${LAV2:-build/bin/lav2}
py=/usr/bin/python3
for f in "$@"; do
  for i in $(seq "$pairs"); do
    "$lav2" bench --model "$f" --threads "$threads" --prompt-tokens 64 --gen-tokens 32 --json 2>/dev/null | tail -1 |
      $py -c "import json,sys; d=json.load(sys.stdin); d.update(engine='lav2', file='$f', pair=$i, pp64=d['prefill_tok_s'], tg32=d['decode_tok_s']); print(json.dumps(d))" >>"$out"
    for engine in llama.cpp ik_llama.cpp; do
      bin=${LLAMA_BENCH:-}; extra=()
      [[ $engine == ik_llama.cpp ]] && bin=${IK_BENCH:-} && extra=(-rtr 1)
      [[ -n $bin ]] || continue
      "$bin" -m "$f" -t "$threads" -p 64 -n 32 -r 1 "${extra[@]}" -o json 2>/dev/null |
        $py -c "import json,sys; r=json.load(sys.stdin); d={'engine':'$engine','file':'$f','pair':$i}; d.update({('pp64' if x['n_prompt'] else 'tg32'): x['avg_ts'] for x in r}); print(json.dumps(d))" >>"$out"
    done
  done
done
