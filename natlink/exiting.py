"""Leave the process once a command is done, without the interpreter's teardown.

Python's own exit frees every module and object one by one; for natlink's start-up set of modules that is
20-40 ms at the end of each command (measured on `natlink map`), longer than most commands' router work.
When nothing is left to wait for, the exit handlers run (logging's flush, a lab's teardown), the output is
flushed, and the process ends at once. A non-daemon thread still running gets the ordinary exit, which
waits for it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a program whose reader went away


def leave(code: int) -> NoReturn:
    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main):
        sys.exit(code)
    atexit._run_exitfuncs()  # what sys.exit would run before the teardown (logging.shutdown among them)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = code or EXIT_PIPE
        except (OSError, ValueError):  # closed or detached: nothing left to write
            pass
    os._exit(code)
