"""Real chat data sets (SmolTalk, UltraChat, ShareGPT-style files), loaded as our conversations.

:func:`load_chat_dataset` takes a Hugging Face name (online), a ``save_to_disk`` folder or a
JSON/JSONL file, and :func:`normalize_conversation` turns each record into ``{"role", "content"}``
messages with our roles, refusing what the chat template could not render. Offline, a hub name
fails with one message that says how to save the set on a connected machine and bring it here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..core.checks import check_count
from ..text.chat_template import ChatFormatError, _check_messages
from .conversations import Conversation


ROLE_NAMES = {"user": "user", "human": "user", "system": "system", "assistant": "assistant", "gpt": "assistant",
              "bot": "assistant", "model": "assistant"}


def normalize_conversation(turns) -> Conversation:
    """A conversation as a list of ``{"role", "content"}`` messages with our roles.

    Accepts the usual layouts: ``{"role", "content"}`` (SmolTalk, UltraChat) and ShareGPT's
    ``{"from", "value"}`` (``human``/``gpt``); other keys are dropped. Raises ChatFormatError when a
    turn has neither, an unknown role, or no assistant turn to learn from.

    >>> normalize_conversation([{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!", "weight": 1}])
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    if not isinstance(turns, (list, tuple)) or not turns:
        raise ChatFormatError(f"a conversation is a non-empty list of turns, got {type(turns).__name__}")
    messages = []
    for n, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ChatFormatError(f"turn {n} is a {type(turn).__name__}, not a dict")
        role, content = (turn.get("role"), turn.get("content")) if "role" in turn else (turn.get("from"), turn.get("value"))
        if role not in ROLE_NAMES:
            raise ChatFormatError(f"turn {n} has role {role!r}: expected one of {', '.join(ROLE_NAMES)}")
        messages.append({"role": ROLE_NAMES[role], "content": content})
    _check_messages(messages)
    if not any(m["role"] == "assistant" for m in messages):
        raise ChatFormatError("the conversation has no assistant turn: nothing to learn from")
    return messages


def _offline_help(name: str, split: str, subset: str | None) -> str:
    args = ", ".join(repr(a) for a in (name, subset) if a is not None)
    return (f"To use it offline, on a machine with a connection run\n    python -c \"import datasets; "
            f"datasets.load_dataset({args}, split={split!r}).save_to_disk('chat-data')\"\n"
            "then copy the folder here and pass its path (chat-data) instead of the name.")


def load_chat_dataset(name_or_path: str | Path, split: str = "train", limit: int | None = None,
                      subset: str | None = None) -> list[Conversation]:
    """Conversations of a chat data set, normalised (:func:`normalize_conversation`).

    ``name_or_path`` is a folder written by ``datasets``' ``save_to_disk`` (a Dataset, or a
    DatasetDict whose ``split`` is taken), a ``.json`` / ``.jsonl`` / ``.parquet`` file, or a
    Hugging Face hub name such as ``"HuggingFaceTB/smoltalk"`` (with ``subset="all"``), streamed
    so that ``limit`` conversations download only what they need. Records need a ``messages`` or
    ``conversations`` column. Records that do not normalise are skipped, with a warning that
    counts them. Offline, a hub name fails with a message that says how to get the data.
    """
    import datasets

    if limit is not None:
        check_count("limit", limit, note=" (or None for all)")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        try:
            data = datasets.load_from_disk(str(path))
        except Exception as err:  # not a save_to_disk folder: datasets' own message, on one line
            raise ValueError(f"{path}: not a chat data folder written by datasets' save_to_disk "
                             f"({_first_line(err)})") from None
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise ValueError(f"{path} holds the splits {', '.join(data)}; split={split!r} is not one of them")
            data = data[split]
    elif path.is_file():
        kind = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"{path}: a chat data file must be .json, .jsonl or .parquet")
        with path.open("rb") as file:  # read only until the first non-blank chunk, not the whole file
            blank = not any(chunk.strip() for chunk in iter(lambda: file.read(1 << 16), b""))
        if blank:
            raise ValueError(f"{path}: the chat data file is empty")
        try:
            data = datasets.load_dataset(kind, data_files=str(path), split="train")
        except Exception as err:  # malformed JSON or parquet: datasets raises from deep inside its builder
            cause = err.__cause__ or err
            raise ValueError(f"{path}: not a readable {path.suffix} chat data file ({_first_line(cause)})") from None
    else:
        name = str(name_or_path)
        if name.startswith((".", "/", "~")) or name.endswith((".json", ".jsonl", ".parquet")):
            raise FileNotFoundError(f"{name}: no such chat data file or folder")
        try:
            data = datasets.load_dataset(name, subset, split=split, streaming=limit is not None)
            if limit is not None:
                data = data.take(limit)
            records = list(data)
        except Exception as err:  # offline, no such dataset, no such split: one clear message
            reason = _first_line(err)
            raise RuntimeError(f"could not load the chat data set {name!r} (split {split!r}) from the Hugging Face "
                               f"hub: {reason}\n{_offline_help(name, split, subset)}") from None
        return _normalize_records(records, name)
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return _normalize_records(data, str(path))


def _first_line(err: BaseException) -> str:
    """An exception's message, first line only (or its type's name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _normalize_records(records, where: str) -> list[Conversation]:
    out, skipped, column = [], 0, None
    for record in records:
        if column is None:
            column = next((c for c in ("messages", "conversations") if c in record), None)
            if column is None:
                raise ValueError(f"{where}: records have the columns {', '.join(record)}; a chat data set needs a "
                                 "'messages' or 'conversations' column of turns")
        try:
            out.append(normalize_conversation(record[column]))
        except ChatFormatError:
            skipped += 1
    if not out:  # training on none of them would drop the data set without a word
        raise ValueError(f"{where}: holds no conversation to train on" if not skipped else
                         f"{where}: none of its {skipped} conversations normalise (each needs user and "
                         "assistant turns with text; see minilm.data.chat_sets.normalize_conversation)")
    if skipped:
        warnings.warn(f"{where}: skipped {skipped} of {skipped + len(out)} conversations that do not normalise",
                      stacklevel=3)
    return out
