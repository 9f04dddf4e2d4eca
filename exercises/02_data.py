"""Exercise 02 (data): the cores of a pretraining data pipeline, from scratch.

Write the six functions below, replacing each ``raise NotImplementedError(...)``:

* exact dedup: normalize a document, hash it with SHA-256, keep the first of each hash;
* MinHash: a short signature per document whose agreement estimates the Jaccard similarity of
  their shingle sets;
* LSH banding: cut signatures into bands; two documents become a *candidate pair* when they agree
  on every row of at least one band;
* PII: find e-mail addresses with a regular expression, and tell card numbers from other long
  numbers with the Luhn checksum.

Check your work with ``make check CH=02`` (or ``minilm check 02``): the tests compare your functions
with ``minilm.data.dedup`` and ``minilm.data.cleaning``. Use the standard library only (``hashlib``, ``re``,
``unicodedata``, ``zlib``). Reference solutions are in ``exercises/solutions/``: try first!
"""

from __future__ import annotations


def exact_duplicates(texts: list[str]) -> list[bool]:
    """For each text, True if an earlier text is the same document up to case and spacing.

    Normalize each text (Unicode NFKC with ``unicodedata.normalize``, then ``casefold()``, then
    collapse every run of whitespace to one space and strip the ends), hash the normalized text
    with ``hashlib.sha256`` and flag a text whose hash was seen before. The first copy is kept
    (False); later copies are duplicates (True).

    >>> exact_duplicates(["a b", "A  B", "c", "a b "])
    [False, True, False, True]
    """
    raise NotImplementedError("exercise 02: write exact_duplicates in exercises/02_data.py")


def shingle_set(text: str, n: int = 5) -> set[str]:
    """The set of word n-grams ("shingles") of the normalized text, each joined by single spaces.

    Normalize as in ``exact_duplicates`` (NFKC, casefold, whitespace collapsed), split on spaces.
    A text of 1 to n-1 words is one shingle of all its words; a text without words has none.

    >>> sorted(shingle_set("To be, or not to be", n=3))
    ['be, or not', 'not to be', 'or not to', 'to be, or']
    >>> shingle_set("Exeunt.", n=5), shingle_set("   ")
    ({'exeunt.'}, set())
    """
    raise NotImplementedError("exercise 02: write shingle_set in exercises/02_data.py")


def minhash_signature(shingles: set[str], num_perm: int = 128, seed: int = 0) -> list[int]:
    """A MinHash signature: for each of ``num_perm`` hash functions, the smallest hash of any shingle.

    Use the family ``h_k(x) = (a_k * x + b_k) % P`` with ``P = 2**61 - 1``, where ``x`` is
    ``zlib.crc32(shingle.encode("utf-8"))`` and the coefficients come from
    ``random.Random(seed)``: for k in range(num_perm), ``a_k = rng.randrange(1, P)`` then
    ``b_k = rng.randrange(0, P)`` (draw a, b, a, b, ... in that order). An empty set gets the
    signature ``[P] * num_perm``. Two documents agree at position k with probability equal to the
    Jaccard similarity of their shingle sets, which is what makes the signature useful.

    >>> len(minhash_signature({"a b c"}, num_perm=16))
    16
    >>> minhash_signature(set(), num_perm=2)
    [2305843009213693951, 2305843009213693951]
    """
    raise NotImplementedError("exercise 02: write minhash_signature in exercises/02_data.py")


def lsh_candidate_pairs(signatures: list[list[int]], bands: int, rows: int) -> set[tuple[int, int]]:
    """Pairs ``(i, j)`` with ``i < j`` whose signatures are equal on all rows of at least one band.

    Band ``b`` is the slice ``signature[b * rows : (b + 1) * rows]``. Put each document in a bucket
    keyed by ``(b, tuple(slice))``; every two documents in the same bucket form a candidate pair.

    >>> sigs = [[1, 2, 3, 4], [1, 2, 9, 9], [5, 6, 3, 4], [7, 8, 9, 0]]
    >>> sorted(lsh_candidate_pairs(sigs, bands=2, rows=2))
    [(0, 1), (0, 2)]
    """
    raise NotImplementedError("exercise 02: write lsh_candidate_pairs in exercises/02_data.py")


def find_emails(text: str) -> list[str]:
    """The e-mail addresses in ``text``, in order.

    A local part of letters, digits and ``._%+-``, an ``@``, then a domain: labels of letters,
    digits and hyphens separated by dots, ending in a top-level domain of at least two letters.
    A sentence's final full stop is not part of the address.

    >>> find_emails("Write to viola.cesario@illyria.example.org or to puck@dream.io.")
    ['viola.cesario@illyria.example.org', 'puck@dream.io']
    >>> find_emails("no address @ here, nor user@localhost")
    []
    """
    raise NotImplementedError("exercise 02: write find_emails in exercises/02_data.py")


def luhn_valid(number: str) -> bool:
    """True if the digits of ``number`` (spaces and dashes ignored) pass the Luhn checksum.

    From the rightmost digit, double every second digit; when doubling gives more than 9, subtract
    9; the number is valid when the sum of all the digits is a multiple of 10. A string without
    digits is not valid.

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112"), luhn_valid("")
    (True, False, False)
    """
    raise NotImplementedError("exercise 02: write luhn_valid in exercises/02_data.py")
