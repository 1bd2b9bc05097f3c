"""PyTorch reference of LLaMA-Adapter V2's visual branch, written from the spec (sections 4.1, 4.2).

Functions take plain state dicts (name -> tensor) and compute in float64 or float32 with explicit
ops, so they depend on no CLIP or timm code:
    clip_encode_image(sd, image, prefix="visual.")  image (3, S, S) -> (1 + grid^2, out_dim)
    forward_visual(sd, feats, heads=16)             (n_tokens, clip_dim) -> (Q, dim)
"""
import math

import torch
import torch.nn.functional as F

EPS = 1e-5


def _mha(x, w_qkv, b_qkv, w_out, b_out, heads):
    """Self-attention without mask; qkv rows are q | k | v, heads contiguous inside each."""
    n, c = x.shape
    hd = c // heads
    qkv = F.linear(x, w_qkv, b_qkv)                      # (n, 3c)
    q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
    q = q.reshape(n, heads, hd).transpose(0, 1)          # (h, n, hd)
    k = k.reshape(n, heads, hd).transpose(0, 1)
    v = v.reshape(n, heads, hd).transpose(0, 1)
    att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1)
    o = (att @ v).transpose(0, 1).reshape(n, c)
    return F.linear(o, w_out, b_out)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def clip_encode_image(sd, image, prefix="visual.", dtype=torch.float64):
    g = lambda name: sd[prefix + name].to(dtype)  # noqa: E731
    conv = g("conv1.weight")                             # (width, 3, p, p)
    width, p = conv.shape[0], conv.shape[2]
    heads = width // 64
    x = F.conv2d(image.to(dtype)[None], conv, stride=p)  # (1, width, grid, grid)
    x = x.flatten(2)[0].t()                              # (grid^2, width), row-major patches
    x = torch.cat([g("class_embedding")[None], x], 0) + g("positional_embedding")
    x = F.layer_norm(x, (width,), g("ln_pre.weight"), g("ln_pre.bias"), EPS)
    i = 0
    while prefix + "transformer.resblocks.%d.ln_1.weight" % i in sd:
        b = "transformer.resblocks.%d." % i
        h = F.layer_norm(x, (width,), g(b + "ln_1.weight"), g(b + "ln_1.bias"), EPS)
        x = x + _mha(h, g(b + "attn.in_proj_weight"), g(b + "attn.in_proj_bias"),
                     g(b + "attn.out_proj.weight"), g(b + "attn.out_proj.bias"), heads)
        h = F.layer_norm(x, (width,), g(b + "ln_2.weight"), g(b + "ln_2.bias"), EPS)
        h = quick_gelu(F.linear(h, g(b + "mlp.c_fc.weight"), g(b + "mlp.c_fc.bias")))
        x = x + F.linear(h, g(b + "mlp.c_proj.weight"), g(b + "mlp.c_proj.bias"))
        i += 1
    # clip_encode_image: ln_post and proj on ALL tokens
    x = F.layer_norm(x, (width,), g("ln_post.weight"), g("ln_post.bias"), EPS)
    return x @ g("proj")


def forward_visual(sd, feats, heads=16, dtype=torch.float64):
    g = lambda name: sd[name].to(dtype)  # noqa: E731
    f = F.linear(feats.to(dtype), g("clip_proj.weight"), g("clip_proj.bias"))
    c = f.shape[1]
    f = F.layer_norm(f, (c,), g("clip_proj_norm.weight"), g("clip_proj_norm.bias"), EPS)
    q = g("visual_query.weight")
    x = torch.cat([q, f], 0)                             # queries FIRST
    i = 0
    while "visual_blocks.%d.norm1.weight" % i in sd:
        b = "visual_blocks.%d." % i
        h = F.layer_norm(x, (c,), g(b + "norm1.weight"), g(b + "norm1.bias"), EPS)
        x = x + _mha(h, g(b + "attn.qkv.weight"), g(b + "attn.qkv.bias"), g(b + "attn.proj.weight"),
                     g(b + "attn.proj.bias"), heads)
        h = F.layer_norm(x, (c,), g(b + "norm2.weight"), g(b + "norm2.bias"), EPS)
        h = F.gelu(F.linear(h, g(b + "mlp.fc1.weight"), g(b + "mlp.fc1.bias")))  # exact erf GELU
        x = x + F.linear(h, g(b + "mlp.fc2.weight"), g(b + "mlp.fc2.bias"))
        i += 1
    x = F.linear(x[:q.shape[0]], g("visual_proj.weight"), g("visual_proj.bias"))
    return F.layer_norm(x, (x.shape[1],), g("visual_proj_norm.weight"), g("visual_proj_norm.bias"), EPS)
