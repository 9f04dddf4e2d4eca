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


BENCHMARKS = {"tokenizer": bench_tokenizer}
