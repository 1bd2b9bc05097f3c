#!/usr/bin/python3
"""Plots decode tokens/s against the bandwidth roofline from compare_engines.sh's runs.

    /usr/bin/python3 tools/perf/plot_engines.py docs/perf/engines-2026-12-08.jsonl docs/img/performance_decode.png

For each GGUF file: the median decode tokens/s of each engine (bars, min-max whiskers), and the
roofline: the median stream probe (the best read pattern, GB/s) divided by the bytes one decode
step reads (lav2's weight_bytes_per_token for that file). Debian's python3-matplotlib.
"""
import collections
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

runs = [json.loads(line) for line in open(sys.argv[1])]
files = []
by = collections.defaultdict(list)
bytes_per_token = {}
for r in runs:
    if r["file"] not in files:
        files.append(r["file"])
    by[(r["file"], r["engine"])].append(r["tg32"])
    if r["engine"] == "lav2":
        bytes_per_token[r["file"]] = r["weight_bytes_per_token"]
stream = statistics.median(r["stream_gbs"] for r in runs if "stream_gbs" in r)
engines = [e for e in ("lav2", "lav2-norepack", "llama.cpp", "ik_llama.cpp") if any(k[1] == e for k in by)]
colors = {"lav2": "#1f77b4", "lav2-norepack": "#9ecae1", "llama.cpp": "#ff7f0e", "ik_llama.cpp": "#2ca02c"}
width = 0.8 / len(engines)
fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
for i, f in enumerate(files):
    roof = stream * 1e9 / bytes_per_token[f]
    ax.plot([i - 0.45, i + 0.45], [roof, roof], color="black", lw=1.5, label="stream roofline" if i == 0 else None)
    for j, e in enumerate(engines):
        v = by.get((f, e))
        if not v:
            continue
        x = i - 0.4 + width * (j + 0.5)
        m = statistics.median(v)
        ax.bar(x, m, width * 0.9, color=colors[e], label=e if i == 0 else None)
        ax.errorbar(x, m, yerr=[[m - min(v)], [max(v) - m]], color="black", lw=0.8, capsize=2)
ax.set_xticks(range(len(files)))
ax.set_xticklabels([f.replace("r7b-", "").replace(".gguf", "") for f in files])
ax.set_ylabel("decode tokens/s (tg32, 2 threads)")
ax.set_title(f"LLaMA-7B shape, 8 layers, random weights; stream probe {stream:.1f} GB/s")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[2])
