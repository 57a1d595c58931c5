"""A pool worker dies with the process that started it, even one killed with SIGKILL.

Otherwise it waits forever on a queue whose other end its sibling workers hold open, with the
face models (~170 MB) in memory.
"""

from __future__ import annotations

import os
import threading
import time

# Why a watchdog thread and not prctl(PR_SET_PDEATHSIG, SIGKILL): Linux sends that signal when the
# *thread* that spawned the child ends, not the process. ProcessPoolExecutor spawns its workers
# lazily from whichever thread calls submit(), so a scanner driven from a thread that retires
# (anyio's or a ThreadPoolExecutor's, a generator resumed on another thread) would have its
# workers killed mid-scan, its photos reported as failed. os.getppid() belongs to the process:
# it changes only when the whole parent is gone. The cost is a wake-up a second, and an exit
# delayed while the main thread is inside dlib without releasing the GIL (one photo at most).
CHECK_EVERY_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Exit now if `parent_pid` is no longer our parent, and later as soon as it stops being.

    `parent_pid` is the process that started this one (a "spawn" or "fork" pool; under
    "forkserver" a worker's parent is the server, and this would end every worker at once).
    """
    # The pid comes from the parent itself: one read here could already be init's, had the parent
    # died while this process started.
    if os.getppid() != parent_pid:
        _exit()
    watchdog = threading.Thread(target=_watch, args=(parent_pid,), name="lifeline", daemon=True)
    watchdog.start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(CHECK_EVERY_S)
    _exit()


def _exit() -> None:
    # sys.exit() in the watchdog would end only the watchdog, and the main thread may be blocked
    # reading the task queue; nothing is left to clean up for a parent that is gone.
    os._exit(1)
