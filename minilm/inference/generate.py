"""Sampling from a GPT: greedy, temperature, top-k, top-p, min-p, the KV cache, batching, tools.

The engine, bottom up:

- ``filtered_probs`` / ``sample_next``: the next-token distribution reshaped by temperature,
  top-k, top-p (nucleus) and min-p, and one draw from it (greedy at temperature 0).
- ``generate_tokens``: the decoding loop. Prompts of different lengths share one batch, padded
  on the left, so every row's last prompt token sits in the same slot. The model gets each row's
  padding count: padding slots are hidden from attention and positions count from each row's
  first real token, so a row is computed as if it were alone. The prompt is prefilled in one
  forward pass into a preallocated per-layer KV cache, then each step feeds one token per row and
  reuses the cached keys and values: a new token costs one position's work, not the whole
  sequence's. Those steps run through ``minilm.inference.decode_step.DecodeStep``, the model's forward as
  a flat list of ops (identical logits; at batch 1 on a CPU the per-op overhead of the general
  forward is as large as the arithmetic). It yields each step's tokens, which is what streaming needs.
- ``generate`` (token ids) and ``complete`` (strings) collect the tokens; ``stream`` yields the
  decoded text of one prompt as it is produced, never half a UTF-8 character.
- ``CalculatorTool``: when the model writes ``<|calc_start|>EXPR<|calc_end|>``, the engine
  evaluates EXPR with :func:`minilm.core.calculator.evaluate` and forces
  ``<|result_start|>VALUE<|result_end|>`` into the row before sampling goes on.

>>> import torch
>>> from minilm.models.gpt import GPT, GPTConfig
>>> _ = torch.manual_seed(0)
>>> model = GPT(GPTConfig.modern(vocab_size=50, n_layer=1, n_embd=32, n_head=2, block_size=16))
>>> out = generate(model, [[1, 2, 3], [4]], max_new_tokens=4)
>>> [len(row) for row in out], out == generate(model, [[1, 2, 3], [4]], max_new_tokens=4, use_cache=False)
([4, 4], True)
>>> out[1] == generate(model, [[4]], max_new_tokens=4)[0]  # a row in a batch = the same prompt alone
True
"""

from __future__ import annotations

import codecs
import math
from collections import deque
from fractions import Fraction
from typing import Iterator, Sequence

import torch

from ..core.calculator import evaluate
from ..core.checks import check_count
from ..models.gpt import KVCache
from ..text.tokenizer import CALC_END, CALC_START, RESULT_END, RESULT_START
from .decode_step import DecodeStep, applies_to

# ----------------------------------------------------------------------------------------------
# Sampling


def check_sampling(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                   min_p: float | None = None) -> None:
    """Raise a ValueError naming the first bad sampling setting.

    >>> check_sampling(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05)
    >>> check_sampling(top_p=1.5)
    Traceback (most recent call last):
    ...
    ValueError: top_p=1.5 must be in (0, 1]
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0 \
            or math.isinf(temperature):
        raise ValueError(f"temperature={temperature!r} must be a finite number >= 0 (0 means greedy)")
    if top_k is not None:
        check_count("top_k", top_k, note=" (or None: no top-k)")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} must be in (0, 1]")
    if min_p is not None and (isinstance(min_p, bool) or not isinstance(min_p, (int, float)) or not 0 <= min_p <= 1):
        raise ValueError(f"min_p={min_p!r} must be in [0, 1]")


def filtered_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, min_p: float | None = None) -> torch.Tensor:
    """The distribution ``sample_next`` draws from, (B, vocab), for logits (B, vocab).

    In order: divide the logits by ``temperature`` (< 1 sharpens, > 1 flattens; 0 puts all the
    mass on the argmax); keep the ``top_k`` most likely tokens; keep the smallest set of tokens
    whose probability reaches ``top_p`` (Holtzman et al. 2019, "The Curious Case of Neural Text
    Degeneration"); keep the tokens at least ``min_p`` times as likely as the most likely one
    (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling"), a cut that follows the model's
    confidence. What is kept is renormalised.

    >>> logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    >>> [round(p, 4) for p in filtered_probs(logits, top_k=2)[0].tolist()]
    [0.625, 0.375, 0.0, 0.0]
    >>> [round(p, 4) for p in filtered_probs(logits, min_p=0.25)[0].tolist()]  # keeps p >= 0.25 * 0.5
    [0.5263, 0.3158, 0.1579, 0.0]
    >>> filtered_probs(logits, temperature=0).tolist()
    [[1.0, 0.0, 0.0, 0.0]]
    """
    check_sampling(temperature, top_k, top_p, min_p)
    if logits.dim() != 2:
        raise ValueError(f"logits must be (batch, vocab), got shape {tuple(logits.shape)}")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.size(-1)).float()
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens before it already reach top_p (the first one always stays).
        drop = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    if min_p is not None:
        probs = logits.softmax(dim=-1)
        logits = logits.masked_fill(probs < min_p * probs.max(dim=-1, keepdim=True).values, float("-inf"))
    return logits.softmax(dim=-1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None, min_p: float | None = None) -> torch.Tensor:
    """One token per row of ``logits`` (B, vocab), drawn from :func:`filtered_probs`.

    ``temperature=0`` is greedy (argmax). ``generator`` makes draws reproducible (a seed).

    >>> sample_next(torch.tensor([[0.0, 3.0, 1.0]]), temperature=0).tolist()
    [1]
    """
    if temperature == 0:
        check_sampling(temperature, top_k, top_p, min_p)
        return logits.argmax(dim=-1)
    probs = filtered_probs(logits, temperature, top_k, top_p, min_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ----------------------------------------------------------------------------------------------
# The calculator tool


def format_number(value: Fraction, places: int = 6) -> str:
    """How a calculator result is written for the model: integers exactly, other values as decimals
    rounded to ``places`` places (ties to even) without trailing zeros.

    >>> [format_number(Fraction(n, d)) for n, d in [(579, 1), (-7, 2), (2, 3), (1, 8), (-1, 10**9)]]
    ['579', '-3.5', '0.666667', '0.125', '0']
    """
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    scaled = round(value * 10**places)
    whole, fraction = divmod(abs(scaled), 10**places)
    text = f"{whole}.{fraction:0{places}d}".rstrip("0").rstrip(".")
    return text if scaled >= 0 or text == "0" else "-" + text


def calculator_result(expression: str) -> str:
    """The text the engine writes between result tokens for a call on ``expression``.

    The value of :func:`minilm.core.calculator.evaluate` as :func:`format_number` writes it (integers
    as integers, e.g. ``579``; other fractions as decimals with at most 6 places, e.g. ``0.666667``).
    An expression that cannot be evaluated gives ``error: <why>`` for the model to read; this
    function never raises.

    >>> calculator_result("123+456"), calculator_result("10 / 4"), calculator_result("1/0")
    ('579', '2.5', 'error: division by zero')
    """
    try:
        return format_number(evaluate(expression))
    # The expression is text a model wrote: whatever it makes the evaluator fail with (CalculatorError,
    # or e.g. OverflowError for "1e999") is an answer the model reads, never a crash of the generation.
    except (ValueError, ArithmeticError, RecursionError) as err:
        return f"error: {err or type(err).__name__}"


class CalculatorTool:
    """Watches each row's tokens; after ``<|calc_start|>EXPR<|calc_end|>`` it gives the tokens of
    ``<|result_start|>VALUE<|result_end|>`` for the engine to force into that row.

    >>> from minilm.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("12 + 30 = 42", vocab_size=300)
    >>> tool = CalculatorTool(tok)
    >>> call = tok.encode("Sum: <|calc_start|>12+30<|calc_end|>", allowed_special="all")
    >>> tok.decode(tool.after(call))
    '<|result_start|>42<|result_end|>'
    >>> tool.after(tok.encode("12+30")), tool.after(call + tool.after(call))  # no open call: nothing
    ([], [])
    """

    special_tokens = (CALC_START, CALC_END, RESULT_START, RESULT_END)

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.start_id, self.end_id, self.result_start_id, self.result_end_id = (
            tokenizer.special_id(t) for t in self.special_tokens)

    def after(self, tokens: Sequence[int]) -> list[int]:
        """Tokens to force after ``tokens`` (a row so far): a result if the last token closes a call."""
        if not tokens or tokens[-1] != self.end_id:
            return []
        for i in range(len(tokens) - 2, -1, -1):
            if tokens[i] == self.end_id:  # the last call was already closed: this one never opened
                return []
            if tokens[i] == self.start_id:
                value = calculator_result(self.tokenizer.decode(tokens[i + 1 : -1]))
                return [self.result_start_id, *self.tokenizer.encode(value), self.result_end_id]
        return []


# ----------------------------------------------------------------------------------------------
# The decoding loop


def generate_tokens(model, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 0.0,
                    top_k: int | None = None, top_p: float | None = None, stop_ids: Sequence[int] = (),
                    seed: int | None = None, use_cache: bool = True, min_p: float | None = None,
                    tools: CalculatorTool | None = None) -> Iterator[list[int | None]]:
    """Yield, after each decoding step, the new token of every row (``None`` once a row stopped).

    Prompts may have different lengths (they are padded on the left, see the module docstring).
    A row stops after a sampled token in ``stop_ids`` (that token is still yielded). With
    ``tools``, tokens the tool forces (calculator results) are yielded like sampled ones and count
    towards ``max_new_tokens``; they never stop a row. Once a sequence would pass the model's
    ``block_size`` the context slides: each step recomputes the last ``block_size`` tokens without
    the cache. Arguments are checked when this is called, before the first step.
    """
    check_sampling(temperature, top_k, top_p, min_p)
    check_count("max_new_tokens", max_new_tokens, 0)
    try:
        prompts = [list(p) for p in prompts]
    except TypeError:
        raise ValueError("prompts must be a list of prompts, each a list of token ids, e.g. [[1, 2, 3]]") from None
    if any(len(p) == 0 for p in prompts):
        raise ValueError(f"prompts must be non-empty; got lengths {[len(p) for p in prompts]}")
    vocab = model.config.vocab_size
    for p in prompts:
        # The ids become a long tensor, which would silently truncate 1.7 to 1.
        bad = [t for t in p if not _is_whole(t)]
        if bad:
            raise ValueError(f"prompt token ids must be whole numbers; got {bad[0]!r}")
        if min(p) < 0 or max(p) >= vocab:
            raise ValueError(f"prompt token ids must be in [0, {vocab}); got {min(p)}..{max(p)}")
    return _decode_steps(model, prompts, max_new_tokens, temperature, top_k, top_p, min_p, stop_ids, seed,
                         use_cache, tools)


def _is_whole(value) -> bool:
    try:
        return not isinstance(value, bool) and float(value).is_integer()
    except (TypeError, ValueError):
        return False


# Inference mode, not just no_grad: tensors skip autograd's version counters and views, which at
# batch 1 (where a decode step is a few hundred small ops) measurably shortens every step.
@torch.inference_mode()
def _decode_steps(model, prompts, max_new_tokens, temperature, top_k, top_p, min_p, stop_ids, seed, use_cache,
                  tools) -> Iterator[list[int | None]]:
    if not prompts or max_new_tokens == 0:
        return
    device = next(model.parameters()).device
    block = model.config.block_size
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    longest = max(len(p) for p in prompts)
    # Left padding: every row's next token goes to the same slot. The pad id (0) is never attended to.
    ids = torch.tensor([[0] * (longest - len(p)) + p for p in prompts], dtype=torch.long, device=device)
    pad = torch.tensor([longest - len(p) for p in prompts], device=device)
    pad = pad if bool(pad.any()) else None  # equal lengths: the plain causal path (flash kernels on a GPU)
    cache = None
    if use_cache and longest <= block:
        cache = KVCache(model.config, len(prompts), min(longest + max_new_tokens, block), device=device,
                        dtype=next(model.parameters()).dtype)
    # The steps after the prefill run as a flat list of ops (same logits, less per-op overhead).
    decode_step = DecodeStep(model) if cache is not None and applies_to(model) else None
    stops = set(stop_ids)
    rows = [list(p) for p in prompts]  # prompt + output, what the tool reads
    forced = [deque() for _ in prompts]
    done = [False] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        for step in range(max_new_tokens):
            length = ids.shape[1]
            if cache is not None and length <= block:
                if step == 0:  # prefill the prompt, then one token at a time
                    logits, _ = model(ids, cache=cache, start=0, pad=pad, last_only=True)
                elif decode_step is not None:
                    logits = decode_step(ids[:, -1:], cache, length - 1, pad)
                else:
                    logits, _ = model(ids[:, -1:], cache=cache, start=length - 1, pad=pad, last_only=True)
            else:
                window = ids[:, -block:]
                cut = length - window.shape[1]
                logits, _ = model(window, pad=None if pad is None else (pad - cut).clamp(min=0), last_only=True)
            sampled = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator, min_p).tolist()
            step_tokens: list[int | None] = []
            for row, token in enumerate(sampled):
                if done[row]:
                    step_tokens.append(None)  # the row's slot is still filled (with the sample), never read
                    continue
                if forced[row]:
                    token = forced[row].popleft()
                    sampled[row] = token
                elif token in stops:
                    done[row] = True
                rows[row].append(token)
                if tools is not None and not done[row]:
                    forced[row].extend(tools.after(rows[row]))
                step_tokens.append(token)
            ids = torch.cat([ids, torch.tensor(sampled, dtype=torch.long, device=device)[:, None]], dim=1)
            yield step_tokens
            if all(done):
                break
    finally:
        model.train(was_training)


def generate(model, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, stop_ids: Sequence[int] = (),
             seed: int | None = None, use_cache: bool = True, min_p: float | None = None,
             tools: CalculatorTool | None = None) -> list[list[int]]:
    """New tokens (without the prompt) for each of a batch of prompts of any lengths.

    Arguments as for :func:`generate_tokens`; ``tools=CalculatorTool(tokenizer)`` turns on
    calculator calls.
    """
    out: list[list[int]] = [[] for _ in prompts]
    for step_tokens in generate_tokens(model, prompts, max_new_tokens, temperature, top_k, top_p, stop_ids, seed,
                                       use_cache, min_p, tools):
        for row, token in enumerate(step_tokens):
            if token is not None:
                out[row].append(token)
    return out


# ----------------------------------------------------------------------------------------------
# Text in, text out


def stop_token_ids(tokenizer, stop: str | None) -> tuple[int, ...]:
    """Ids of every token whose bytes contain ``stop`` (e.g. every token with a newline), so a row
    ends as soon as one is produced. A stop string split across tokens is cut from the text after."""
    if stop is None:
        return ()
    if not stop:
        raise ValueError("stop='' would stop before anything is written; give a non-empty string or None")
    return tuple(i for i, token in tokenizer.vocab.items() if stop.encode() in token)


def _encode_prompt(tokenizer, prompt: str, tools: CalculatorTool | None) -> list[int]:
    # With tools on, a prompt may show calls (few-shot examples), so the tool's own markers are tokens.
    return tokenizer.encode(prompt, allowed_special=tools.special_tokens if tools else ())


def complete(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, stop: str | None = None,
             batch_size: int = 64, tools: bool = False, **sampling) -> list[str]:
    """Continue each prompt string; the text is cut at the first ``stop`` string (not included).

    All prompts are batched whatever their lengths: sorted by token length, then ``batch_size`` at
    a time, so a probe of hundreds of prompts takes a handful of forward passes per token.
    ``sampling`` takes ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``seed``, ``use_cache``.
    With ``tools=True`` the model's calculator calls are answered (see :class:`CalculatorTool`) and
    the returned text shows them, e.g. ``<|calc_start|>123+456<|calc_end|><|result_start|>579<|result_end|>``.
    """
    if isinstance(prompts, str):
        raise ValueError("prompts is one string, which would be one prompt per character: give a list of "
                         "prompts, e.g. [prompt]")
    tool = CalculatorTool(tokenizer) if tools else None
    encoded = [_encode_prompt(tokenizer, p, tool) for p in prompts]
    if any(not ids for ids in encoded):
        raise ValueError("an empty prompt has nothing to continue; give at least one character")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    stop_ids = stop_token_ids(tokenizer, stop)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths: little padding
    texts = [""] * len(prompts)
    for first in range(0, len(order), batch_size):
        chunk = order[first : first + batch_size]
        outputs = generate(model, [encoded[i] for i in chunk], max_new_tokens, stop_ids=stop_ids, tools=tool, **sampling)
        for i, ids in zip(chunk, outputs):
            text = tokenizer.decode(ids)
            texts[i] = text.split(stop)[0] if stop is not None else text
    return texts


def stream(model, tokenizer, prompt: str, max_new_tokens: int = 64, stop: str | None = None, tools: bool = False,
           **sampling) -> Iterator[str]:
    """Yield the continuation of ``prompt`` piece by piece, as the tokens are produced.

    Token bytes go through an incremental UTF-8 decoder, so a character split over two tokens
    comes out whole once its last byte arrives (never half of it). The pieces join to exactly what
    :func:`complete` returns for the same arguments: cut before the first ``stop`` string (text
    that might be the start of it is held back until that is decided). Arguments are checked when
    this is called.
    """
    tool = CalculatorTool(tokenizer) if tools else None
    ids = _encode_prompt(tokenizer, prompt, tool)
    if not ids:
        raise ValueError("an empty prompt has nothing to continue; give at least one character")
    steps = generate_tokens(model, [ids], max_new_tokens, stop_ids=stop_token_ids(tokenizer, stop), tools=tool,
                            **sampling)
    return _text_pieces(tokenizer, steps, stop)


class TextDecoder:
    """Token ids in, text out as soon as it is whole: the bytes of a character split over two
    tokens wait for the rest, so a stream never shows half a UTF-8 character.

    >>> from minilm.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("hello", vocab_size=300)  # é was never seen: two byte tokens
    >>> decoder = TextDecoder(tok)
    >>> [decoder.add(token) for token in tok.encode("é!")], decoder.flush()
    (['', 'é', '!'], '')
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token: int) -> str:
        """The text that ``token`` completes ('' while a character is unfinished)."""
        return self._utf8.decode(self.tokenizer.decode_bytes([token]))

    def flush(self) -> str:
        """What is still held: an unfinished character becomes U+FFFD (as ``tokenizer.decode`` writes it)."""
        return self._utf8.decode(b"", final=True)


def _text_pieces(tokenizer, steps, stop: str | None) -> Iterator[str]:
    decoder = TextDecoder(tokenizer)
    held = ""  # decoded text not yet yielded: it may be the beginning of the stop string
    finished = False
    try:
        for step_tokens in steps:
            token = step_tokens[0]
            if token is None:
                break
            held += decoder.add(token)
            if stop is not None and stop in held:
                held, finished = held.split(stop)[0], True
                break
            keep = _stop_prefix_length(held, stop)
            if len(held) > keep:
                yield held[: len(held) - keep]
                held = held[len(held) - keep :]
    finally:
        steps.close()  # also when the caller stops reading: the model goes back to its train/eval mode
    if not finished:
        held += decoder.flush()  # an unfinished character at the end becomes U+FFFD
        if stop is not None:
            held = held.split(stop)[0]
    if held:
        yield held


def _stop_prefix_length(text: str, stop: str | None) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``stop`` (0 without a stop)."""
    if not stop:
        return 0
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-n:]):
            return n
    return 0
