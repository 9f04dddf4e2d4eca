"""Exercise 08 (supervised fine-tuning): the assistant-only loss mask, packing, and refusal data.

Write the three functions below, replacing each ``raise NotImplementedError(...)``:

* ``assistant_mask``: which tokens of a rendered conversation the SFT loss counts: the assistant's
  replies and the ``<|im_end|>`` that ends each of them (so the model learns to stop), never the
  user's words, the role headers or the calculator results the tool writes, as
  ``minilm.text.chat_template.render_conversation`` marks them;
* ``pack_rows``: conversations packed whole into fixed-length rows, padded, with the targets of
  the untrained positions set to -1 (the index the loss ignores), as ``minilm.stages.sft.encode_conversations``
  and ``minilm.models.train.get_batch`` lay them out;
* ``refusal_data``: Llama 3's recipe against hallucination: from probe results (how many of a
  model's sampled answers to a fact were right), the SFT answer to each fact question: the truth
  where the model knows it, "I don't know." where it does not, as
  ``minilm.data.conversations.knowledge_aware_conversations`` decides.

Check your work with ``make check CH=08`` (or ``minilm check 08``): the tests render real
conversations with a real tokenizer and compare your functions with ``minilm.text.chat_template``,
``minilm.stages.sft`` and ``minilm.models.train``. Use only the standard library. Reference solutions are in
``exercises/solutions/``: try first!
"""

from __future__ import annotations


def assistant_mask(ids: list[int], im_start: int, im_end: int, assistant_header: list[int], result_start: int,
                   result_end: int) -> list[int]:
    """The loss mask (0 or 1 per token) of a conversation rendered in ChatML.

    ``ids`` is a sequence of turns, each ``im_start``, then the role's header (the tokens of e.g.
    ``"assistant\\n"``), then the content, then ``im_end``; the last turn may lack its ``im_end``
    (a generation prompt ``<|im_start|>assistant\\n`` waiting for a reply). A turn is the
    assistant's when its header tokens are exactly ``assistant_header``.

    Mask 1: the content tokens of assistant turns and the ``im_end`` that closes each of them.
    Mask 0: ``im_start`` and headers, every token of other turns (system, user), and inside
    assistant content every token from a ``result_start`` to the next ``result_end``, both
    included: the calculator's result is written by the tool, not by the model. A sequence
    that does not start with ``im_start`` is a ``ValueError``.

    >>> USER, ASSISTANT = [8, 9], [7, 9]  # the tokens of "user\\n" and "assistant\\n"
    >>> ids = [1, *USER, 30, 31, 2, 1, *ASSISTANT, 40, 5, 41, 6, 42, 2]
    >>> assistant_mask(ids, im_start=1, im_end=2, assistant_header=ASSISTANT, result_start=5, result_end=6)
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]
    >>> assistant_mask([1, *USER, 30, 2, 1, *ASSISTANT], 1, 2, ASSISTANT, 5, 6)  # a generation prompt
    [0, 0, 0, 0, 0, 0, 0, 0]
    """
    raise NotImplementedError("exercise 08: write assistant_mask in exercises/08_sft.py")


def pack_rows(conversations: list[tuple[list[int], list[int]]], seq_len: int,
              pad_id: int) -> tuple[list[list[int]], list[list[int]], int]:
    """Pack rendered conversations ``(ids, mask)`` into rows; return ``(inputs, targets, dropped)``.

    A row holds ``seq_len + 1`` tokens. Take the conversations in order: one joins the last row
    when it fits *whole* in what is left of it, otherwise it starts a new row; a conversation
    longer than ``seq_len + 1`` tokens is dropped (and counted in ``dropped``; it does not close
    the current row). The rest of each row is ``pad_id`` with mask 0.

    Each row then gives ``inputs = row[:-1]`` and ``targets = row[1:]``, where a target whose mask
    (``mask[1:]``) is 0 becomes -1: the loss ignores it. Both are lists of ``seq_len`` numbers.
    When no conversation fits, raise a ``ValueError``.

    >>> a = ([1, 10, 11, 2], [0, 0, 1, 1])  # 4 tokens: the last two are the assistant's
    >>> b = ([1, 12, 2], [0, 1, 1])
    >>> too_long = ([1] * 9, [1] * 9)
    >>> inputs, targets, dropped = pack_rows([a, b, too_long, a], seq_len=7, pad_id=0)
    >>> inputs  # a and b share the first row; the second a does not fit there, so it starts a row
    [[1, 10, 11, 2, 1, 12, 2], [1, 10, 11, 2, 0, 0, 0]]
    >>> targets
    [[-1, 11, 2, -1, 12, 2, -1], [-1, 11, 2, -1, -1, -1, -1]]
    >>> dropped
    1
    """
    raise NotImplementedError("exercise 08: write pack_rows in exercises/08_sft.py")


def refusal_data(probe: dict[tuple[str, str], tuple[int, int]], truth: dict[tuple[str, str], str],
                 questions: dict[str, str], answers: dict[str, str],
                 refusal: str = "I don't know.") -> list[tuple[str, str]]:
    """SFT pairs ``(question, answer)`` from knowledge probes, one per fact, in the order of ``probe``.

    ``probe[(name, attribute)] = (right, samples)``: of ``samples`` answers sampled from the model
    before SFT, ``right`` named the true value ``truth[(name, attribute)]``. The fact is *known*
    when a strict majority was right (``2 * right > samples``; half right is a coin flip, not
    knowledge). The question is ``questions[attribute]`` with ``{name}`` filled in; the answer is
    ``answers[attribute]`` with ``{name}`` and ``{value}`` filled in when the fact is known, and
    ``refusal`` when it is not: training a model to state facts it cannot recall teaches it to
    make them up. ``samples < 1``, ``right`` outside ``0..samples`` or a fact missing from
    ``truth`` is a ``ValueError``.

    >>> probe = {("Ada Holm", "birthplace"): (3, 4), ("Ada Holm", "birth_year"): (2, 4)}
    >>> truth = {("Ada Holm", "birthplace"): "Lisbon", ("Ada Holm", "birth_year"): "1970"}
    >>> questions = {"birthplace": "Where was {name} born?", "birth_year": "In what year was {name} born?"}
    >>> answers = {"birthplace": "{name} was born in {value}.", "birth_year": "{name} was born in the year {value}."}
    >>> for pair in refusal_data(probe, truth, questions, answers):
    ...     print(pair)
    ('Where was Ada Holm born?', 'Ada Holm was born in Lisbon.')
    ('In what year was Ada Holm born?', "I don't know.")
    """
    raise NotImplementedError("exercise 08: write refusal_data in exercises/08_sft.py")
