"""Training several small models at once on a CPU: one process per run, one thread each.

A model of a few hundred thousand parameters cannot keep two cores busy with one run: its matrix
products are too small to split well across threads. Two runs side by side, each on one thread,
do nearly twice the work of one run on two threads. The studies of chapters 03 and 05 train many
such runs, so they hand them to :func:`map_in_processes`.

Processes are *spawned*, not forked: a fork would copy torch's thread pools in whatever state they
are. A spawned process imports the caller's main module again, so a script that calls a study with
several workers needs a main guard, as PyTorch's DataLoader workers do; without one the pool
breaks, and this module says so instead of showing the pool's traceback.

>>> sorted(map_in_processes(abs, [-2, 1, -3], workers=2))  # results come in the order they finish
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

__all__ = ["map_in_processes"]


def map_in_processes(fn: Callable, jobs: Iterable, workers: int, initializer: Callable | None = None,
                     initargs: tuple = (), what: str = "the study") -> Iterator:
    """Yield ``fn(job)`` for every job, in the order they finish, from ``workers`` spawned processes.

    Each process starts with ``initializer(*initargs)``: the place to set one thread and load data
    once per process rather than once per job. ``fn``, ``initializer`` and the jobs must be
    picklable (functions defined at a module's top level). Callers run one worker in their own
    process instead, where an initializer would change the caller's own state.
    """
    if workers < 2:
        raise ValueError(f"workers={workers}: use 2 or more (run a single worker in this process)")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs) as pool:
            for future in as_completed([pool.submit(fn, job) for job in jobs]):
                yield future.result()
    except BrokenProcessPool:
        # The usual cause: a script without a main guard, which every spawned process runs again.
        raise RuntimeError(f"{what}'s {workers} worker processes stopped. From a script, call it under "
                           "`if __name__ == '__main__':`, or use one worker (workers=1)") from None
