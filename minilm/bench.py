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


BENCHMARKS = {"tokenizer": bench_tokenizer, "dedup": bench_dedup}
