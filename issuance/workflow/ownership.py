"""Who runs an issuance job, and whether that run may still be alive.

A job row names its owner as `host:pid:thread`; a second reader (or a second process)
may take a job over only when its owner is gone: on this host the process no longer
exists, on another host the row was not touched for `LEASE`. Kept apart from `issue.py`
so the job's steps there read as the job, and this rule can be named and tested alone.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta

LEASE = timedelta(minutes=10)  # a run on another host is presumed alive this long


def run_id() -> str:
    """Who runs a job: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def owner_alive(owner: str, updated_at: str, now: datetime) -> bool:
    """Whether the run that last wrote a job may still be running."""
    if not owner or owner == run_id():
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, _thread = rest.partition(":")
    if host != socket.gethostname():
        try:
            return now - datetime.fromisoformat(updated_at) < LEASE
        except ValueError:
            return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True  # another worker thread of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
