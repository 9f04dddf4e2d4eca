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


def _temporary(folder, name, pid, age_seconds=0.0):
    import os
    import time

    tmp = folder / f".{name}.{pid}.x1y2.tmp" if pid is not None else folder / f".{name}.x1y2.tmp"
    tmp.write_bytes(b"half a file")
    old = time.time() - age_seconds
    os.utime(tmp, (old, old))
    return tmp


def test_temporaries_of_killed_writers_go_and_live_writers_keep_theirs(tmp_path):
    import os
    import subprocess
    import sys

    from minilm.core.files import STALE_SECONDS, remove_orphan_temporaries

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = _temporary(tmp_path, "base.pt", int(gone.stdout))  # that process has exited
    live = _temporary(tmp_path, "base.pt", os.getppid())  # our parent is running
    mine = _temporary(tmp_path, "data.bin", os.getpid())
    unnamed_old = _temporary(tmp_path, "tok.json", None, age_seconds=STALE_SECONDS + 60)  # written before pids
    unnamed_young = _temporary(tmp_path, "vocab.json", None)
    assert sorted(remove_orphan_temporaries(tmp_path)) == sorted([dead, unnamed_old])
    assert all(p.exists() for p in (live, mine, unnamed_young)) and not dead.exists()


def test_a_write_names_its_temporary_after_the_process_and_leaves_none(tmp_path):
    from minilm.core.files import atomic_write_text

    dead = _temporary(tmp_path, "summary.json", 999_999_999)
    atomic_write_text(tmp_path / "summary.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # its own gone, the dead writer's too
    assert not dead.exists()


def test_a_stage_cleans_up_after_a_killed_build_when_it_starts(isolated_runs):
    from minilm.stages import tokenizer

    tokenizer.artifact("smoke", progress=False)
    folder = tokenizer.path(tokenizer.as_budget("smoke")).parent
    dead = _temporary(folder, "tokenizer-x.json", 999_999_999)
    tokenizer.artifact("smoke", progress=False)
    assert not dead.exists()
