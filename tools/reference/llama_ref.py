"""A small, readable PyTorch reference of Meta's LLaMA-1 forward pass, written from the official
release's behaviour as docs/model.md states it. It computes in float32 on the CPU and
works on a plain state_dict, so the tests can compare lav2 with it tensor by tensor.

    params = {"dim", "n_layers", "n_heads", "norm_eps", "multiple_of", "vocab_size"}
    sd     = state_dict with Meta's key names (tok_embeddings.weight, layers.{i}.attention.wq.weight, ...)
"""
import math

import torch


def ffn_hidden_dim(dim, multiple_of):
    """The official FFN width: int(2 * 4 * dim / 3) rounded up to a multiple of `multiple_of`."""
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def rope_tables(head_dim, n_positions, theta=10000.0):
    """cos/sin [n_positions, head_dim/2], computed in float32 as precompute_freqs_cis does."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    t = torch.arange(n_positions, dtype=torch.float32)
    angles = torch.outer(t, freqs).float()
    cis = torch.polar(torch.ones_like(angles), angles)  # complex64, as the official code
    return cis.real.contiguous(), cis.imag.contiguous()


def apply_rope(x, cos, sin):
    """x [S, H, D]; rotates the adjacent pairs (x[2j], x[2j+1]) by the angle of position s."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def rmsnorm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


class LlamaRef:
    """LLaMA with a KV cache. forward(tokens, start_pos) returns logits for every new position."""

    def __init__(self, params, sd, max_seq_len=512):
        self.p = params
        self.w = {k: v.float() for k, v in sd.items()}
        self.dim = params["dim"]
        self.n_heads = params["n_heads"]
        self.head_dim = self.dim // self.n_heads
        self.eps = params["norm_eps"]
        self.max_seq_len = max_seq_len
        self.cos, self.sin = rope_tables(self.head_dim, 2 * max_seq_len)
        n_layers = params["n_layers"]
        self.cache_k = [torch.zeros(max_seq_len, self.n_heads, self.head_dim) for _ in range(n_layers)]
        self.cache_v = [torch.zeros(max_seq_len, self.n_heads, self.head_dim) for _ in range(n_layers)]
        self.hidden_states = []  # per layer output of the last forward, [S, dim]

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        bias = self.w.get(name + ".bias")
        return y if bias is None else y + bias

    def attention(self, i, x, start_pos):
        S = x.shape[0]
        pre = f"layers.{i}.attention."
        q = self.linear(x, pre + "wq").view(S, self.n_heads, self.head_dim)
        k = self.linear(x, pre + "wk").view(S, self.n_heads, self.head_dim)
        v = self.linear(x, pre + "wv").view(S, self.n_heads, self.head_dim)
        cos, sin = self.cos[start_pos:start_pos + S], self.sin[start_pos:start_pos + S]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        self.cache_k[i][start_pos:start_pos + S] = k
        self.cache_v[i][start_pos:start_pos + S] = v
        keys = self.cache_k[i][: start_pos + S]      # [T, H, D]
        values = self.cache_v[i][: start_pos + S]
        scores = torch.einsum("shd,thd->hst", q, keys) / math.sqrt(self.head_dim)
        # Causal mask: query s (absolute position start_pos+s) sees keys t <= start_pos+s.
        t = torch.arange(start_pos + S)[None, :]
        s = torch.arange(S)[:, None] + start_pos
        scores = scores.masked_fill((t > s)[None], float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1)
        out = torch.einsum("hst,thd->shd", probs, values).reshape(S, self.dim)
        return self.linear(out, pre + "wo")

    def feed_forward(self, i, x):
        pre = f"layers.{i}.feed_forward."
        return self.linear(torch.nn.functional.silu(self.linear(x, pre + "w1")) * self.linear(x, pre + "w3"), pre + "w2")

    @torch.no_grad()
    def forward(self, tokens, start_pos):
        """tokens: list of ids (the new positions). Returns logits [S, vocab] in float32."""
        h = self.w["tok_embeddings.weight"][torch.tensor(tokens)]
        self.hidden_states = []
        for i in range(self.p["n_layers"]):
            pre = f"layers.{i}."
            h = h + self.attention(i, rmsnorm(h, self.w[pre + "attention_norm.weight"], self.eps), start_pos)
            h = h + self.feed_forward(i, rmsnorm(h, self.w[pre + "ffn_norm.weight"], self.eps))
            self.hidden_states.append(h.clone())
        return self.linear(rmsnorm(h, self.w["norm.weight"], self.eps), "output")


def greedy_generate(model, prompt_ids, max_new_tokens, eos_id, max_seq_len):
    """The official loop at temperature 0: prefill at position 0, then one token per step.
    Returns (generated ids, per-step last-position logits [n, V])."""
    generated, step_logits = [], []
    logits = model.forward(prompt_ids, 0)[-1]
    pos = len(prompt_ids)
    while True:
        step_logits.append(logits.clone())
        nxt = int(torch.argmax(logits))
        generated.append(nxt)
        if nxt == eos_id or len(generated) >= max_new_tokens or pos + 1 >= max_seq_len:
            break
        logits = model.forward([nxt], pos)[-1]
        pos += 1
    return generated, torch.stack(step_logits)
