"""Files and folders only the service's own user can read: 0600 and 0700.

The data folder holds the database (sealed faces, e-mail addresses), uploads waiting for their
scan, the mail outbox and the secret key. Modes are set explicitly where each is created, not left
to the process's umask, so a library user or a test gets the same as `serve` and `worker` (which
also set a umask of 077 for what other libraries create).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    path.chmod(FOLDER_MODE)  # mkdir leaves an existing folder's mode alone
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if it is missing (SQLite then keeps that mode, and gives
    it to its -wal and -shm files); tighten it if it exists."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    path.chmod(FILE_MODE)
    return path


def open_private(path: Path) -> IO[bytes]:
    """A new file for writing, created 0600 (truncated if it exists)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    return os.fdopen(fd, "wb")


def write_private(path: Path, data: bytes) -> None:
    with open_private(path) as f:
        f.write(data)
