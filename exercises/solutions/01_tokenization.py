"""Exercise 01 (tokenization): reference solutions. Try the exercise yourself first!

Plain, simple byte-level BPE in the style of Karpathy's minbpe ``BasicTokenizer``: the whole text
is one sequence of UTF-8 bytes (no regex pre-tokenization) and every merge step recounts all
pairs. Slow on big corpora, but every line is easy to follow. This file deliberately does not use
``minilm``: the tests compare it with ``minilm.text.tokenizer``.
"""

from __future__ import annotations

NOT_A_TOKEN = float("inf")  # the rank of a pair whose bytes are not a token


def get_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs: ``[1, 2, 3, 1, 2]`` -> ``{(1, 2): 2, (2, 3): 1, (3, 1): 1}``."""
    counts: dict[tuple[int, int], int] = {}
    for left, right in zip(ids, ids[1:]):
        counts[left, right] = counts.get((left, right), 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair``, left to right and non-overlapping, by ``new_id``."""
    pair = tuple(pair)
    out = []
    i = 0
    while i < len(ids):
        found = tuple(ids[i : i + 2]) == pair
        out.append(new_id if found else ids[i])
        i += 2 if found else 1
    return out


def train_bpe(text: str, vocab_size: int) -> tuple[list[tuple[int, int, int]], dict[int, bytes]]:
    """Merge the most frequent pair (smallest pair on ties) until ``vocab_size`` tokens or one token left."""
    ids = list(text.encode("utf-8"))
    vocab = {i: bytes([i]) for i in range(256)}
    id_of = {token: i for i, token in vocab.items()}
    merges = []
    while len(vocab) < vocab_size:
        counts = get_pair_counts(ids)
        if not counts:  # the text is down to one token (or was empty)
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        token = vocab[best[0]] + vocab[best[1]]
        if token not in id_of:  # a new token; otherwise reuse the id it already has
            id_of[token] = len(vocab)
            vocab[len(vocab)] = token
        ids = merge(ids, best, id_of[token])
        merges.append((best[0], best[1], id_of[token]))
    return merges, vocab


def encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """Start from single bytes; merge the adjacent pair whose bytes have the lowest rank (leftmost on ties)."""
    data = text.encode("utf-8")
    if data in ranks:
        return [ranks[data]]
    parts = [bytes([byte]) for byte in data]
    while len(parts) > 1:
        pair_ranks = [ranks.get(left + right, NOT_A_TOKEN) for left, right in zip(parts, parts[1:])]
        best = min(pair_ranks)
        if best == NOT_A_TOKEN:  # no adjacent pair is a token: done
            break
        i = pair_ranks.index(best)  # index() finds the leftmost one
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[part] for part in parts]


def decode(ids: list[int], vocab: dict[int, bytes]) -> str:
    """Join the tokens' bytes and read them as UTF-8 (a cut character becomes U+FFFD)."""
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
