"""Benchmarks: `minilm bench <name>` prints one JSON line of measured figures."""

from __future__ import annotations

import time

import numpy as np

from .core.checks import check_count
from .inference.quantize import quantize_model, quantized_layer_bytes
from .inference.timing import cache_timings, decode_step_seconds, generation_seconds, with_context
from .text.corpus import load_shakespeare
from .text.tokenizer import Tokenizer, bytes_per_token


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
    from .data.dedup import dedup_quality, planted_near_duplicates

    start = time.perf_counter()
    corpus = planted_near_duplicates(n_docs, dup_fraction, seed=seed)
    corpus_seconds = time.perf_counter() - start
    result = dedup_quality(corpus, threshold=0.8, num_perm=128)
    return {**result, "corpus_seconds": round(corpus_seconds, 2)}


# The pretraining benchmark's configurations. "baby" is nanoGPT's character-level Shakespeare model
# (config/train_shakespeare_char.py, with the dropout off): GPT-2 components, 4 layers x 4 heads x
# 128, context 64, batch 12, and like nanoGPT's train.py no biases and the exact GELU. "best" is our
# configuration for a 90-second budget on 2 CPU cores.
PRETRAIN_BENCH_CONFIGS = {
    "baby": dict(style="gpt2", vocab=None, n_layer=4, n_head=4, n_embd=128, seq_len=64, batch_size=12,
                 lr=1e-3, warmup_steps=100, min_lr_ratio=0.1, model=dict(bias=False, gelu_approximate="none")),
    # Tuned on 2 cores (fixed-token and 90-second runs): Muon for the block matrices was the largest
    # gain (2.48 -> 2.23 bits/byte at 1M tokens), a 2048-token BPE beat 1024 and 4096 within 90 s,
    # and batch 32 beat 16 and 64 (Muon's per-step cost favours fewer, larger steps on a CPU). At a
    # fixed 90 s, depth matters more than at fixed tokens: in one session's runs 4 layers gave 2.325,
    # 6 layers 2.422, 2 layers 2.234, and 2 layers with both learning rates doubled 2.219 (1 layer
    # 2.209 but past the budget; untied embeddings, batch 16, width 96, 3x the rates: 2.22-2.24).
    # Weight decay 0.2 beat 0, 0.1 and 0.4 (2.189 against 2.242, 2.206 and 2.222; 0.3 gave 2.189).
    "best": dict(style="modern", vocab=2048, n_layer=2, n_head=4, n_embd=128, seq_len=64, batch_size=32,
                 lr=8e-3, warmup_steps=30, min_lr_ratio=0.0, optimizer="muon", muon_lr=0.04, weight_decay=0.2),
    # The GPU configuration: depth 12 (12 layers x 768 wide, modern components) shaped as nanochat's
    # d12, with 6 heads of 128 and a 2048-token context; 64k tokens per step, bf16 autocast,
    # torch.compile, fused AdamW. It reports MFU; on a CPU it runs, slowly. On an H100 (25 s runs,
    # 2026-11-26): 12 heads of 64 at context 1024 and batch 64 gave 38.1%, 6 heads of 128 39.4%, and
    # 6 heads at context 2048 and batch 32 42.9% (548k tokens/s against 571k: the longer context
    # costs tokens/s but does more attention work per token).
    "d12": dict(style="modern", vocab=8192, n_layer=12, n_head=6, n_embd=768, seq_len=2048, batch_size=32,
                lr=1.5e-3, warmup_steps=50, min_lr_ratio=0.1, compile=True),
}

# "hybrid" is "best" interpolated with a Kneser-Ney 4-gram model of the same training text
# (minilm.models.ngram), counted in about a second. The interpolation weight is fitted on two training
# plays that neither the transformer nor the 4-gram model used for it saw (as the held-out plays
# are new to both); the final 4-gram model then counts all training plays. Modified Kneser-Ney
# scores better alone on the held-out plays (2.178 against 2.199 bits per byte) but mixes worse
# (2.060 and 2.060 against 2.053 and 2.055 in 90-second runs), presumably as its sharper counts
# overlap more with what the transformer already predicts.
PRETRAIN_BENCH_CONFIGS["hybrid"] = {**PRETRAIN_BENCH_CONFIGS["best"], "ngram_order": 4, "ngram_modified": False,
                                    "weight_plays": 2}
# "cached" adds a memory of the play read so far (minilm.models.doc_cache): the counts of the held-out
# play before each token, over histories of 0-3 tokens, mixed into hybrid's prediction. Each token
# is still predicted from the text before it only, but from the whole play so far instead of a
# 64-token window: the names of a new play's characters, unknown to the training text, are known
# after their first lines. The interpolation weight and the cache's betas are fitted on the two
# weight plays (all of their tokens), in the time budget.
PRETRAIN_BENCH_CONFIGS["cached"] = {**PRETRAIN_BENCH_CONFIGS["hybrid"], "cache_order": 4}

# What `minilm bench pretrain --set KEY=VALUE` may change in a configuration, and the value's type:
# one-off variants (a head size, a compile mode, a batch) are measured without editing the code.
PRETRAIN_BENCH_KEYS = {"style": str, "vocab": int, "n_layer": int, "n_head": int, "n_embd": int, "seq_len": int,
                       "batch_size": int, "lr": float, "warmup_steps": int, "min_lr_ratio": float,
                       "optimizer": str, "muon_lr": float, "weight_decay": float, "compile": bool,
                       "compile_mode": str, "ngram_order": int, "ngram_modified": bool, "weight_plays": int,
                       "cache_order": int}


def parse_settings(settings: list[str]) -> dict:
    """``["n_head=6", "compile=false"]`` -> ``{"n_head": 6, "compile": False}``, typed by PRETRAIN_BENCH_KEYS.

    >>> parse_settings(["n_head=6", "lr=3e-3", "compile_mode=max-autotune", "compile=no"])
    {'n_head': 6, 'lr': 0.003, 'compile_mode': 'max-autotune', 'compile': False}
    """
    parsed = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ValueError(f"--set {setting!r}: write KEY=VALUE, e.g. --set n_head=6")
        if key not in PRETRAIN_BENCH_KEYS:
            raise ValueError(f"--set {key}: not a setting of `minilm bench pretrain`; choose one of "
                             f"{', '.join(sorted(PRETRAIN_BENCH_KEYS))}")
        kind = PRETRAIN_BENCH_KEYS[key]
        if kind is bool:
            if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(f"--set {setting!r}: {key} is true or false")
            parsed[key] = text.lower() in ("true", "yes", "1")
            continue
        try:
            parsed[key] = kind(text)
        except ValueError:
            raise ValueError(f"--set {setting!r}: {key} must be {'a whole number' if kind is int else 'a number'}") from None
    return parsed


# Steps that count as warm-up in a benchmark's throughput (compilation, allocation, kernel choice).
WARMUP_STEPS = 10


def summary_table(lines) -> str:
    """A short table of ``minilm bench pretrain`` results, one JSON line each: settings, steady
    tokens/s and MFU; lines that are not a result (a failed run's output) are skipped.

    >>> print(summary_table(['{"config": {"name": "d12", "settings": {"n_head": 6}}, "steady_tokens_per_s": 600000, '
    ...                      '"mfu": 0.401, "val_bpb": 2.4, "device": "H100"}', 'Traceback']))
    config  settings  steady tokens/s  MFU    val bpb  device
    d12     n_head=6          600,000  40.1%  2.400    H100
    """
    import json

    rows = [("config", "settings", "steady tokens/s", "MFU", "val bpb", "device")]
    for line in lines:
        try:
            result = json.loads(line)
            config = result["config"]
        except (ValueError, TypeError, KeyError):
            continue
        settings = " ".join(f"{k}={v}" for k, v in config.get("settings", {}).items()) or "as committed"
        mfu = result.get("mfu")
        rows.append((config["name"], settings, f"{result['steady_tokens_per_s']:,}",
                     "n/a" if mfu is None else f"{mfu:.1%}", f"{result['val_bpb']:.3f}", result["device"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2}  # numbers line up on the right
    return "\n".join("  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in
                               enumerate(zip(row, widths))).rstrip() for row in rows)


def play_starts(docs, ids: np.ndarray, byte_lengths: np.ndarray) -> list[int]:
    """Where each play of ``docs`` starts in ``ids``, the encoding of their texts joined: the first
    token that starts at or after the play's first byte.

    >>> from minilm.text.corpus import Document
    >>> docs = [Document("a", "comedies", "A, I", "ab", "train"), Document("a", "comedies", "A, II", "c", "train"),
    ...         Document("b", "comedies", "B, I", "de", "train")]
    >>> play_starts(docs, np.array([0, 1, 2, 3]), byte_lengths=np.array([2, 1, 1, 1]))  # "ab" "c" "d" "e"
    [0, 2]
    """
    token_starts = np.concatenate([[0], np.cumsum(byte_lengths[ids])[:-1]])
    starts, offset, previous = [], 0, None
    for doc in docs:
        if doc.play != previous:
            starts.append(int(np.searchsorted(token_starts, offset)))
            previous = doc.play
        offset += len(doc.text.encode("utf-8"))
    return sorted({s for s in starts if s < len(ids)})


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
                   eval_tokens: int | None = None, settings: dict | None = None) -> dict:
    """Train on the training plays for about ``seconds``, then measure bits per byte on the held-out
    plays (all of them, or their first ``eval_tokens`` tokens). ``settings`` change the
    configuration's entries (see ``parse_settings``); the result's config shows them.

    ``val_bpb``, the headline, is always the transformer's own. With an n-gram model ("hybrid")
    the result adds ``ngram_val_bpb`` and ``hybrid_val_bpb`` (the two interpolated); with the
    document cache ("cached") also ``cached_val_bpb``: tricks around the model, reported beside it.

    The schedule ends with the time (``TrainConfig.max_seconds``); ``seconds`` in the result is the
    time the run took, data preparation and evaluation excluded. With an n-gram model in the
    configuration ("hybrid"), counting it and fitting the interpolation weight count in ``seconds``
    too, and are taken from the training time.
    """
    import torch

    from .core.device import best_device, device_name, mfu
    from .models.doc_cache import cache_probs, cache_statistics, fit_cache
    from .models.gpt import GPT, GPTConfig
    from .models.ngram import KneserNey, fit_interpolation, interpolation_weight, window_target_probs
    from .models.train import TrainConfig, bits_per_byte, evaluate, token_byte_lengths, train

    if config not in PRETRAIN_BENCH_CONFIGS:
        raise ValueError(f"config={config!r}: choose one of {sorted(PRETRAIN_BENCH_CONFIGS)}")
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be positive")
    unknown = sorted(set(settings or {}) - set(PRETRAIN_BENCH_KEYS))
    if unknown:
        raise ValueError(f"settings {unknown} are not settings of a pretraining benchmark")
    c = {**PRETRAIN_BENCH_CONFIGS[config], **(settings or {})}
    if c["style"] not in ("modern", "gpt2"):
        raise ValueError(f"style={c['style']!r}: choose 'modern' or 'gpt2'")
    if c.get("cache_order") and not c.get("ngram_order"):
        raise ValueError("cache_order needs ngram_order: the cache mixes its counts into the transformer + "
                         "n-gram mixture (as in the 'cached' configuration)")
    device = device or best_device()
    train_docs = [doc for doc in load_shakespeare() if doc.split == "train"]
    train_text = "".join(doc.text for doc in train_docs)
    val_docs = [doc for doc in load_shakespeare() if doc.split == "val"]
    tokenizer = CharTokenizer(train_text) if c["vocab"] is None else Tokenizer.train([d.text for d in train_docs], c["vocab"])
    train_ids = np.array(tokenizer.encode(train_text), dtype=np.int64)
    val_ids = np.array(tokenizer.encode("".join(doc.text for doc in val_docs)), dtype=np.int64)
    byte_lengths = token_byte_lengths(tokenizer)
    gpt_train_ids, ngram_seconds = train_ids, 0.0
    if c.get("ngram_order"):
        # The last training plays are held out from the transformer and from the n-gram model
        # that the interpolation weight is fitted with; the final n-gram model counts them too.
        plays = list(dict.fromkeys(doc.play for doc in train_docs))
        n_weight_plays = c.get("weight_plays", 2)
        if not 1 <= n_weight_plays < len(plays):
            raise ValueError(f"weight_plays={n_weight_plays}: choose 1 to {len(plays) - 1} of the "
                             f"{len(plays)} training plays to fit the interpolation weight on")
        weight_plays = set(plays[-n_weight_plays:])
        gpt_train_ids = np.array(tokenizer.encode("".join(d.text for d in train_docs if d.play not in weight_plays)), dtype=np.int64)
        weight_docs = [d for d in train_docs if d.play in weight_plays]
        weight_ids = np.array(tokenizer.encode("".join(d.text for d in weight_docs)), dtype=np.int64)
        started = time.perf_counter()
        order, modified = c["ngram_order"], c.get("ngram_modified", False)
        weight_ngram = KneserNey(gpt_train_ids, tokenizer.vocab_size, order, modified=modified)
        ngram = KneserNey(train_ids, tokenizer.vocab_size, order, modified=modified).to(device)
        ngram_seconds = time.perf_counter() - started
    preset = GPTConfig.gpt2 if c["style"] == "gpt2" else GPTConfig.modern
    model_config = preset(vocab_size=tokenizer.vocab_size, n_layer=c["n_layer"], n_head=c["n_head"],
                          n_embd=c["n_embd"], block_size=c["seq_len"], **c.get("model", {}))

    def run(max_seconds: float, steps: int = 10**7):
        torch.manual_seed(seed)
        model = GPT(model_config)
        cfg = TrainConfig(steps=steps, batch_size=c["batch_size"], seq_len=c["seq_len"], lr=c["lr"],
                          warmup_steps=c["warmup_steps"], min_lr_ratio=c["min_lr_ratio"],
                          weight_decay=c.get("weight_decay", 0.1), optimizer=c.get("optimizer", "adamw"),
                          muon_lr=c.get("muon_lr", 0.02), compile=c.get("compile", False),
                          compile_mode=c.get("compile_mode", "default"), eval_every=0, seed=seed,
                          max_seconds=max_seconds)
        return model, train(model, gpt_train_ids, cfg, device=device, progress=False, log_every=WARMUP_STEPS)

    def fit_weight(model) -> tuple[dict, float]:
        """The interpolation weight (and the cache's betas), fitted on the weight plays; the time taken."""
        started = time.perf_counter()
        if not c.get("cache_order"):
            fitted = {"weight": fit_interpolation(model, weight_ngram.to(device), weight_ids, c["seq_len"], device=device)}
            return fitted, time.perf_counter() - started
        positions, p_model = window_target_probs(model, weight_ids, c["seq_len"], device=device)
        _, p_ngram = window_target_probs(weight_ngram.to(device), weight_ids, c["seq_len"], device=device)
        weight = interpolation_weight(p_model, p_ngram)
        stats = cache_statistics(weight_ids, c["cache_order"], play_starts(weight_docs, weight_ids, byte_lengths),
                                 tokenizer.vocab_size)
        betas = fit_cache(weight * p_model + (1 - weight) * p_ngram, stats[:, :, positions])
        return {"weight": weight, "betas": betas}, time.perf_counter() - started

    # The run trains for the time left and its schedule ends with that time (TrainConfig.max_seconds):
    # planning a number of steps from a short timing run instead gave runs of 75-104 s for 90, as
    # the machine's speed changed. A compiled model compiles in a short run first, so the timed
    # run finds the compiled code in the cache.
    if c.get("compile"):
        run(0.0, steps=2 * WARMUP_STEPS)
    # The fits after training take time from the budget: timed here on an untrained model, the
    # second time (the first pays one-off start-up costs, about 1.5 s for the cache's fit).
    reserved = ngram_seconds + ([fit_weight(GPT(model_config))[1] for _ in range(2)][-1] if c.get("ngram_order") else 0.0)
    model, result = run(max(seconds - reserved, 1e-3))
    steps = result.history[-1]["step"]
    eval_tokens = eval_tokens or len(val_ids)

    extra, total_seconds = {}, result.seconds
    if not c.get("ngram_order"):
        final_bpb = evaluate(model, val_ids, c["seq_len"], 64, eval_tokens, byte_lengths, device)["bpb"]
    else:
        fitted, weight_seconds = fit_weight(model)
        total_seconds += ngram_seconds + weight_seconds
        weight = fitted["weight"]
        # Each model's probability of every predicted token, on evaluate's windows, read once: the
        # figures of the parts, of their mixture and (with the cache) of the cached mixture follow.
        positions, p_model = window_target_probs(model, val_ids, c["seq_len"], eval_tokens, device=device)
        _, p_ngram = window_target_probs(ngram, val_ids, c["seq_len"], eval_tokens, device=device)
        mixture = weight * p_model + (1 - weight) * p_ngram
        targets = val_ids[positions]
        # The headline stays the transformer's own figure; what the n-gram model (and the cache)
        # add is reported beside it, not in its place.
        final_bpb = bits_per_byte(p_model, targets, byte_lengths)
        extra = {"ngram_val_bpb": round(bits_per_byte(p_ngram, targets, byte_lengths), 3),
                 "hybrid_val_bpb": round(bits_per_byte(mixture, targets, byte_lengths), 3),
                 "interpolation_weight": round(weight, 3), "ngram_seconds": round(ngram_seconds + weight_seconds, 1)}
    if c.get("cache_order"):
        # Scored token by token: the windows' mixture, then the counts of the play read so far.
        stats = cache_statistics(val_ids, c["cache_order"], play_starts(val_docs, val_ids, byte_lengths), tokenizer.vocab_size)
        extra.update(cached_val_bpb=round(bits_per_byte(cache_probs(mixture, stats[:, :, positions], fitted["betas"]),
                                                        targets, byte_lengths), 3),
                     cache_betas=[round(b, 2) for b in fitted["betas"]])
    flops = model.flops_per_token(c["seq_len"], unembedding=True)
    steady = result.tokens_per_s_after(WARMUP_STEPS) if steps >= 2 * WARMUP_STEPS else result.tokens_per_s
    return {
        "config": {"name": config, **c, **({"settings": settings} if settings else {}),
                   "vocab_size": tokenizer.vocab_size, "steps": steps,
                   "params": model.num_params(), "flops_per_token": flops},
        "seconds": round(total_seconds, 1),
        "tokens_per_s": round(result.tokens_per_s),
        "val_bpb": round(final_bpb, 3),
        **extra,
        # MFU from the throughput after the warm-up steps (as nanoGPT leaves out its first iterations)
        "mfu": mfu(flops, steady, device),
        "device": device_name(device),
        "steady_tokens_per_s": round(steady),
        "warmup_seconds": round(result.history[0]["seconds"], 1),
        "attention_kernels": attention_kernels(model, c["seq_len"], device),
    }


def attention_kernels(model, seq_len: int, device: str) -> list[str]:
    """Which attention kernels one training forward of ``model`` runs (bf16 autocast on CUDA), as
    PyTorch dispatches them: ``aten::_scaled_dot_product_flash_attention`` is FlashAttention on a
    GPU (``..._for_cpu`` its CPU version); the efficient or math kernels mean flash was not eligible."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class DispatchedOps(TorchDispatchMode):  # sees every aten operator after autocast and decomposition
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func._schema.name)
            return func(*args, **(kwargs or {}))

    x = torch.zeros(1, seq_len, dtype=torch.long, device=device)
    device_type = torch.device(device).type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"), DispatchedOps() as ops:
        model(x, x)
    return sorted(name for name in ops.names if name.startswith("aten::_scaled_dot_product"))


def bench_generate(budget: str | None = None, new_tokens: int = 512, batch_size: int = 32, prompt_tokens: int = 8,
                   repeats: int = 3, eval_tokens: int | None = None, device: str | None = None) -> dict:
    """Inference figures of the budget's base model (built if missing), greedy decoding.

    * ``kv_speedup``: time to generate ``new_tokens`` tokens after a ``prompt_tokens`` prompt without
      the KV cache (every step recomputes the whole sequence) over the time with it (batch 1). When
      prompt + new tokens pass the model's ``block_size`` (the laptop model is trained on 64-token
      windows), the timing runs on the same weights with the RoPE tables extended (``with_context``),
      and ``kv_speedup_in_block`` adds the speed-up for what fits in the trained context. A model
      with learned positions cannot run past them: it is timed on what fits (``timed_tokens``).
    * ``decode_tokens_per_s``: new tokens per second of that cached batch-1 run (prefill included);
      ``int8_decode_tokens_per_s`` the same with int8 weights (``minilm.inference.quantize``).
    * ``batch_tokens_per_s``: new tokens per second over ``batch_size`` prompts decoded together.
    * ``decode_step_ms``: one cached decode step at batch 1 through ``GPT.forward`` and through the
      engine's flat ``DecodeStep`` (:func:`decode_step_seconds`), which the cached timings above use.
    * ``int8_size_ratio``: bytes of the int8 linear layers (and scales) over their fp32 bytes.
    * ``int8_bpb_delta``: relative change of validation bits per byte (int8 / fp32 - 1) over the
      budget's validation tokens of the mixture as trained (every source's first ``eval_tokens``,
      default all), as ``minilm.stages.pretrain`` measures them; prompts are pieces of the held-out plays.
    """
    import torch

    from .stages import pretrain
    from .core.config import get_budget
    from .core.device import best_device, device_name
    from .stages.pretrain import load_tokens
    from .models.train import evaluate, token_byte_lengths

    for name, value in (("new_tokens", new_tokens), ("batch_size", batch_size), ("prompt_tokens", prompt_tokens),
                        ("repeats", repeats)):
        check_count(name, value)
    budget = get_budget(budget)
    device = device or best_device()
    model, tokenizer, _ = pretrain.artifact(budget, progress=False)
    model = model.to(device).eval()
    _, val_tokens, _ = load_tokens(budget, progress=False)
    plays = val_tokens["shakespeare"]
    block = model.config.block_size
    if prompt_tokens >= block:
        raise ValueError(f"prompt_tokens={prompt_tokens} must be shorter than block_size={block}")
    if len(plays) < batch_size * prompt_tokens:
        raise ValueError(f"{len(plays)} validation tokens are too few for {batch_size} prompts")
    # Prompts are real text: consecutive pieces of the held-out plays.
    prompts = [[int(t) for t in plays[i * prompt_tokens : (i + 1) * prompt_tokens]] for i in range(batch_size)]

    in_block = min(new_tokens, block - prompt_tokens)
    timed = new_tokens if model.config.position == "rope" else in_block
    timing_model = with_context(model, prompt_tokens + timed)
    uncached, cached = cache_timings(timing_model, prompts[:1], timed, repeats)
    batched = generation_seconds(timing_model, prompts, timed, repeats=repeats)
    speedup_in_block = uncached / cached
    if timing_model is not model:
        in_block_uncached, in_block_cached = cache_timings(model, prompts[:1], in_block, repeats)
        speedup_in_block = in_block_uncached / in_block_cached
    int8_cached = generation_seconds(quantize_model(timing_model), prompts[:1], timed, repeats=repeats)
    forward_step, flat_step = decode_step_seconds(timing_model, prompt_tokens, timed)

    int8 = quantize_model(model)
    fp32_bytes, int8_bytes = quantized_layer_bytes(model, int8)
    byte_lengths = token_byte_lengths(tokenizer)
    n_eval = eval_tokens or max(len(t) for t in val_tokens.values())  # per source; bpb is the mixture's
    bpb = evaluate(model, val_tokens, block, 64, n_eval, byte_lengths, device)["bpb"]
    int8_bpb = evaluate(int8, val_tokens, block, 64, n_eval, byte_lengths, device)["bpb"]
    return {
        "kv_speedup": round(uncached / cached, 2),
        "decode_tokens_per_s": round(timed / cached, 1),
        "batch_tokens_per_s": round(batch_size * timed / batched, 1),
        "int8_size_ratio": round(int8_bytes / fp32_bytes, 4),
        "int8_bpb_delta": float(f"{int8_bpb / bpb - 1:.3g}"),
        "kv_speedup_in_block": round(speedup_in_block, 2),
        "int8_decode_tokens_per_s": round(timed / int8_cached, 1),
        "decode_step_ms": {"forward": round(1e3 * forward_step, 3), "flat": round(1e3 * flat_step, 3)},
        "val_bpb": round(bpb, 4),
        "int8_val_bpb": round(int8_bpb, 4),
        "config": {"budget": budget.name, "new_tokens": new_tokens, "prompt_tokens": prompt_tokens,
                   "timed_tokens": timed, "batch_size": batch_size, "repeats": repeats, "block_size": block,
                   "timing_block_size": timing_model.config.block_size, "tokens_in_block": in_block,
                   "eval_tokens": sum(min(n_eval, len(t)) for t in val_tokens.values()), "params": model.num_params(),
                   "threads": torch.get_num_threads()},
        "device": device_name(device),
    }


BENCHMARKS = {"tokenizer": bench_tokenizer, "dedup": bench_dedup, "pretrain": bench_pretrain,
              "generate": bench_generate}
