"""Byte-level BPE: training, the two encoders, GPT-4 equivalence, round trips, save/load."""

import json
import re
import unicodedata
from collections import Counter

import pytest
import regex
import tiktoken
from hypothesis import given
from hypothesis import strategies as st

from minilm.core.checks import ConfigError
from minilm.text.corpus import shakespeare_texts
from minilm.text.tokenizer import (
                                   ENDOFTEXT,
                                   SPECIAL_TOKENS,
                                   UNICODE_ENGINES,
                                   UNICODE_SENTINELS,
                                   Tokenizer,
                                   TokenizerFileError,
                                   assigned_in_every_engine,
                                   bpe_encode_piece,
                                   bytes_per_token,
                                   count_pretokens,
                                   merge_pair,
                                   pair_counts,
                                   split_pattern,
                                   train_bpe,
                                   unassigned_code_points,
                                   unicode_version,
                                   )

HARD_STRINGS = [
    "",
    " ",
    "a",
    "\n\n\n",
    "   leading and trailing   ",
    "\r\n\tTabs\tand\r\nCRLF\r\n",
    "12345678901234567890",
    "3.14159 + 2,718 = 5.86 (approx.)",
    "👍🏽🤗👨‍👩‍👧‍👦",
    "안녕하세요, 세계! 한국어 텍스트입니다.",
    "日本語のテキストと中文文本",
    "naïve café — “quoted” ’tis",
    "def f(x):\n    return x ** 2  # comment\n",
    "don't won't I'LL You'Re",
    "<|endoftext|> in the middle <|im_start|>user",
    "\u0000\u0001 control \u007f",
    "𝕳𝖊𝖑𝖑𝖔 math letters",
]


def naive_train(pretoken_counts: dict, num_tokens: int):
    """Reference trainer: recount every pair over every word at every step (slow but obvious)."""
    words = {tuple(w.encode()): c for w, c in pretoken_counts.items()}
    vocab = [bytes([i]) for i in range(256)]
    merges = []
    while len(vocab) < num_tokens:
        counts = Counter()
        for word, c in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merged = vocab[best[0]] + vocab[best[1]]
        new_id = vocab.index(merged) if merged in vocab else len(vocab)
        if new_id == len(vocab):
            vocab.append(merged)
        merges.append((best[0], best[1], new_id))
        merged_words = Counter()
        for word, c in words.items():
            merged_words[tuple(merge_pair(list(word), best, new_id))] += c
        words = merged_words
    return merges, vocab


# -- training ----------------------------------------------------------------------------------


def test_incremental_training_matches_naive_recount():
    texts = shakespeare_texts("train", max_chars=30_000)
    counts = count_pretokens(texts, split_pattern(1))
    assert train_bpe(counts, 256 + 150) == naive_train(counts, 256 + 150)


def test_training_is_deterministic(shakespeare_sample):
    a = Tokenizer.train(shakespeare_sample[:20], vocab_size=600)
    b = Tokenizer.train(shakespeare_sample[:20], vocab_size=600)
    assert a.merges == b.merges and a.ranks == b.ranks


def test_vocab_size_counts_bytes_merges_and_specials(small_tokenizer):
    assert small_tokenizer.vocab_size == 1024
    assert len(small_tokenizer.ranks) == 1024 - len(SPECIAL_TOKENS)
    assert sorted(small_tokenizer.special_tokens.values()) == list(range(1024 - len(SPECIAL_TOKENS), 1024))


@pytest.mark.fuzz
@given(st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=9), st.integers(1, 9), max_size=8))
def test_tokens_always_have_distinct_bytes_and_contiguous_ids(words):
    # tiktoken needs one id per byte string; the trainer guarantees it on any corpus.
    merges, vocab = train_bpe(words, 300)
    assert len(set(vocab)) == len(vocab)
    assert sorted({m[2] for m in merges}) == list(range(256, len(vocab)))


def test_training_stops_when_no_pair_is_left():
    tok = Tokenizer.train("aaaa", vocab_size=400)
    assert tok.decode(tok.encode("aaaa")) == "aaaa"
    assert len(tok.encode("aaaa")) == 1
    assert tok.vocab_size < 400


def test_single_digit_groups_never_merge_digits(small_tokenizer):
    assert not any(regex.search(rb"\d\d", token) for token in small_tokenizer.ranks)
    assert small_tokenizer.token_strings(small_tokenizer.encode("2025")) == ["2", "0", "2", "5"]


def test_split_pattern_groups_digits():
    assert regex.findall(split_pattern(3), "1234567") == ["123", "456", "7"]
    assert regex.findall(split_pattern(2), "1234567") == ["12", "34", "56", "7"]
    with pytest.raises(ConfigError, match="digit_group=4"):
        split_pattern(4)


@pytest.mark.parametrize("vocab_size, message", [(10, "vocab_size=10 is out of range"),
                                                 (260, "too small"), (70000, "out of range")])
def test_bad_vocab_sizes_get_clear_errors(vocab_size, message):
    with pytest.raises(ValueError, match=message):
        Tokenizer.train("some text", vocab_size=vocab_size)


def test_truncation_equals_training_a_smaller_vocabulary(shakespeare_sample):
    big = Tokenizer.train(shakespeare_sample[:30], vocab_size=700)
    small = Tokenizer.train(shakespeare_sample[:30], vocab_size=400)
    cut = big.truncated(400)
    assert cut.ranks == small.ranks and cut.special_tokens == small.special_tokens
    assert cut.encode(shakespeare_sample[-1]) == small.encode(shakespeare_sample[-1])
    with pytest.raises(ConfigError):
        big.truncated(800)


# -- the two encoders agree -------------------------------------------------------------------


def test_bpe_piece_merges_lowest_rank_first():
    ranks = {bytes([i]): i for i in range(256)} | {b"bc": 256, b"ab": 257, b"abc": 258}
    assert bpe_encode_piece(b"abc", ranks) == [258]  # the whole piece is a token
    assert bpe_encode_piece(b"abcd", ranks) == [258, ord("d")]  # bc first, then a+bc = abc
    assert bpe_encode_piece(b"xbcbc", ranks) == [ord("x"), 256, 256]


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_encoders_agree_and_round_trip_on_hard_strings(small_tokenizer, text):
    ids = small_tokenizer.encode(text)
    assert ids == small_tokenizer.encode_python(text)
    assert small_tokenizer.decode(ids) == text


def test_encoders_agree_on_a_whole_held_out_play(small_tokenizer):
    play = "".join(shakespeare_texts("val")[:8])
    ids = small_tokenizer.encode(play)
    assert ids == small_tokenizer.encode_python(play)
    assert small_tokenizer.decode(ids) == play


# The two encoders run the same pattern in two regex engines (regex, tiktoken's Rust engine), each with
# the Unicode tables of its release: they cut text the same way wherever both tables assign its code
# points. Fuzzing draws from those (test_two_unicode_versions_two_tokenizations records the rest).
SHARED_UNICODE = st.characters(exclude_categories=("Cs", "Cn")).filter(assigned_in_every_engine)


@pytest.mark.fuzz
@given(st.text(SHARED_UNICODE, max_size=200))
def test_fuzz_encoders_agree(small_tokenizer, text):
    assert small_tokenizer.encode(text) == small_tokenizer.encode_python(text)


@pytest.mark.fuzz
@given(st.text(max_size=200))
def test_fuzz_round_trip_on_any_text(small_tokenizer, text):
    for encode in (small_tokenizer.encode, small_tokenizer.encode_python):
        assert small_tokenizer.decode(encode(text)) == text


@pytest.mark.fuzz
@given(st.lists(st.sampled_from(["the", " the", "  ", "\n", "0", "12", "9999", "é", "🤗", "안녕", "'s", ENDOFTEXT, "\t"]),
                max_size=40))
def test_fuzz_token_soup(small_tokenizer, parts):
    text = "".join(parts)
    assert small_tokenizer.encode(text) == small_tokenizer.encode_python(text)
    assert small_tokenizer.decode(small_tokenizer.encode(text)) == text


def test_lone_surrogates_are_replaced_like_tiktoken(small_tokenizer):
    text = "bad \ud800 surrogate"
    assert small_tokenizer.encode(text) == small_tokenizer.encode_python(text)
    assert small_tokenizer.decode(small_tokenizer.encode(text)) == "bad \ufffd surrogate"


# -- special tokens ----------------------------------------------------------------------------


def test_special_tokens_only_when_allowed(small_tokenizer):
    text = f"end{ENDOFTEXT}start"
    eot = small_tokenizer.special_id(ENDOFTEXT)
    plain = small_tokenizer.encode(text)
    assert eot not in plain and small_tokenizer.decode(plain) == text
    for encode in (small_tokenizer.encode, small_tokenizer.encode_python):
        ids = encode(text, allowed_special="all")
        assert ids.count(eot) == 1 and small_tokenizer.decode(ids) == text
        assert encode(text, allowed_special={ENDOFTEXT}) == ids
    with pytest.raises(KeyError, match="not special tokens"):
        small_tokenizer.encode(text, allowed_special={"<|nope|>"})


def test_required_special_tokens_exist(small_tokenizer):
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|calc_start|>", "<|think_start|>"):
        assert token in small_tokenizer.special_tokens


# -- decoding ----------------------------------------------------------------------------------


def test_decoding_partial_utf8_does_not_crash(small_tokenizer):
    ids = [b for b in "é🤗".encode()]  # raw byte tokens, cut in the middle of characters
    assert small_tokenizer.decode(ids[:1]) == "\ufffd"
    assert small_tokenizer.decode(ids[1:4]).count("\ufffd") >= 1
    assert small_tokenizer.decode_bytes(ids) == "é🤗".encode()
    with pytest.raises(UnicodeDecodeError):
        small_tokenizer.decode(ids[:1], errors="strict")


def test_decoding_an_unknown_id_is_a_clear_error(small_tokenizer):
    with pytest.raises(ValueError, match="token id 99999 is not in this tokenizer"):
        small_tokenizer.decode([1, 99999])


# -- GPT-4 (cl100k_base) equivalence ---------------------------------------------------------


def test_cl100k_known_ids(cl100k):
    # Published cl100k_base ids (e.g. the tiktoken README): "hello world" -> [15339, 1917].
    assert cl100k.encode_python("hello world") == [15339, 1917]
    assert cl100k.special_id(ENDOFTEXT) == 100257


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_pure_python_reproduces_tiktoken_cl100k(cl100k, text):
    reference = tiktoken.Encoding("cl100k_reference", pat_str=cl100k.pattern, mergeable_ranks=cl100k.ranks,
                                  special_tokens=cl100k.special_tokens)
    assert cl100k.encode_python(text) == reference.encode_ordinary(text)
    assert cl100k.encode_python(text, allowed_special="all") == reference.encode(text, allowed_special="all")


def test_pure_python_reproduces_tiktoken_cl100k_on_a_play(cl100k):
    play = "".join(shakespeare_texts("val")[:3])
    assert cl100k.encode_python(play) == cl100k.tiktoken_encoding.encode_ordinary(play)


@pytest.mark.fuzz
@given(st.text(SHARED_UNICODE, max_size=80))
def test_fuzz_pure_python_reproduces_tiktoken_cl100k(cl100k, text):
    assert cl100k.encode_python(text) == cl100k.tiktoken_encoding.encode_ordinary(text)


# U+3D000 SMALL SEAL CHARACTER-3D000 was assigned in Unicode 18.0: a letter (\p{L}) to an engine with
# 18.0 tables, unassigned to an older one. GPT-4's pattern then cuts "\U0003D000:A" in two ways.
SMALL_SEAL = "\U0003D000"
CUT_AS_LETTER = (["\U0003D000", ":A"], [172, 121, 222, 222, 56748])  # the letter alone, then ":A"
CUT_AS_SYMBOL = (["\U0003D000:", "A"], [172, 121, 222, 222, 25, 32])  # a run of symbols ending in ':'


def test_two_unicode_versions_two_tokenizations(cl100k):
    text = SMALL_SEAL + ":A"
    regex_knows_it = unicode_version("regex") not in ("14.0 or older", "15.0", "15.1", "16.0", "17.0")
    tiktoken_knows_it = SMALL_SEAL not in unassigned_code_points("tiktoken")
    assert regex_knows_it == (SMALL_SEAL not in unassigned_code_points("regex"))
    pieces, ids = CUT_AS_LETTER if regex_knows_it else CUT_AS_SYMBOL
    assert regex.findall(cl100k.pattern, text) == pieces
    assert cl100k.encode_python(text) == ids
    assert cl100k.tiktoken_encoding.encode_ordinary(text) == (CUT_AS_LETTER if tiktoken_knows_it else CUT_AS_SYMBOL)[1]
    assert (cl100k.encode_python(text) == cl100k.tiktoken_encoding.encode_ordinary(text)) == (
        regex_knows_it == tiktoken_knows_it)
    for ids in (cl100k.encode_python(text), cl100k.tiktoken_encoding.encode_ordinary(text)):
        assert cl100k.decode(ids) == text  # either cut still spells the text


@pytest.mark.parametrize("version, letter", UNICODE_SENTINELS)
def test_unicode_version_is_read_off_the_sentinel_letters(version, letter):
    for engine in UNICODE_ENGINES:
        known = unicode_version(engine)
        newer = known == "14.0 or older" or tuple(map(int, version.split("."))) > tuple(map(int, known.split(".")))
        assert (letter in unassigned_code_points(engine)) == newer, (engine, known)
    assert unicodedata.category(letter) == ("Cn" if letter in unassigned_code_points("unicodedata") else "Lo")


def test_unassigned_code_points_checks_its_engine():
    with pytest.raises(ValueError, match="unknown engine 'pcre': choose one of unicodedata, regex, tiktoken"):
        unassigned_code_points("pcre")
    assert not assigned_in_every_engine("\U0010FFFF") and assigned_in_every_engine("안")


def test_reference_tokenizers_cannot_be_saved(cl100k, tmp_path):
    with pytest.raises(ValueError, match="only trained tokenizers are saved"):
        cl100k.save(tmp_path / "cl100k.json")


# -- save / load -------------------------------------------------------------------------------


def test_save_load_round_trip(small_tokenizer, tmp_path):
    path = small_tokenizer.save(tmp_path / "tok.json")
    loaded = Tokenizer.load(path)
    assert loaded.ranks == small_tokenizer.ranks and loaded.special_tokens == small_tokenizer.special_tokens
    text = "".join(HARD_STRINGS)
    assert loaded.encode(text, allowed_special="all") == small_tokenizer.encode(text, allowed_special="all")


def test_truncated_file_is_a_clear_error(small_tokenizer, tmp_path):
    path = small_tokenizer.save(tmp_path / "tok.json")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TokenizerFileError, match="truncated or corrupted"):
        Tokenizer.load(path)


def test_corrupted_file_is_a_clear_error(small_tokenizer, tmp_path):
    path = small_tokenizer.save(tmp_path / "tok.json")
    payload = json.loads(path.read_text())
    payload["merges"][10][0] = 7  # still valid JSON, wrong content
    path.write_text(json.dumps(payload))
    with pytest.raises(TokenizerFileError, match="checksum mismatch"):
        Tokenizer.load(path)


def _set(payload, path, value):
    *parents, last = path
    for key in parents:
        payload = payload[key]
    payload[last] = value


@pytest.mark.parametrize("where, value, message", [
    (["pattern"], "(unclosed", "split pattern does not compile"),
    (["pattern"], 42, "'pattern' must be a str"),
    (["special_tokens", "<|im_end|>"], "x", "special token '<|im_end|>' has id 'x'"),
    (["special_tokens", "<|im_end|>"], 1.5, "has id 1.5"),
    (["special_tokens", "<|im_end|>"], -3, "has id -3"),
    (["special_tokens", "<|im_end|>"], 65, "collides with a learned token"),
    (["merges", 3], [99999, 1, 259], "beyond the 259 tokens"),
    (["merges", 3], [-1, 1, 259], "three ids >= 0"),
    (["merges", 3], [1, 2], "three ids >= 0"),
    (["merges", 3], [1, 2, 5000], "beyond the 259 tokens"),
    (["merges"], {"a": 1}, "'merges' must be a list"),
])
def test_an_edited_file_with_a_valid_checksum_is_one_clear_line(small_tokenizer, tmp_path, where, value, message):
    from minilm.text.tokenizer import _checksum

    path = small_tokenizer.save(tmp_path / "tok.json")
    payload = json.loads(path.read_text())
    _set(payload, where, value)
    payload.pop("sha256")
    payload["sha256"] = _checksum(payload)  # as if edited by someone who knows the format
    path.write_text(json.dumps(payload))
    with pytest.raises(TokenizerFileError, match=re.escape(message)) as caught:
        Tokenizer.load(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


@pytest.mark.parametrize("content, message", [("[1, 2]", "not a minilm tokenizer"),
                                              ('{"format": "minilm-bpe", "version": 99}', "version 99"),
                                              ("\xff\xfe garbage", "not a readable")])
def test_foreign_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "tok.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.load(path)


def test_missing_file_names_the_command_that_builds_it(tmp_path):
    with pytest.raises(TokenizerFileError, match="minilm tokenizer train"):
        Tokenizer.load(tmp_path / "nope.json")


def test_failed_save_keeps_the_old_file(small_tokenizer, tmp_path, monkeypatch):
    path = small_tokenizer.save(tmp_path / "tok.json")
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError("disk full")

    import minilm.core.files as module

    # Fail after the new content was written to the temp file, before the rename.
    monkeypatch.setattr(module.os, "fsync", disk_full)
    with pytest.raises(OSError):
        small_tokenizer.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]  # no temp file left behind


# -- measurements ----------------------------------------------------------------------------


def test_bytes_per_token(small_tokenizer):
    val = shakespeare_texts("val")[:5]
    assert bytes_per_token(lambda t: t.encode(), val) == 1.0
    assert bytes_per_token(small_tokenizer.encode, val) > 2.0  # merges really compress held-out text
    with pytest.raises(ValueError, match="no tokens"):
        bytes_per_token(small_tokenizer.encode, [""])


def test_pair_counts_and_merge_pair():
    assert pair_counts([1, 1, 1]) == Counter({(1, 1): 2})
    assert merge_pair([1, 1, 1], (1, 1), 5) == [5, 1]
    assert merge_pair([], (1, 1), 5) == []


def test_from_tiktoken_wraps_an_encoding(cl100k):
    wrapped = Tokenizer.from_tiktoken(cl100k.tiktoken_encoding)
    assert wrapped.encode_python("Hello, world! 123") == cl100k.tiktoken_encoding.encode_ordinary("Hello, world! 123")


@pytest.mark.parametrize("text", [5, b"hello", ["hello"], None])
def test_encoding_something_that_is_not_text_names_it(small_tokenizer, text):
    with pytest.raises(TypeError, match=f"encode takes a str, got {type(text).__name__}"):
        small_tokenizer.encode(text)


@pytest.mark.parametrize("texts", [b"hello world", None])
def test_training_on_something_that_is_not_text_names_it(texts):
    with pytest.raises(TypeError, match=f"train takes a str or an iterable of str, got {type(texts).__name__}"):
        Tokenizer.train(texts, vocab_size=300)
