"""Token shards: round trip, atomicity, reuse and clear errors on damaged files."""

import json

import numpy as np
import pytest

from minilm.data.shards import ShardError, TokenShards, is_complete, load_index, read_shard, write_shards
from minilm.text.tokenizer import ENDOFTEXT, Tokenizer

DOCS = ["the first document", "a second one 🤗", "", "third: 12345"]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train(" ".join(DOCS) * 5, vocab_size=300)


def test_round_trip_with_separators_across_several_shards(tok, tmp_path):
    out = write_shards({"train": DOCS * 10, "val": DOCS[:1]}, tok, tmp_path, key="k", shard_tokens=20)
    shards = TokenShards(out)
    tokens = shards.tokens("train")
    expected = [i for d in DOCS * 10 for i in tok.encode(d) + [tok.special_id(ENDOFTEXT)]]
    assert tokens.dtype == np.uint16 and tokens.tolist() == expected
    assert len(shards.index["splits"]["train"]["shards"]) > 1
    assert shards.index["splits"]["train"]["documents"] == 40
    assert tok.decode(shards.tokens("val").tolist()) == DOCS[0] + ENDOFTEXT
    shards.verify_checksums()


def test_reuse_is_keyed(tok, tmp_path):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    assert is_complete(tmp_path, "abc") and not is_complete(tmp_path, "other")


def test_unfinished_build_is_not_complete(tok, tmp_path):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    (tmp_path / "index.json").unlink()  # as if interrupted before the index was written
    assert not is_complete(tmp_path, "abc")
    with pytest.raises(ShardError, match="did not finish"):
        TokenShards(tmp_path)


def test_truncated_shard_is_detected(tok, tmp_path):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    shard = tmp_path / "train_000.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(ShardError, match="truncated"):
        read_shard(shard)
    assert not is_complete(tmp_path, "abc")


def test_corrupted_bytes_fail_the_checksum(tok, tmp_path):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    shard = tmp_path / "train_000.bin"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="checksum mismatch"):
        TokenShards(tmp_path).verify_checksums()


@pytest.mark.parametrize("content, message", [(b"\x00" * 10, "too short"), (b"\x01" * 64, "bad magic")])
def test_foreign_files_are_rejected(tmp_path, content, message):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(ShardError, match=message):
        read_shard(path)


def test_corrupted_index_is_clear(tok, tmp_path):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    (tmp_path / "index.json").write_text("{oops")
    with pytest.raises(ShardError, match="corrupted index"):
        load_index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ShardError, match="not a minilm shard index"):
        load_index(tmp_path)


@pytest.mark.parametrize("content, message", [
    (b"[]", "not a minilm shard index"),
    (json.dumps({"format": "minilm-shards"}).encode(), "splits and shards are not as written"),
    (json.dumps({"format": "minilm-shards", "splits": {"train": {"shards": [{}]}}}).encode(), "not as written"),
    (b"\xff\xfe\x00binary", "corrupted index"),
])
def test_damaged_indexes_are_shard_errors(tok, tmp_path, content, message):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    (tmp_path / "index.json").write_bytes(content)
    with pytest.raises(ShardError, match=message):
        load_index(tmp_path)
    assert not is_complete(tmp_path, "abc")


def test_a_folder_is_not_a_shard(tmp_path):
    with pytest.raises(ShardError, match="not a file"):
        read_shard(tmp_path)


@pytest.mark.parametrize("splits, error, message", [
    ({"../evil": ["hi"]}, ValueError, "split name '../evil'"),  # would write outside the folder
    ({"train/x": ["hi"]}, ValueError, "split name 'train/x'"),
    ({"train": "hello"}, TypeError, "must be a list of documents"),  # five one-letter documents before
])
def test_bad_splits_are_refused_before_anything_is_written(tok, tmp_path, splits, error, message):
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        write_shards(splits, tok, out, key="abc")
    assert list(tmp_path.iterdir()) == []


def test_unknown_split_is_clear(tok, tmp_path):
    write_shards({"train": DOCS}, tok, tmp_path, key="abc")
    with pytest.raises(ShardError, match="no split 'test'"):
        TokenShards(tmp_path).tokens("test")
