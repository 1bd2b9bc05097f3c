"""PyTorch autograd reference of one training step of LLaMA-Adapter V2's LLM side (spec 3.3, 8),
on top of AdapterRef (adapter_ref.py), in float32 on the CPU.

    loss, grads = train_step(params, base, adapter_sd, cfg, visual_query, tokens, labels, trainable)

tokens, labels: [B, S] int lists (labels 0 = ignored: the prompt and the padding, as the official
datasets make them); visual_query [Q, dim] (shared by the batch) or None; trainable: a predicate
on the official key. Returns the loss of CrossEntropyLoss(ignore_index=0) on logits[:, :-1]
against labels[:, 1:], and {official key: gradient} for every trainable tensor that the forward
reads (torch leaves .grad None for the others, e.g. layer 0's gate), plus "visual_query" for the
gradient of the visual query. No KV cache: each sequence runs from position 0 with fresh caches.
"""
import json
import os

import numpy as np
import torch

from adapter_ref import AdapterRef
from llama_ref import rmsnorm


class TrainRef(AdapterRef):
    def __init__(self, params, base, adapter, cfg, visual_query, trainable):
        super().__init__(params, base, adapter, cfg, visual_query)
        prefix = "" if self.cfg["adapter"] == "v1" else "llama."
        self.leaves = {}
        for k in list(self.w):
            if trainable(prefix + k):
                self.w[k] = self.w[k].clone().requires_grad_(True)
                self.leaves[prefix + k] = self.w[k]
        if self.adapter_query is not None and trainable("adapter_query.weight"):
            self.adapter_query = self.adapter_query.clone().requires_grad_(True)
            self.leaves["adapter_query.weight"] = self.adapter_query
        if self.vq is not None:
            self.vq = self.vq.clone().requires_grad_(True)

    def logits(self, tokens):
        """Logits [S, V] of one sequence from position 0, differentiable."""
        n, S = self.p["n_layers"], len(tokens)
        self.prompts = [self.layer_prompts(i) for i in range(n)]  # from the current leaves
        self.cache_k = [torch.zeros(S, self.n_heads, self.head_dim) for _ in range(n)]
        self.cache_v = [torch.zeros(S, self.n_heads, self.head_dim) for _ in range(n)]
        h = self.w["tok_embeddings.weight"][torch.tensor(tokens)]
        for i in range(n):
            pre = f"layers.{i}."
            h = h + self.attention(i, rmsnorm(h, self.w[pre + "attention_norm.weight"], self.eps), 0)
            h = h + self.feed_forward(i, rmsnorm(h, self.w[pre + "ffn_norm.weight"], self.eps))
        return self.linear(rmsnorm(h, self.w["norm.weight"], self.eps), "output")


def train_step(params, base, adapter_sd, cfg, visual_query, tokens, labels, trainable):
    m = TrainRef(params, base, adapter_sd, cfg, visual_query, trainable)
    logits = torch.stack([m.logits(t) for t in tokens])  # [B, S, V]
    lab = torch.tensor(labels)
    V = logits.shape[-1]
    loss = torch.nn.CrossEntropyLoss(ignore_index=0)(logits[:, :-1].reshape(-1, V), lab[:, 1:].reshape(-1))
    loss.backward()
    grads = {k: t.grad.detach().clone() for k, t in m.leaves.items() if t.grad is not None}
    if m.vq is not None and m.vq.grad is not None:
        grads["visual_query"] = m.vq.grad.detach().clone()
    return float(loss), grads


def write_fixture(d, loss, grads):
    """Empties directory d, then writes grad_<key>.npy (float32) per gradient and loss.json."""
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    for k, g in grads.items():
        np.save(os.path.join(d, f"grad_{k}.npy"), g.numpy().astype(np.float32))
    with open(os.path.join(d, "loss.json"), "w") as f:
        json.dump({"loss": loss}, f)
        f.write("\n")
