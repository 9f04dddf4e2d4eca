"""Tokenized training data on disk: uint16 shards with document separators and a small index.

Layout of a shard directory::

    index.json          what was written: key, tokenizer, splits, shards with token counts, sha256
    train_000.bin ...   header (magic, version, token count) + uint16 token ids
    val_000.bin ...

Every document is followed by ``<|endoftext|>``, so a model sees where documents end (and learns
to stop). Each file is written to a temporary name and renamed when complete, and ``index.json`` is
written last: a directory without a valid index, or whose files do not match it, is never taken
for a finished build. Building again with the same inputs (same key) reuses the shards.

>>> import tempfile
>>> from minilm.text.tokenizer import Tokenizer
>>> tok = Tokenizer.train("hello world " * 10, vocab_size=300)
>>> out = write_shards({"train": ["hello world", "hi"]}, tok, tempfile.mkdtemp(), key="demo")
>>> TokenShards(out).tokens("train").tolist() == tok.encode("hello world") + [tok.special_id("<|endoftext|>")] + tok.encode("hi") + [tok.special_id("<|endoftext|>")]
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.files import atomic_write_bytes, atomic_write_text
from ..text.tokenizer import ENDOFTEXT, Tokenizer

MAGIC = 20261124  # identifies a minilm shard
SHARD_VERSION = 1
HEADER_INTS = 4  # magic, version, token count, reserved (int64 each)


class ShardError(ValueError):
    """A shard directory or file is missing, incomplete or corrupted."""


def _write_shard(path: Path, tokens: np.ndarray) -> str:
    """Write one shard atomically; returns its sha256."""
    header = np.array([MAGIC, SHARD_VERSION, len(tokens), 0], dtype=np.int64)
    payload = header.tobytes() + tokens.astype(np.uint16, copy=False).tobytes()
    atomic_write_bytes(path, payload)
    return hashlib.sha256(payload).hexdigest()


def read_shard(path: str | os.PathLike) -> np.ndarray:
    """The tokens of one shard as a read-only memory map (no copy), after checking the header."""
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"{path}: shard file missing" if not path.exists() else f"{path}: not a file")
    size = path.stat().st_size
    if size < HEADER_INTS * 8:
        raise ShardError(f"{path}: too short to be a shard ({size} bytes)")
    header = np.fromfile(path, dtype=np.int64, count=HEADER_INTS)
    if header[0] != MAGIC:
        raise ShardError(f"{path}: not a minilm shard (bad magic number)")
    if header[1] != SHARD_VERSION:
        raise ShardError(f"{path}: shard version {header[1]}, expected {SHARD_VERSION}")
    expected = HEADER_INTS * 8 + 2 * int(header[2])
    if size != expected:
        raise ShardError(f"{path}: truncated or padded: {size} bytes, header says {expected}")
    return np.memmap(path, dtype=np.uint16, mode="r", offset=HEADER_INTS * 8, shape=(int(header[2]),))


def write_shards(
    splits: dict[str, Iterable[str]],
    tokenizer: Tokenizer,
    out_dir: str | os.PathLike,
    key: str,
    shard_tokens: int = 10_000_000,
    sources: dict[str, dict[str, int]] | None = None,
    progress: bool = False,
) -> Path:
    """Tokenize documents per split into shards of at most ``shard_tokens`` tokens.

    ``key`` identifies the inputs (data, mixture, tokenizer); ``sources`` (optional) records how
    many documents each source contributed, for the index. Returns the directory.
    """
    if tokenizer.vocab_size > 65536:
        raise ValueError(f"vocab_size={tokenizer.vocab_size} does not fit in uint16 shards")
    if shard_tokens < 1:
        raise ValueError(f"shard_tokens={shard_tokens} must be positive")
    for split, docs in splits.items():
        # A split's name becomes part of its shard files' names: no path parts, or they land elsewhere.
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", split) or split in (".", ".."):
            raise ValueError(f"split name {split!r}: use letters, digits, '_', '-' and '.' only")
        if isinstance(docs, (str, bytes)):  # one text would be read as one document per character
            raise TypeError(f"split {split!r} must be a list of documents (str), got one {type(docs).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").unlink(missing_ok=True)  # invalid until the new index is written
    eot = tokenizer.special_id(ENDOFTEXT)
    from ..core.progress import progress_bar  # a text bar: readable in saved notebooks too

    index = {"format": "minilm-shards", "version": SHARD_VERSION, "key": key, "tokenizer": tokenizer.name,
             "vocab_size": tokenizer.vocab_size, "eot": eot, "splits": {}, "sources": sources or {}}
    for split, docs in splits.items():
        docs = list(docs)
        buffer: list[np.ndarray] = []
        buffered, shards, n_tokens = 0, [], 0

        def flush():
            nonlocal buffer, buffered
            if not buffer:
                return
            tokens = np.concatenate(buffer)
            name = f"{split}_{len(shards):03d}.bin"
            shards.append({"file": name, "tokens": int(len(tokens)), "sha256": _write_shard(out / name, tokens)})
            buffer, buffered = [], 0

        batch = 256
        for start in progress_bar(range(0, len(docs), batch), desc=f"tokenize {split}", disable=not progress):
            for ids in tokenizer.encode_batch(docs[start : start + batch], num_threads=2):
                ids.append(eot)
                array = np.asarray(ids, dtype=np.uint16)
                buffer.append(array)
                buffered += len(array)
                n_tokens += len(array)
                if buffered >= shard_tokens:
                    flush()
        flush()
        index["splits"][split] = {"documents": len(docs), "tokens": n_tokens, "shards": shards}
    atomic_write_text(out / "index.json", json.dumps(index, indent=1))
    return out


def load_index(directory: str | os.PathLike) -> dict:
    """The index of a finished shard directory, with every shard checked against it (size)."""
    directory = Path(directory)
    path = directory / "index.json"
    if not path.exists():
        raise ShardError(f"{directory}: no index.json (the build did not finish; run `minilm data build`)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ShardError(f"{path}: corrupted index: {err}") from None
    if not isinstance(index, dict) or index.get("format") != "minilm-shards":
        raise ShardError(f"{path}: not a minilm shard index")
    try:
        for split in index["splits"].values():
            for shard in split["shards"]:
                if len(read_shard(directory / shard["file"])) != shard["tokens"]:
                    raise ShardError(f"{directory / shard['file']}: token count differs from index.json")
    except (KeyError, TypeError, AttributeError):  # an index with parts missing or of the wrong kind
        raise ShardError(f"{path}: corrupted index: its splits and shards are not as written by write_shards") from None
    return index


def is_complete(directory: str | os.PathLike, key: str) -> bool:
    """True when ``directory`` holds a finished build of exactly these inputs."""
    try:
        return load_index(directory)["key"] == key
    except ShardError:
        return False


class TokenShards:
    """Read access to a shard directory: all tokens of a split, and random training windows."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.index = load_index(self.directory)

    def tokens(self, split: str = "train") -> np.ndarray:
        """All tokens of a split (memory-mapped when it is a single shard)."""
        if split not in self.index["splits"]:
            raise ShardError(f"no split {split!r} in {self.directory}: have {sorted(self.index['splits'])}")
        parts = [read_shard(self.directory / s["file"]) for s in self.index["splits"][split]["shards"]]
        if not parts:
            return np.zeros(0, dtype=np.uint16)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def verify_checksums(self) -> None:
        """Recompute every shard's sha256 (slow for big data; sizes are always checked)."""
        for split in self.index["splits"].values():
            for shard in split["shards"]:
                digest = hashlib.sha256((self.directory / shard["file"]).read_bytes()).hexdigest()
                if digest != shard["sha256"]:
                    raise ShardError(f"{self.directory / shard['file']}: checksum mismatch (corrupted)")
