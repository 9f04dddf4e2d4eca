"""Chat template: a conversation as token ids, with a loss mask for supervised fine-tuning.

Each message becomes ``<|im_start|>{role}\\n{content}<|im_end|>`` (the ChatML layout GPT-4 uses).
What a system or user message says is always plain text: a special token's string typed there
(``<|im_end|>``, or a forged calculator result ``<|result_start|>99<|result_end|>``) is encoded
as the ordinary characters it is made of, so no one can forge a turn, a tool result or a
reasoning marker. Only assistant content, which the model wrote (and the tool engine completed),
may hold the tool and reasoning markers as tokens.

The loss mask is 1 exactly on the tokens the assistant must learn to produce: the content of
assistant messages *and* their ``<|im_end|>``, so the model learns to end its turn. Everything
else (system and user turns, role headers, and calculator results written by the tool engine
between ``<|result_start|>`` and ``<|result_end|>``) is context with mask 0.

>>> from minilm.text.tokenizer import Tokenizer
>>> tok = Tokenizer.train("Hi there. Hello!", vocab_size=300)
>>> ids, mask = render_conversation(tok, [{"role": "user", "content": "Hi"},
...                                       {"role": "assistant", "content": "Hello!"}])
>>> tok.decode([i for i, m in zip(ids, mask) if m])
'Hello!<|im_end|>'
>>> parse_conversation(tok, ids)[1]
{'role': 'assistant', 'content': 'Hello!'}
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .tokenizer import (CALC_END, CALC_START, IM_END, IM_START, RESULT_END, RESULT_START, THINK_END, THINK_START, Tokenizer)

ROLES = ("system", "user", "assistant")
# Special tokens that may appear as tokens inside *assistant* content (tool calls and reasoning).
CONTENT_SPECIALS = (CALC_START, CALC_END, RESULT_START, RESULT_END, THINK_START, THINK_END)


class ChatFormatError(ValueError):
    """A conversation is not a list of {"role", "content"} messages, or ids do not parse."""


def _check_messages(messages: Sequence[dict]) -> None:
    if not isinstance(messages, (list, tuple)):
        raise ChatFormatError(f"a conversation is a list of messages, got {type(messages).__name__}")
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ChatFormatError(f"message {n} must be a dict with exactly the keys 'role' and 'content': {message!r}")
        if message["role"] not in ROLES:
            raise ChatFormatError(f"message {n} has role {message['role']!r}: choose one of {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise ChatFormatError(f"message {n} content must be a string, got {type(message['content']).__name__}")


def _assistant_content_mask(tokenizer: Tokenizer, ids: list[int]) -> list[int]:
    """1 on what the assistant writes; 0 on tool results (``<|result_start|>`` ... ``<|result_end|>``)."""
    start, end = tokenizer.special_id(RESULT_START), tokenizer.special_id(RESULT_END)
    mask, inside_result = [], False
    for i in ids:
        if i == start:
            inside_result = True
        mask.append(0 if inside_result else 1)
        if i == end:
            inside_result = False
    return mask


def render_conversation(
    tokenizer: Tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False
) -> tuple[list[int], list[int]]:
    """Token ids and loss mask (same length) for a conversation.

    With ``add_generation_prompt``, the ids end with ``<|im_start|>assistant\\n`` so that a model
    continues with the assistant's reply.
    """
    _check_messages(messages)
    start, end = tokenizer.special_id(IM_START), tokenizer.special_id(IM_END)
    ids: list[int] = []
    mask: list[int] = []
    for message in messages:
        header = [start, *tokenizer.encode(message["role"] + "\n")]
        is_assistant = message["role"] == "assistant"
        # System and user text can never become a special token (see the module's docstring).
        content = tokenizer.encode(message["content"], allowed_special=CONTENT_SPECIALS if is_assistant else ())
        ids += header + content + [end]
        mask += [0] * len(header)
        mask += _assistant_content_mask(tokenizer, content) if is_assistant else [0] * len(content)
        mask.append(1 if is_assistant else 0)
    if add_generation_prompt:
        prompt = [start, *tokenizer.encode("assistant\n")]
        ids += prompt
        mask += [0] * len(prompt)
    return ids, mask


def parse_conversation(tokenizer: Tokenizer, ids: Sequence[int]) -> list[dict]:
    """The messages back from ids made by :func:`render_conversation` (a list, or a 1-D tensor or array).

    A trailing turn without ``<|im_end|>`` (a reply still being generated) is returned as it is.
    """
    start, end = tokenizer.special_id(IM_START), tokenizer.special_id(IM_END)
    if hasattr(ids, "tolist"):  # a tensor or array iterates as 0-d tensors, ids no tokenizer knows
        if getattr(ids, "ndim", 1) != 1:
            raise ChatFormatError(f"ids must be one conversation's token ids (1-D), got shape {tuple(ids.shape)}")
        ids = ids.tolist()
    elif isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ChatFormatError(f"ids must be a list of token ids, got {type(ids).__name__}")
    messages: list[dict] = []
    position = 0
    ids = list(ids)
    while position < len(ids):
        if ids[position] != start:
            raise ChatFormatError(f"expected <|im_start|> at token {position}, found id {ids[position]}")
        try:
            stop = ids.index(end, position + 1)
        except ValueError:
            stop = len(ids)
        text = tokenizer.decode(ids[position + 1 : stop])
        role, newline, content = text.partition("\n")
        if not newline or role not in ROLES:
            raise ChatFormatError(f"turn at token {position} has no valid role header: {text[:40]!r}")
        messages.append({"role": role, "content": content})
        position = stop + 1
    return messages
