"""PyTorch reference of LLaMA-Adapter V2's LLM side
(as docs/model.md states the official release's behaviour), in float32 on the CPU.

It extends LlamaRef with every variant lav2 supports, chosen by a config dict that uses the official
keys (w_bias, w_lora, lora_rank) plus lav2's own (absent in official checkpoints):
    adapter:      "v2" (tanh(gate) * new_gate) | "v1" (raw gate, V1 inference) | "none"
    bias_set:     "official" (wq, wo, w1, w2, w3 as nn.Linear .bias) | "all" (all 7, chat65b's *_bias)
    scale_mode:   "none" | "input" (W(s*x)+b, chat65b's *_scale) | "output" (s*(Wx+b), the paper)
    fusion_mode:  "all_adapter_layers" (released code) | "first_k" | "paper_early"
    fusion_depth: K;  query_len: prompts per adapter layer;  query_layer: number of adapter layers
The visual query [Q, dim] is given (the visual branch is tested separately).
"""
import math

import torch

from llama_ref import LlamaRef, apply_rope

LINEARS = {"wq": "attention", "wk": "attention", "wv": "attention", "wo": "attention",
           "w1": "feed_forward", "w2": "feed_forward", "w3": "feed_forward"}
OFFICIAL_BIAS = ("wq", "wo", "w1", "w2", "w3")


def config_defaults(cfg, n_layers):
    c = {"w_bias": False, "w_lora": False, "lora_rank": 16, "adapter": "v2", "bias_set": "official",
         "scale_mode": "none", "fusion_mode": "all_adapter_layers", "fusion_depth": 0, "query_len": 10,
         "query_layer": n_layers - 1}
    c.update(cfg)
    if c["adapter"] == "v1" and "query_layer" not in cfg:
        c["query_layer"] = n_layers - 2
    return c


class AdapterRef(LlamaRef):
    """`base` is Meta's state_dict; `adapter` is the checkpoint's 'model' dict (official names)."""

    def __init__(self, params, base, adapter, cfg, visual_query=None, max_seq_len=512):
        super().__init__(params, base, max_seq_len)
        self.cfg = config_defaults(cfg, params["n_layers"])
        prefix = "" if self.cfg["adapter"] == "v1" else "llama."
        # Adapter keys override the base ones (official load_state_dict(strict=False)).
        for k, v in adapter.items():
            if k.startswith(prefix) and prefix:
                self.w[k[len(prefix):]] = v.float()
            elif not prefix and k.startswith("layers."):
                self.w[k] = v.float()
        self.adapter_query = adapter.get("adapter_query.weight")
        self.adapter_query = None if self.adapter_query is None else self.adapter_query.float()
        self.vq = None if visual_query is None else visual_query.float()
        self.prompts = [self.layer_prompts(i) for i in range(params["n_layers"])]

    # -- which prompts each layer attends to (section 2.1 and the fusion policies) --
    def layer_prompts(self, i):
        c, n = self.cfg, self.p["n_layers"]
        if c["adapter"] == "none":
            return None
        parts = []
        first_adapted = n - c["query_layer"]
        if i >= first_adapted:
            j = i - first_adapted
            L = c["query_len"]
            a = self.adapter_query[j * L:(j + 1) * L]
            fuse = (c["fusion_mode"] == "all_adapter_layers" or
                    (c["fusion_mode"] == "first_k" and j < c["fusion_depth"]))
            parts.append(a + self.vq if (fuse and self.vq is not None) else a)
        if c["fusion_mode"] == "paper_early" and i < c["fusion_depth"] and self.vq is not None:
            parts.append(self.vq)  # the paper: visual tokens as their own prompts in early layers
        return torch.cat(parts) if parts else None

    def gate(self, i):
        g = self.w[f"layers.{i}.attention.gate"].reshape(-1)
        if self.cfg["adapter"] == "v1":
            return g
        g = torch.tanh(g)
        ng = self.w.get(f"layers.{i}.attention.new_gate")
        return g if ng is None else g * ng.reshape(())

    # -- a tuned linear: bias / scale / LoRA around the frozen weight (section 3) --
    def tuned_linear(self, x, i, name):
        c = self.cfg
        pre = f"layers.{i}.{LINEARS[name]}."
        W = self.w[pre + name + ".weight"]
        xin = x
        if c["scale_mode"] == "input":
            xin = x * self.w[pre + name + "_scale"]
        y = xin @ W.T
        if c["w_bias"] and c["bias_set"] == "official" and name in OFFICIAL_BIAS:
            y = y + self.w[pre + name + ".bias"]
        if c["bias_set"] == "all" and c["w_bias"]:
            y = y + self.w[pre + name + "_bias"]
        if c["scale_mode"] == "output":
            y = y * self.w[pre + name + "_scale"]
        if c["w_lora"]:
            y = y + (x @ self.w[pre + f"lora_{name}_l1.weight"].T) @ self.w[pre + f"lora_{name}_l2.weight"].T
        return y

    def attention(self, i, x, start_pos):
        S = x.shape[0]
        H, D = self.n_heads, self.head_dim
        q = self.tuned_linear(x, i, "wq").view(S, H, D)
        k = self.tuned_linear(x, i, "wk").view(S, H, D)
        v = self.tuned_linear(x, i, "wv").view(S, H, D)
        cos, sin = self.cos[start_pos:start_pos + S], self.sin[start_pos:start_pos + S]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        self.cache_k[i][start_pos:start_pos + S] = k
        self.cache_v[i][start_pos:start_pos + S] = v
        keys, values = self.cache_k[i][: start_pos + S], self.cache_v[i][: start_pos + S]
        scores = torch.einsum("shd,thd->hst", q, keys) / math.sqrt(D)
        t = torch.arange(start_pos + S)[None, :]
        s = torch.arange(S)[:, None] + start_pos
        scores = scores.masked_fill((t > s)[None], float("-inf"))
        out = torch.einsum("hst,thd->shd", torch.softmax(scores, dim=-1), values)
        P = self.prompts[i]
        if P is not None:
            # Prompt keys/values: plain wk/wv (no bias, LoRA, scale or RoPE); own softmax, gated per head.
            ka = (P @ self.w[f"layers.{i}.attention.wk.weight"].T).view(-1, H, D)
            va = (P @ self.w[f"layers.{i}.attention.wv.weight"].T).view(-1, H, D)
            sa = torch.softmax(torch.einsum("shd,lhd->hsl", q, ka) / math.sqrt(D), dim=-1)
            sa = sa * self.gate(i)[:, None, None]
            out = out + torch.einsum("hsl,lhd->shd", sa, va)
        return self.tuned_linear(out.reshape(S, self.dim), i, "wo")

    def feed_forward(self, i, x):
        return self.tuned_linear(torch.nn.functional.silu(self.tuned_linear(x, i, "w1")) * self.tuned_linear(x, i, "w3"),
                                 i, "w2")
