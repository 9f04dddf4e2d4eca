"""Exercise 01 (tokenization): byte-level BPE from scratch.

Write the five functions below, replacing each ``raise NotImplementedError(...)``. Together they
are a complete (slow but simple) byte-level BPE tokenizer, in the style of Karpathy's minbpe
``BasicTokenizer``:

* the text is turned into its UTF-8 bytes, so the first 256 token ids are the 256 byte values and
  any string can be spelled (no "unknown" token ever);
* there is **no** regex pre-tokenization here: the whole text is **one** sequence of ids, so
  merges may cross word boundaries (chapter 01 shows why real tokenizers split words first);
* training recounts every pair after every merge: slow, but obviously right.

Check your work with ``make check CH=01`` (or ``minilm check 01``): the tests compare your
functions with ``minilm.text.tokenizer``, the package's tokenizer. Use only the standard library
(``collections.Counter`` is fine). Reference solutions are in ``exercises/solutions/``: try first!
"""

from __future__ import annotations


def get_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """Count how often each pair of *adjacent* ids occurs in ``ids``.

    Pairs overlap: in ``[7, 7, 7]`` the pair ``(7, 7)`` occurs twice (positions 0-1 and 1-2).
    A list with fewer than two ids has no pairs: return an empty dict.

    >>> get_pair_counts([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    >>> get_pair_counts([7, 7, 7])
    {(7, 7): 2}
    >>> get_pair_counts([5])
    {}

    Hint: ``zip(ids, ids[1:])`` walks over the adjacent pairs.
    """
    raise NotImplementedError("exercise 01: write get_pair_counts in exercises/01_tokenization.py")


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Return a new list where each occurrence of ``pair`` is replaced by the single id ``new_id``.

    Scan from left to right; when ``ids[i], ids[i + 1]`` equals ``pair``, emit ``new_id`` and jump
    over both. Occurrences therefore never overlap: in ``[2, 2, 2]`` only the first two ``2`` merge.
    Do not change the ``ids`` you were given.

    >>> merge([1, 2, 2, 2, 3], (2, 2), 9)
    [1, 9, 2, 3]
    >>> merge([5, 6, 5, 6], (5, 6), 300)
    [300, 300]
    >>> merge([1, 2, 3], (3, 1), 300)
    [1, 2, 3]
    """
    raise NotImplementedError("exercise 01: write merge in exercises/01_tokenization.py")


def train_bpe(text: str, vocab_size: int) -> tuple[list[tuple[int, int, int]], dict[int, bytes]]:
    """Learn BPE merges on ``text`` until the vocabulary holds ``vocab_size`` tokens.

    Start from ``ids = list(text.encode("utf-8"))`` (ONE sequence: no pre-tokenization) and the
    vocabulary ``{0: b"\\x00", 1: b"\\x01", ..., 255: b"\\xff"}`` (``vocab_size`` counts these 256
    byte tokens). Then repeat:

    1. count the adjacent pairs of ``ids`` (recount everything at every step: simple is fine);
    2. pick the **most frequent** pair; among pairs with equal counts pick the **smallest** pair
       in tuple order, ``(left_id, right_id)``. This rule makes training deterministic, so your
       result can be checked merge by merge (``min(counts, key=lambda p: (-counts[p], p))``);
    3. the new token's bytes are ``vocab[left] + vocab[right]``. Normally they get the next free
       id, ``len(vocab)``. But if those bytes are *already* a token, reuse that token's id and add
       nothing to the vocabulary: every token keeps distinct bytes, which tools like ``tiktoken``
       require (one id per byte string). ``minilm``'s trainer has the same rule;
    4. replace the pair in ``ids`` with :func:`merge` and record ``(left, right, new_id)``.

    Stop when ``len(vocab) == vocab_size``, or when no pair is left at all (``ids`` is down to a
    single token, or the text was empty). Careful: a pair that occurs only **once** is still
    merged; training does not stop just because every count is 1.

    Returns ``(merges, vocab)``: ``merges`` as ``(left_id, right_id, new_id)`` in the order they
    were learned, and ``vocab`` mapping every id to its bytes.

    >>> merges, vocab = train_bpe("aaab", 258)
    >>> merges
    [(97, 97, 256), (97, 98, 257)]
    >>> vocab[256], vocab[257], len(vocab)
    (b'aa', b'ab', 258)

    "abcd" has three pairs seen once each: ``(97, 98)`` is the smallest, so ``ab`` comes first;
    then ``(99, 100)`` beats ``(256, 99)``; then the last pair joins everything and training stops
    with one token left, long before 300 tokens:

    >>> train_bpe("abcd", 300)[0]
    [(97, 98, 256), (99, 100, 257), (256, 257, 258)]
    """
    raise NotImplementedError("exercise 01: write train_bpe in exercises/01_tokenization.py")


def encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """Encode ``text`` (the whole text, no pre-tokenization) with BPE ranks, as tiktoken does.

    ``ranks`` maps every token's bytes to its id; a lower id means a token learned earlier (the
    256 single bytes are always there). The algorithm:

    * if the whole byte string of ``text`` is itself a token, return ``[its id]``;
    * otherwise start from the single bytes and repeatedly merge the adjacent pair whose
      concatenated bytes is a token with the **lowest** rank (on equal ranks, the **leftmost**
      pair); stop when no adjacent pair is a token. Return the ids of the parts.

    The empty string encodes to ``[]``. (Build ``ranks`` from a trained vocabulary with
    ``{token: i for i, token in vocab.items()}``.)

    >>> ranks = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"abc": 257}
    >>> encode("abcab", ranks)
    [257, 256]
    >>> encode("abc", ranks)
    [257]
    >>> encode("", ranks)
    []
    """
    raise NotImplementedError("exercise 01: write encode in exercises/01_tokenization.py")


def decode(ids: list[int], vocab: dict[int, bytes]) -> str:
    """Turn ids back into text: join the tokens' bytes, then decode them as UTF-8.

    Use ``errors="replace"``: a sequence of ids can end in the middle of a multi-byte character
    (an emoji is 4 bytes), and the broken piece must become U+FFFD instead of raising an error.

    >>> vocab = {i: bytes([i]) for i in range(256)} | {256: b"ab"}
    >>> decode([256, 99], vocab)
    'abc'
    >>> decode([0xF0, 0x9F], vocab) == "\\ufffd"  # the first 2 of the 4 bytes of an emoji
    True
    """
    raise NotImplementedError("exercise 01: write decode in exercises/01_tokenization.py")
