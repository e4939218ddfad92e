"""A throwaway PostgreSQL server on 127.0.0.1 for shared-state tests (Debian's postgresql package).

As root (CI), the server runs as the `postgres` user, which refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([found] if (found := shutil.which(name)) else [])
    assert found, f"PostgreSQL's {name} is needed (apt-get install postgresql); .ci/run installs it"
    return str(found[-1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster in a fresh temporary directory, yield a URL to a new database, stop and remove it after.

    The directory is outside pytest's private (0700) tree so the `postgres` user can reach it.
    """
    root = Path(tempfile.mkdtemp(prefix="insights-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    port = free_port()
    subprocess.run(
        _as_postgres([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        subprocess.run(
            _as_postgres([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "state"]),
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/state"
    finally:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
            timeout=120,
        )
