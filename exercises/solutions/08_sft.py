"""Exercise 08 (supervised fine-tuning): reference solutions. Try the exercise yourself first!

A walk over the turns that marks the assistant's content and its end, a greedy packer that keeps
conversations whole, and the majority rule that turns probe counts into answers or refusals.
This file deliberately does not use ``minilm``: the tests compare it with
``minilm.text.chat_template``, ``minilm.stages.sft`` and ``minilm.models.train``.
"""

from __future__ import annotations


def assistant_mask(ids: list[int], im_start: int, im_end: int, assistant_header: list[int], result_start: int,
                   result_end: int) -> list[int]:
    ids = list(ids)
    mask = [0] * len(ids)
    position = 0
    while position < len(ids):
        if ids[position] != im_start:
            raise ValueError(f"expected im_start={im_start} at token {position}, found {ids[position]}")
        header_end = position + 1 + len(assistant_header)
        is_assistant = ids[position + 1 : header_end] == list(assistant_header)
        # The turn ends at its im_end, or with the sequence (a generation prompt, a reply in progress).
        end = ids.index(im_end, position + 1) if im_end in ids[position + 1 :] else len(ids)
        if is_assistant:
            inside_result = False
            for k in range(header_end, end):
                if ids[k] == result_start:
                    inside_result = True
                mask[k] = 0 if inside_result else 1
                if ids[k] == result_end:
                    inside_result = False
            if end < len(ids):
                mask[end] = 1  # the end of the turn is learned too: it is how the model stops
        position = end + 1
    return mask


def pack_rows(conversations: list[tuple[list[int], list[int]]], seq_len: int,
              pad_id: int) -> tuple[list[list[int]], list[list[int]], int]:
    width = seq_len + 1
    rows: list[tuple[list[int], list[int]]] = []
    dropped = 0
    for ids, mask in conversations:
        if len(ids) > width:
            dropped += 1
            continue
        if rows and len(rows[-1][0]) + len(ids) <= width:
            rows[-1][0].extend(ids)
            rows[-1][1].extend(mask)
        else:
            rows.append((list(ids), list(mask)))
    if not rows:
        raise ValueError(f"no conversation fits in a row of seq_len + 1 = {width} tokens ({dropped} dropped)")
    inputs, targets = [], []
    for ids, mask in rows:
        padding = width - len(ids)
        ids, mask = ids + [pad_id] * padding, mask + [0] * padding
        inputs.append(ids[:-1])
        # The target at position t is token t + 1: it counts when token t + 1 is one to learn.
        targets.append([token if keep else -1 for token, keep in zip(ids[1:], mask[1:])])
    return inputs, targets, dropped


def refusal_data(probe: dict[tuple[str, str], tuple[int, int]], truth: dict[tuple[str, str], str],
                 questions: dict[str, str], answers: dict[str, str],
                 refusal: str = "I don't know.") -> list[tuple[str, str]]:
    pairs = []
    for (name, attribute), (right, samples) in probe.items():
        if samples < 1 or not 0 <= right <= samples:
            raise ValueError(f"{name}, {attribute}: right={right}, samples={samples}; need 0 <= right <= samples, "
                             "samples >= 1")
        if (name, attribute) not in truth:
            raise ValueError(f"no true value for {name}, {attribute}")
        question = questions[attribute].format(name=name)
        if 2 * right > samples:  # a strict majority: a tie is a coin flip, not knowledge
            pairs.append((question, answers[attribute].format(name=name, value=truth[(name, attribute)])))
        else:
            pairs.append((question, refusal))
    return pairs
