"""Reference solutions for exercise 02 (data): plain and short, standard library only."""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
import zlib
from itertools import combinations

PRIME = 2**61 - 1


def _normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_duplicates(texts: list[str]) -> list[bool]:
    seen, flags = set(), []
    for text in texts:
        digest = hashlib.sha256(_normalize(text).encode("utf-8")).hexdigest()
        flags.append(digest in seen)
        seen.add(digest)
    return flags


def shingle_set(text: str, n: int = 5) -> set[str]:
    words = _normalize(text).split(" ") if _normalize(text) else []
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def minhash_signature(shingles: set[str], num_perm: int = 128, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    coefficients = [(rng.randrange(1, PRIME), rng.randrange(0, PRIME)) for _ in range(num_perm)]
    hashes = [zlib.crc32(s.encode("utf-8")) for s in shingles]
    if not hashes:
        return [PRIME] * num_perm
    return [min((a * x + b) % PRIME for x in hashes) for a, b in coefficients]


def lsh_candidate_pairs(signatures: list[list[int]], bands: int, rows: int) -> set[tuple[int, int]]:
    buckets: dict[tuple, list[int]] = {}
    for doc, signature in enumerate(signatures):
        for band in range(bands):
            key = (band, tuple(signature[band * rows : (band + 1) * rows]))
            buckets.setdefault(key, []).append(doc)
    return {pair for docs in buckets.values() for pair in combinations(docs, 2)}


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")


def find_emails(text: str) -> list[str]:
    return EMAIL.findall(text)


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return bool(digits) and total % 10 == 0
