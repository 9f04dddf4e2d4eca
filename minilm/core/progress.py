"""Progress bars that suit where they are written: live in a terminal or notebook, readable in a log.

Every progress bar in minilm comes from :func:`progress_bar`. In a terminal, or in a Jupyter cell,
it is the usual tqdm bar, redrawn in place with carriage returns. Written to a file or a pipe
(``minilm pipeline > log 2>&1``) a redrawn bar would leave one line per update in the file, so there
it prints whole lines instead: about every 10% of the total and once at the end, or every
``interval`` seconds when the total is unknown.

>>> import io
>>> log = io.StringIO()  # not a terminal, like a redirected stderr
>>> for _ in progress_bar(range(1000), desc="steps", file=log):
...     pass
>>> lines = log.getvalue().splitlines()
>>> len(lines), "\\r" in log.getvalue()
(11, False)
>>> [line.split("|")[2].split()[0] for line in lines]  # 0%, then every 10%
['0/1000', '100/1000', '200/1000', '300/1000', '400/1000', '500/1000', '600/1000', '700/1000', '800/1000', '900/1000', '1000/1000']
"""

from __future__ import annotations

import math
import sys

from tqdm import tqdm

__all__ = ["LogBar", "is_interactive", "progress_bar"]


def is_interactive(stream) -> bool:
    """Whether ``stream`` shows a bar redrawn in place: a terminal, or a Jupyter cell's output.

    (Jupyter's stream says it is not a terminal but renders carriage returns in place.)
    """
    if type(stream).__module__.split(".")[0] == "ipykernel":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):  # no isatty, or a closed file
        return False


def progress_bar(iterable=None, *, notebook: bool = False, interval: float = 30.0, **kwargs) -> tqdm:
    """A tqdm bar (same arguments) for ``iterable``: live where it can be redrawn, whole lines in a log.

    The bar writes to ``file`` (tqdm's default: ``sys.stderr``). Where that is a terminal or a
    Jupyter cell, this is ``tqdm.tqdm(iterable, **kwargs)`` unchanged, or ``tqdm.auto.tqdm`` (a
    widget in Jupyter) with ``notebook=True``. Anywhere else it is a :class:`LogBar`, which prints a
    newline-terminated line about every 10% of the total and at the end (every ``interval`` seconds
    without a total); ``mininterval`` and ``miniters`` are then ignored.

    >>> import io
    >>> class Terminal(io.StringIO):
    ...     def isatty(self):
    ...         return True
    >>> type(progress_bar(range(3), file=Terminal())).__name__, type(progress_bar(range(3), file=io.StringIO())).__name__
    ('tqdm', 'LogBar')
    """
    file = kwargs.get("file")
    if is_interactive(sys.stderr if file is None else file):
        if notebook:
            from tqdm.auto import tqdm as live
        else:
            live = tqdm
        return live(iterable, **kwargs)
    return LogBar(iterable, interval=interval, **kwargs)


class LogBar(tqdm):
    """tqdm for a log file: whole lines (no carriage returns), about every 10% of the total.

    The line is tqdm's usual text (description, percentage, an ASCII meter, n/total, elapsed and
    remaining time, rate, postfix), untrimmed. ``set_postfix`` and ``set_description`` only change
    the next line; the last line, printed on ``close()``, reports the final count and overall rate.
    Without a total a line is printed every ``interval`` seconds. Use :func:`progress_bar`.
    """

    def __init__(self, iterable=None, *args, interval: float = 30.0, **kwargs):
        self._logged_n = None  # the count of the last line printed
        kwargs.update(ascii=True, dynamic_ncols=False, mininterval=0.0, miniters=1,
                      maxinterval=math.inf)  # tqdm's monitor thread would set miniters to 1 after maxinterval
        super().__init__(iterable, *args, **kwargs)
        if self.disable:
            return
        if self.total:  # a line every 10% of the work left
            self.miniters = max(1, math.ceil((self.total - self.n) / 10))
        else:  # total unknown (or 0): a line every `interval` seconds
            self.mininterval = interval

    @property
    def format_dict(self):
        return {**super().format_dict, "ncols": None}  # whole lines: never trimmed to a terminal's width

    def display(self, msg=None, pos=None):
        if msg == "":  # tqdm clearing the line: nothing to clear in a log
            return False
        if msg is None and self.n == self._logged_n:  # this count is in the log already
            return True
        out = getattr(sys, "stdout", None)
        if out is not None:  # lines printed before this one come first in a log holding both streams
            out.flush()
        self.fp.write((self.__str__() if msg is None else msg) + "\n")
        getattr(self.fp, "flush", lambda: None)()
        self._logged_n = self.n
        return True

    def close(self):
        if not getattr(self, "disable", True) and hasattr(self, "last_print_t"):
            with self._lock:
                self._ema_dt = lambda: None  # the last line gives the overall rate, as tqdm's does
                self.display()
            self.leave = False  # tqdm's own close then only forgets the bar (and writes nothing)
        super().close()

    def clear(self, nolock=False):
        pass  # nothing to erase: lines in a log stay

    def moveto(self, n):
        pass  # no cursor: nested bars print their lines in turn

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s="", refresh=True):
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=False)

    def set_description_str(self, desc=None, refresh=True):
        super().set_description_str(desc, refresh=False)
