"""Chapter 6's figures, printed: the small GPT's validation loss and training seconds, the KV-cache
speed-up against sequence length, and naive attention against PyTorch's fused kernel.

    .venv/bin/python benchmarks/llm_figures.py            # the chapter's recipe (1200 steps)
    .venv/bin/python benchmarks/llm_figures.py --steps 200 --skip-cost   # a quick look

Budgets are fixed step counts (deterministic with the seed), so the loss does not depend on the
machine's load; the seconds do. Wall seconds and CPU seconds of the process are both printed:
on a shared machine wall time is inflated, CPU time much less so (training uses one thread).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from attention_course.env import seed_everything
from attention_course.training import attention_cost, gpt_training
from attention_course.data import fortunes
from attention_course.models import gpt


def train(steps: int, batch: int, lr: float) -> gpt.GPT:
    quotes = fortunes.load_fortunes()
    train_text, val_text = fortunes.split_quotes(quotes)
    tok = fortunes.CharTokenizer(train_text)
    train_ids, val_ids = tok.encode(train_text), tok.encode(val_text)
    unigram = gpt_training.ngram_baseline(train_ids, val_ids, tok.vocab_size, 1)
    bigram = gpt_training.ngram_baseline(train_ids, val_ids, tok.vocab_size, 2)
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tok.vocab_size))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    history = gpt_training.train_gpt(model, train_ids, val_ids, steps=steps, batch_size=batch, lr=lr,
                                     eval_every=150, progress=False, use_cache=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    val = gpt_training.evaluate(model, val_ids)
    print(f"text: Debian fortunes, {len(train_ids):,} train / {len(val_ids):,} val characters, "
          f"vocabulary {tok.vocab_size}")
    print(f"baselines (nats/char): unigram {unigram:.3f}, bigram {bigram:.3f}; "
          f"target = bigram - 0.61 = {bigram - 0.61:.3f} (nanoGPT: Shakespeare bigram ~2.49 -> 1.88)")
    print(f"small GPT ({model.num_parameters():,} parameters), {steps} steps x {batch} x 64 chars, lr {lr}:")
    print(f"  validation loss {val:.3f} nats/char = {val / np.log(2):.3f} bits/char")
    print(f"  training seconds {history['seconds']:.1f} wall (steps only), {wall:.1f} wall with evaluations, "
          f"{cpu:.1f} CPU")
    return model


def kv_cache_table(lengths) -> None:
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=113, block_size=max(lengths)))
    print("\nKV cache (untrained 4x128 GPT, greedy, one-token prompt):")
    print("     n  full (s)  cached (s)  speed-up  identical")
    for n in lengths:
        prompt = torch.zeros(1, 1, dtype=torch.long)
        times, outs = {}, {}
        for use_cache in (False, True):
            start = time.perf_counter()
            outs[use_cache] = gpt.generate(model, prompt, n - 1, 0.0, use_cache=use_cache)
            times[use_cache] = time.perf_counter() - start
        print(f"{n:6d} {times[False]:9.2f} {times[True]:11.2f} {times[False] / times[True]:9.1f}x "
              f"{str(torch.equal(outs[False], outs[True])):>10}")


def cost_table(lengths) -> None:
    print("\nnaive attention vs torch.nn.functional.scaled_dot_product_attention "
          "(4 heads x 64, causal, batch 1, one thread; memory = rise of VmHWM):")
    print("     n  naive ms  fused ms  naive MB  fused MB  n x n matrix MB")
    rows = attention_cost.measure_attention_cost(lengths, heads=4, d=64, repeats=2, threads=1)
    for r in rows:
        mb = (lambda b: float("nan") if b is None else b / 2**20)
        print(f"{r['n']:6d} {1e3 * r['naive_s']:9.1f} {1e3 * r['fused_s']:9.1f} {mb(r['naive_bytes']):9.1f} "
              f"{mb(r['fused_bytes']):9.2f} {r['matrix_bytes'] / 2**20:16.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args(argv)
    seed_everything(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available; "
          f"load average {Path('/proc/loadavg').read_text().split()[:3] if Path('/proc/loadavg').exists() else '?'}")
    if not args.skip_train:
        train(args.steps, args.batch, args.lr)
    kv_cache_table((32, 64, 128, 256, 512, 1024))
    if not args.skip_cost:
        cost_table((256, 512, 1024, 2048, 4096))
    return 0


if __name__ == "__main__":
    sys.exit(main())
