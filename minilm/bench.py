"""Benchmarks: `minilm bench <name>` prints one JSON line of measured figures."""

from __future__ import annotations

import time

from .corpus import load_shakespeare
from .tokenizer import Tokenizer, bytes_per_token


def bench_tokenizer(vocab_size: int = 4096, repeats: int = 3) -> dict:
    """Train BPE on the full embedded corpus, then time single-threaded encoding of all of it."""
    texts = [doc.text for doc in load_shakespeare()]
    corpus_bytes = sum(len(t.encode("utf-8")) for t in texts)
    start = time.perf_counter()
    tokenizer = Tokenizer.train(texts, vocab_size=vocab_size)
    train_seconds = time.perf_counter() - start

    whole = "".join(texts)
    encoding = tokenizer.tiktoken_encoding
    encoding.encode_ordinary("warm up")
    best = float("inf")
    for _ in range(repeats):  # best of a few runs: the machine's other load only adds time
        start = time.perf_counter()
        ids = encoding.encode_ordinary(whole)
        best = min(best, time.perf_counter() - start)
    return {
        "train_seconds": round(train_seconds, 2),
        "vocab_size": tokenizer.vocab_size,
        "corpus_bytes": corpus_bytes,
        "encode_mb_per_s": round(corpus_bytes / best / 1e6, 2),
        "bytes_per_token": round(bytes_per_token(tokenizer.encode, texts), 3),
        "tokens": len(ids),
    }


def bench_dedup(n_docs: int = 100_000, dup_fraction: float = 0.1, seed: int = 0) -> dict:
    """Near-dedup (MinHash with 128 permutations, LSH, exact verification) of paragraph documents.

    The corpus has planted near-duplicates (Jaccard >= 0.8 with their source) and hard negatives
    (0.3-0.6). ``seconds`` times signatures + LSH + verification only; building the corpus and the
    exact ground truth (every pair with Jaccard >= 0.8) are timed separately.
    """
    from .dedup import dedup_quality, planted_near_duplicates

    start = time.perf_counter()
    corpus = planted_near_duplicates(n_docs, dup_fraction, seed=seed)
    corpus_seconds = time.perf_counter() - start
    result = dedup_quality(corpus, threshold=0.8, num_perm=128)
    return {**result, "corpus_seconds": round(corpus_seconds, 2)}


# The pretraining benchmark's configurations. "baby" is nanoGPT's character-level Shakespeare model
# (config/train_shakespeare_char.py, with the dropout off): GPT-2 components, 4 layers x 4 heads x
# 128, context 64, batch 12. "best" is our configuration for a 90-second budget on 2 CPU cores.
PRETRAIN_BENCH_CONFIGS = {
    "baby": dict(style="gpt2", vocab=None, n_layer=4, n_head=4, n_embd=128, seq_len=64, batch_size=12,
                 lr=1e-3, warmup_steps=100, min_lr_ratio=0.1),
    "best": dict(style="modern", vocab=1024, n_layer=4, n_head=4, n_embd=128, seq_len=64, batch_size=32,
                 lr=4e-3, warmup_steps=30, min_lr_ratio=0.0),
}


class CharTokenizer:
    """One id per character of the training text (nanoGPT's shakespeare_char): ``vocab`` maps each
    id to its UTF-8 bytes, so bits per byte are computed exactly as for BPE. Characters unseen in
    training map to the id of a space (there are few, and they are counted in the bytes)."""

    def __init__(self, text: str):
        chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.vocab = {i: c.encode("utf-8") for i, c in enumerate(chars)}
        self.vocab_size = len(chars)

    def encode(self, text: str) -> list[int]:
        space = self.stoi.get(" ", 0)
        return [self.stoi.get(c, space) for c in text]


def bench_pretrain(config: str = "best", seconds: float = 90.0, device: str | None = None, seed: int = 0,
                   eval_tokens: int | None = None) -> dict:
    """Train on the training plays for about ``seconds``, then measure bits per byte on the held-out
    plays (all of them, or their first ``eval_tokens`` tokens).

    The number of steps is set from a short timing run (the cosine schedule needs to know where it
    ends); ``seconds`` in the result is the time the real run took, data preparation and evaluation
    excluded.
    """
    import numpy as np
    import torch

    from .corpus import shakespeare_texts
    from .device import best_device, mfu
    from .model import GPT, GPTConfig
    from .train import TrainConfig, evaluate, token_byte_lengths, train

    if config not in PRETRAIN_BENCH_CONFIGS:
        raise ValueError(f"config={config!r}: choose one of {sorted(PRETRAIN_BENCH_CONFIGS)}")
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be positive")
    c = PRETRAIN_BENCH_CONFIGS[config]
    device = device or best_device()
    train_text, val_text = "".join(shakespeare_texts("train")), "".join(shakespeare_texts("val"))
    tokenizer = CharTokenizer(train_text) if c["vocab"] is None else Tokenizer.train(shakespeare_texts("train"), c["vocab"])
    train_ids = np.array(tokenizer.encode(train_text), dtype=np.int64)
    val_ids = np.array(tokenizer.encode(val_text), dtype=np.int64)
    preset = GPTConfig.gpt2 if c["style"] == "gpt2" else GPTConfig.modern
    model_config = preset(vocab_size=tokenizer.vocab_size, n_layer=c["n_layer"], n_head=c["n_head"],
                          n_embd=c["n_embd"], block_size=c["seq_len"])

    def run(steps: int):
        torch.manual_seed(seed)
        model = GPT(model_config)
        cfg = TrainConfig(steps=steps, batch_size=c["batch_size"], seq_len=c["seq_len"], lr=c["lr"],
                          warmup_steps=min(c["warmup_steps"], steps // 10), min_lr_ratio=c["min_lr_ratio"],
                          weight_decay=0.1, eval_every=0, seed=seed)
        return model, train(model, train_ids, cfg, device=device, progress=False)

    _, timing = run(30)
    # 5% headroom: steps late in a run were measured to take a little longer than the first 30.
    steps = max(1, int(0.95 * seconds / (timing.seconds / 30)))
    model, result = run(steps)
    final = evaluate(model, val_ids, c["seq_len"], 64, eval_tokens or len(val_ids), token_byte_lengths(tokenizer), device)
    return {
        "config": {"name": config, **c, "vocab_size": tokenizer.vocab_size, "steps": steps,
                   "params": model.num_params()},
        "seconds": round(result.seconds, 1),
        "tokens_per_s": round(result.tokens_per_s),
        "val_bpb": round(final["bpb"], 3),
        "mfu": mfu(model.flops_per_token(c["seq_len"], unembedding=True), result.tokens_per_s, device),
        "device": device if device == "cpu" else torch.cuda.get_device_name(0) if device.startswith("cuda") else device,
    }


BENCHMARKS = {"tokenizer": bench_tokenizer, "dedup": bench_dedup, "pretrain": bench_pretrain}
