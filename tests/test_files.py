"""Atomic writes and reading back what the course wrote: whole files or clear errors naming them."""

import os

import pytest

from minilm.core.files import UnreadableFileError, atomic_write_bytes, atomic_write_text, read_json


def test_a_failed_write_names_the_target_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_text(path, "{}")
    with pytest.raises(FileNotFoundError, match=f"cannot write {tmp_path / 'no' / 'x.json'}: .*MINILM_RUNS"):
        atomic_write_text(tmp_path / "no" / "x.json", "{}")
    if os.geteuid() != 0:  # root writes through permissions
        tmp_path.chmod(0o555)
        try:
            with pytest.raises(PermissionError, match=f"cannot write {path}"):
                atomic_write_bytes(path, b"new")
        finally:
            tmp_path.chmod(0o755)
    assert path.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


@pytest.mark.parametrize("text, kind, message", [
    ('{"a": 1', dict, "not a readable JSON file"),
    ("", dict, "not a readable JSON file"),
    ("[1, 2]", dict, "holds a JSON list, not the dict"),
    ('{"a": 1}', list, "holds a JSON dict, not the list"),
])
def test_read_json_names_a_damaged_file(tmp_path, text, kind, message):
    path = tmp_path / "report.json"
    path.write_text(text)
    with pytest.raises(UnreadableFileError, match=f"{path}: {message}.*delete it to rebuild it"):
        read_json(path, kind)


def test_read_json_reads_what_was_written(tmp_path):
    atomic_write_text(tmp_path / "r.json", '{"name": "Viola", "lines": [1, 2]}')
    assert read_json(tmp_path / "r.json") == {"name": "Viola", "lines": [1, 2]}
    path = tmp_path / "bytes.json"
    path.write_bytes(b'{"a": "\xff"}')  # not UTF-8
    with pytest.raises(UnreadableFileError, match="not a readable JSON file"):
        read_json(path)


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write_once_stale(tmp_path):
    # A SIGKILL mid-write leaves ".name.<random>.tmp" (352 MB for a checkpoint in one audit run).
    path = tmp_path / "base.pt"
    stale, fresh, other = (tmp_path / ".base.pt.abc123.tmp", tmp_path / ".base.pt.def456.tmp",
                           tmp_path / ".tokenizer.json.abc123.tmp")
    for leftover in (stale, fresh, other):
        leftover.write_bytes(b"half a checkpoint")
    old = os.path.getmtime(stale) - 2 * 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write_bytes(path, b"whole")
    assert path.read_bytes() == b"whole" and not stale.exists()
    assert fresh.exists()  # may be another process's write in progress
    assert other.exists()  # another file's: left to that file's next write


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_a_written_file_has_the_mode_open_would_give_and_keeps_a_users_chmod(tmp_path):
    # mkstemp makes 0600 files: without a chmod every figure and checkpoint would be private to
    # the user who ran the course, unlike any file written with open().
    atomic_write_text(tmp_path / "new.txt", "x")
    with open(tmp_path / "by_open.txt", "w") as f:
        f.write("x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == (tmp_path / "by_open.txt").stat().st_mode & 0o777
    (tmp_path / "new.txt").chmod(0o640)
    atomic_write_text(tmp_path / "new.txt", "rewritten")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640
