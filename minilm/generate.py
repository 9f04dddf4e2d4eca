"""Sampling from a GPT: greedy, temperature, top-k and top-p (nucleus), with the KV cache.

``generate`` works on token ids: a batch of prompts of equal length is prefilled in one forward
pass, then one token per step reuses the cached keys and values, so each new token costs one
position's work instead of the whole sequence's. ``complete`` works on strings: it groups prompts
by token length, generates, and decodes up to a stop string.

>>> import torch
>>> from minilm.model import GPT, GPTConfig
>>> _ = torch.manual_seed(0)
>>> model = GPT(GPTConfig.modern(vocab_size=50, n_layer=1, n_embd=32, n_head=2, block_size=16))
>>> out = generate(model, [[1, 2, 3]], max_new_tokens=4)
>>> len(out[0]), out == generate(model, [[1, 2, 3]], max_new_tokens=4, use_cache=False)
(4, True)
"""

from __future__ import annotations

from collections import defaultdict

import torch

from .model import KVCache


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of ``logits`` (B, vocab). ``temperature=0`` is greedy (argmax).

    top-k keeps the k most likely tokens; top-p keeps the smallest set whose probability reaches p
    (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration").

    >>> sample_next(torch.tensor([[0.0, 3.0, 1.0]]), temperature=0).tolist()
    [1]
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0 (0 means greedy)")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be >= 1")
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p={top_p} must be in (0, 1]")
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens before it already reach top_p (the first one always stays).
        drop = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model, prompts: list[list[int]], max_new_tokens: int, temperature: float = 0.0, top_k: int | None = None,
             top_p: float | None = None, stop_ids: tuple[int, ...] = (), seed: int | None = None,
             use_cache: bool = True) -> list[list[int]]:
    """New tokens (without the prompt) for each of a batch of equal-length prompts.

    A row stops after a token in ``stop_ids`` (kept in its output). When prompt plus output would
    pass the model's ``block_size``, the context slides (the cache is not used then).
    """
    if not prompts:
        return []
    lengths = {len(p) for p in prompts}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"prompts must be non-empty and of equal length; got lengths {sorted(lengths)} (use complete())")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 0")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    block = model.config.block_size
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    ids = torch.tensor(prompts, dtype=torch.long, device=device)
    T0 = ids.shape[1]
    use_cache = use_cache and T0 + max_new_tokens <= block
    cache = KVCache(model.config, len(prompts), T0 + max_new_tokens, device=device,
                    dtype=next(model.parameters()).dtype) if use_cache else None
    out = [[] for _ in prompts]
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    stops = torch.tensor(sorted(set(stop_ids)), dtype=torch.long, device=device)
    for i in range(max_new_tokens):
        if cache is not None:
            step_input, start = (ids, 0) if i == 0 else (ids[:, -1:], ids.shape[1] - 1)
            logits, _ = model(step_input, cache=cache, start=start)
        else:
            logits, _ = model(ids[:, -block:])
        token = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
        for row in (~done).nonzero().flatten().tolist():
            out[row].append(int(token[row]))
        ids = torch.cat([ids, token[:, None]], dim=1)
        if len(stops):
            done |= torch.isin(token, stops)
            if bool(done.all()):
                break
    model.train(was_training)
    return out


def complete(model, tokenizer, prompts: list[str], max_new_tokens: int = 32, stop: str | None = None,
             batch_size: int = 64, **sampling) -> list[str]:
    """Continue each prompt string; the text is cut at the first ``stop`` string (not included).

    Prompts of equal token length share a batch, so a probe of hundreds of short prompts takes a
    handful of forward passes per token.
    """
    encoded = [tokenizer.encode(p) for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(encoded):
        groups[len(ids)].append(index)
    stop_ids = ()
    if stop is not None:
        # Stop as soon as a token containing the stop string appears (e.g. any token with a newline).
        stop_ids = tuple(i for i, token in tokenizer.vocab.items() if stop.encode() in token)
    texts = [""] * len(prompts)
    for _, indices in sorted(groups.items()):
        for first in range(0, len(indices), batch_size):
            chunk = indices[first : first + batch_size]
            outputs = generate(model, [encoded[i] for i in chunk], max_new_tokens, stop_ids=stop_ids, **sampling)
            for i, ids in zip(chunk, outputs):
                text = tokenizer.decode(ids)
                texts[i] = text.split(stop)[0] if stop is not None else text
    return texts
