"""Timing inference: greedy generation with and without the KV cache, one decode step two ways, and a
model's rotary tables stretched so that long generations can be timed on a short-context model.

The measurements behind chapter 06, ``minilm bench generate`` and the int8 comparison in
:mod:`minilm.inference.quantize`. Each takes the best (or median) of several runs, and paired runs alternate, so a
slow spell of a shared machine weighs on both sides of a ratio.

>>> from minilm.models.gpt import GPT, GPTConfig
>>> model = GPT(GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=1, n_embd=16)).eval()
>>> generation_seconds(model, [[1, 2]], new_tokens=4, repeats=1) > 0
True
"""

from __future__ import annotations

import time


def generation_seconds(model, prompts: list[list[int]], new_tokens: int, use_cache: bool = True,
                       repeats: int = 3) -> float:
    """Seconds to generate ``new_tokens`` greedy tokens for each prompt: the best of ``repeats`` runs
    after a short warm-up (the machine's other load only ever adds time)."""
    import torch

    from .generate import generate

    if new_tokens < 1 or repeats < 1:
        raise ValueError(f"new_tokens={new_tokens} and repeats={repeats} must be >= 1")
    best = float("inf")
    with torch.no_grad():
        generate(model, prompts, min(2, new_tokens), use_cache=use_cache)  # first-call allocations
        for _ in range(repeats):
            start = time.perf_counter()
            out = generate(model, prompts, new_tokens, use_cache=use_cache)
            best = min(best, time.perf_counter() - start)
    if any(len(row) != new_tokens for row in out):
        raise RuntimeError(f"generation stopped early: {[len(row) for row in out]} tokens of {new_tokens}")
    return best


def cache_timings(model, prompts: list[list[int]], new_tokens: int, repeats: int = 3) -> tuple[float, float]:
    """Seconds to generate without and with the KV cache, ``(uncached, cached)``, each the best of
    ``repeats`` runs. The runs alternate (uncached, cached, uncached, ...) so that a change in the
    machine's speed during the measurement weighs on both sides of the ratio alike."""
    uncached = cached = float("inf")
    for _ in range(repeats):
        uncached = min(uncached, generation_seconds(model, prompts, new_tokens, use_cache=False, repeats=1))
        cached = min(cached, generation_seconds(model, prompts, new_tokens, repeats=1))
    return uncached, cached


def decode_step_seconds(model, prompt_tokens: int = 8, steps: int = 256, repeats: int = 5) -> tuple[float, float]:
    """Seconds per cached decode step at batch 1 through ``model.forward`` and through the engine's
    flat :class:`minilm.inference.decode_step.DecodeStep`, ``(forward, flat)``: the median of ``repeats`` runs of
    ``steps`` steps each, the two kinds interleaved so that the machine's slow spells hit both.

    Both write the same cache slots (positions ``prompt_tokens`` onwards), which a timing allows.
    """
    import statistics

    import torch

    from .decode_step import DecodeStep
    from ..models.gpt import KVCache

    if min(prompt_tokens, steps, repeats) < 1 or prompt_tokens + steps > model.config.block_size:
        raise ValueError(f"prompt_tokens={prompt_tokens} + steps={steps} must fit block_size="
                         f"{model.config.block_size}, and repeats={repeats} must be >= 1")
    device = next(model.parameters()).device
    flat = DecodeStep(model)
    cache = KVCache(model.config, 1, prompt_tokens + steps, device=device, dtype=next(model.parameters()).dtype)
    prompt = torch.arange(prompt_tokens, device=device)[None] % model.config.vocab_size
    token = prompt[:, -1:]
    runs = {"forward": lambda p: model(token, cache=cache, start=p, last_only=True), "flat": lambda p: flat(token, cache, p)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        model(prompt, cache=cache, start=0)
        for _ in range(repeats):
            for name, run in runs.items():
                begin = time.perf_counter()
                for position in range(prompt_tokens, prompt_tokens + steps):
                    run(position)
                times[name].append((time.perf_counter() - begin) / steps)
    return statistics.median(times["forward"]), statistics.median(times["flat"])


def with_context(model, block_size: int):
    """The same weights in a model whose RoPE tables reach ``block_size`` positions (timing only).

    Rotary positions are computed, not learned, so a model trained on short windows runs on longer
    ones: the work per token is that of a real model of this context, though the text it writes past
    its training context is out of distribution. Learned position tables cannot be extended.
    """
    from ..models.gpt import GPT

    if block_size <= model.config.block_size:
        return model
    if model.config.position != "rope":
        raise ValueError(f"position={model.config.position!r}: only RoPE models run past block_size="
                         f"{model.config.block_size}")
    longer = GPT(model.config.with_overrides(block_size=block_size))
    longer.load_state_dict(model.state_dict())  # the RoPE tables are buffers that are not saved
    return longer.to(next(model.parameters()).device).eval()
