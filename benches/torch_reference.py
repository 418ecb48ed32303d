#!/usr/bin/env python3
"""PyTorch side of `cargo xtask bench`: the same model, step and figures in PyTorch.

Builds stage N of a growlm run config in PyTorch: a GPT-Neo decoder in plain PyTorch (no
bias on the query/key/value projections, attention scores not scaled, tanh GELU,
LayerNorm, tied LM head, GPT-Neo's alternating local attention when the config asks for
it), or for `family = "llama"` transformers' `LlamaForCausalLM` with the same sizes
(grouped key/value heads, SwiGLU, RMSNorm, rotary positions, tied or untied head). It
trains it with AdamW on synthetic token ids at the config's batch and sequence length in
one of three modes (`--mode`):

  * eager: the attention written out (GPT-Neo) or transformers' `eager` attention (Llama);
  * sdpa: `torch.nn.functional.scaled_dot_product_attention` (transformers' `sdpa`);
  * compile: sdpa with the model under `torch.compile` (inductor, the default mode);

and prints ms/step, tokens/s, model FLOP/s and MFU exactly as `cargo xtask bench` defines
them:

  * ms/step is the median of `--steps` timed steps after 2 warm-up steps;
  * model FLOPs per step are 6·N + 12·L·T·A per token (N: matmul parameters including the
    tied head, A: attention width, T: attended length), as `GptConfig::flops_per_token`;
  * the peak is the best of ten 1024³ float32 matmuls after two warm-ups.

Not part of CI. Needs `torch` (`pip install torch`), and `transformers` for Llama.
`compile` needs a C compiler. Usage:

  python benches/torch_reference.py --config configs/paper-tiny.toml --stage 1 [--threads 2] [--mode sdpa]
"""

import argparse
import json
import os
import statistics
import sys
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F


def vocab_of(run: dict, model: dict) -> int:
    if "vocab_size" in model:
        return int(model["vocab_size"])
    tok = run.get("data", {}).get("tokenizer", "byte")
    if tok == "byte":
        return 256
    if tok == "gpt2":
        return 50257
    if isinstance(tok, dict) and "bpe" in tok:
        return int(tok["bpe"]["vocab_size"])
    sys.exit(f"unknown [data] tokenizer {tok!r}")


class Block(nn.Module):
    def __init__(self, d, a, f, heads, window, eps, sdpa):
        super().__init__()
        self.heads, self.window, self.sdpa = heads, window, sdpa
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.q = nn.Linear(d, a, bias=False)
        self.k = nn.Linear(d, a, bias=False)
        self.v = nn.Linear(d, a, bias=False)
        self.o = nn.Linear(a, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.fc = nn.Linear(d, f)
        self.proj = nn.Linear(f, d)

    def forward(self, x, mask):
        b, t, _ = x.shape
        h = self.ln1(x)
        split = lambda z: z.view(b, t, self.heads, -1).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        if self.sdpa:
            # GPT-Neo: no 1/sqrt(head_dim); sdpa's mask is True where attention is allowed.
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=~mask, scale=1.0)
        else:
            s = q @ k.transpose(-1, -2)  # GPT-Neo: no 1/sqrt(head_dim)
            s = s.masked_fill(mask, torch.finfo(s.dtype).min)
            y = torch.softmax(s, dim=-1) @ v
        x = x + self.o(y.transpose(1, 2).reshape(b, t, -1))
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, m: dict, vocab: int, sdpa: bool):
        super().__init__()
        d, heads = m["d_model"], m["n_heads"]
        a = m.get("head_dim", d // heads) * heads
        f = m.get("ffn_dim", 4 * d)
        eps = m.get("layer_norm_eps", 1e-5)
        window = None
        att = m.get("attention", "global")
        if isinstance(att, dict) and "alternating" in att:
            window = att["alternating"]["window"]
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(m["context_len"], d)
        self.blocks = nn.ModuleList(
            Block(d, a, f, heads, window if l % 2 == 1 else None, eps, sdpa) for l in range(m["n_layers"])
        )
        self.ln_f = nn.LayerNorm(d, eps=eps)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=m.get("init_std", 0.02))

    def forward(self, x, masks):
        t = x.shape[1]
        h = self.wte(x) + self.wpe(torch.arange(t))
        for blk in self.blocks:
            h = blk(h, masks[blk.window])
        return self.ln_f(h) @ self.wte.weight.T  # tied head


def llama(m: dict, vocab: int, attn: str):
    """transformers' LlamaForCausalLM with stage `m`'s sizes (as growlm's Llama family)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d, heads = m["d_model"], m["n_heads"]
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=d,
        intermediate_size=m.get("ffn_dim", 4 * d),
        num_hidden_layers=m["n_layers"],
        num_attention_heads=heads,
        num_key_value_heads=m.get("n_kv_heads", heads),
        head_dim=m.get("head_dim", d // heads),
        max_position_embeddings=m["context_len"],
        rms_norm_eps=m.get("layer_norm_eps", 1e-5),
        rope_theta=m.get("rope_theta", 10000.0),
        tie_word_embeddings=m.get("tie_embeddings", True),
        attention_bias=False,
        mlp_bias=False,
        initializer_range=m.get("init_std", 0.02),
        use_cache=False,
    )
    return LlamaForCausalLM._from_config(cfg, attn_implementation=attn)


def causal_masks(t: int, windows):
    i = torch.arange(t)
    future = i[None, :] > i[:, None]
    out = {None: future}
    for w in windows:
        if w is not None:
            out[w] = future | (i[:, None] - i[None, :] >= w)
    return out


def flops_per_step(m: dict, vocab: int, batch: int, seq: int) -> float:
    d, heads, layers = m["d_model"], m["n_heads"], m["n_layers"]
    hd = m.get("head_dim", d // heads)
    a = hd * heads
    f = m.get("ffn_dim", 4 * d)
    if m.get("family") == "llama":
        kv = hd * m.get("n_kv_heads", heads)
        n = layers * (2 * d * a + 2 * d * kv + 3 * d * f) + d * vocab
    else:
        n = layers * (4 * d * a + 2 * d * f) + d * vocab
    att = m.get("attention", "global")
    window = att["alternating"]["window"] if isinstance(att, dict) and "alternating" in att else None
    attn = sum(12.0 * (min(window, seq) if window and l % 2 == 1 else seq) * a for l in range(layers))
    return (6.0 * n + attn) * batch * seq


def tokens(b, t, vocab, salt):
    i = torch.arange(b * t)
    return ((i * 31 + salt * 7 + i // 5) % vocab).view(b, t)


def matmul_peak(n=1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(10):
        c = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - c))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/paper-tiny.toml")
    ap.add_argument("--stage", type=int, help="0-based stage [default: the last]")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    ap.add_argument("--mode", choices=["eager", "sdpa", "compile"], default="eager")
    ap.add_argument("--json", help="write the figures as JSON")
    args = ap.parse_args()

    with open(args.config, "rb") as fh:
        run = tomllib.load(fh)
    stages = run["stages"]
    n = len(stages) - 1 if args.stage is None else args.stage
    if not 0 <= n < len(stages):
        sys.exit(f"--stage {n}: {args.config} has {len(stages)} stages (0-based)")
    m = stages[n]["model"]
    vocab = vocab_of(run, m)
    batch, seq = run["train"]["batch_size"], run["train"]["seq_len"]

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    is_llama = m.get("family") == "llama"
    sdpa = args.mode != "eager"
    if is_llama:
        model = llama(m, vocab, "sdpa" if sdpa else "eager")
        forward = lambda x: model(input_ids=x).logits
    else:
        model = Gpt(m, vocab, sdpa)
        masks = causal_masks(seq, {blk.window for blk in model.blocks})
        forward = lambda x: model(x, masks)
    model.train()
    if args.mode == "compile":
        forward = torch.compile(forward)
    # burn's AdamWConfig::new() defaults, as `cargo xtask bench` uses them.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-5, weight_decay=1e-4)
    times = []
    # compile: the first steps compile (forward and backward); more warm-up steps.
    warm = 4 if args.mode == "compile" else 2
    for i in range(args.steps + warm):
        x, y = tokens(batch, seq, vocab, i), tokens(batch, seq, vocab, i + 1)
        c = time.perf_counter()
        logits = forward(x)
        loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warm:
            times.append((time.perf_counter() - c) * 1e3)
    ms = statistics.median_high(times)
    peak = matmul_peak()
    flops = flops_per_step(m, vocab, batch, seq) / (ms / 1e3)
    r = {
        "config": args.config,
        "stage": n,
        "device": f"torch {torch.__version__} {'transformers ' if is_llama else ''}{args.mode} cpu",
        "threads": args.threads,
        "ms_per_step": ms,
        "tokens_per_s": batch * seq / (ms / 1e3),
        "model_flops_per_s": flops,
        "peak_flops_per_s": peak,
        "mfu": flops / peak,
    }
    print(f"{args.config} stage {n} on {r['device']} ({args.threads} threads)")
    print(
        f"  {ms:.1f} ms/step, {r['tokens_per_s']:.0f} tokens/s, {flops:.3e} model FLOP/s; "
        f"matmul peak {peak:.3e} FLOP/s; MFU {100 * r['mfu']:.1f}%"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(r, fh, indent=2)


if __name__ == "__main__":
    main()
