"""minilm.core.processes: runs spread over spawned processes, and a clear error when they stop."""

import pytest

from minilm.core.processes import map_in_processes


def test_every_job_runs_once_and_comes_back():
    assert sorted(map_in_processes(abs, range(-5, 0), workers=2)) == [1, 2, 3, 4, 5]


def test_a_pool_that_breaks_says_what_to_do():
    # An initializer that fails stops every process, as a script without a main guard does.
    with pytest.raises(RuntimeError, match="the test's 2 worker processes stopped.*__main__"):
        list(map_in_processes(abs, [1, 2], workers=2, initializer=int, initargs=("not a number",), what="the test"))


def test_one_worker_is_the_callers_job():
    with pytest.raises(ValueError, match="2 or more"):
        list(map_in_processes(abs, [1], workers=1))
