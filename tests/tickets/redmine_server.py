"""Starting the real Redmine of the integration test, early and in the background.

``Launch`` runs ``redmine_on_loopback.sh install`` then ``start`` in a child process as soon as
pytest knows a Redmine test is selected, so thin boots (~5 s of Rails loading) while other tests
run; the session fixture then only waits for it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("redmine_on_loopback.sh")
API_KEY = "0123456789abcdef0123456789abcdef01234567"
SKIP_PREFIX = "REDMINE INTEGRATION TEST DID NOT RUN"


class CannotRun(Exception):
    """Redmine cannot run on this machine (exit 3 of the script); the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Launch:
    def __init__(self) -> None:
        self.port = _free_port()
        self.pidfile = Path(tempfile.mkdtemp(prefix="knownfix-redmine-")) / "thin.pid"
        script = f'"$0" install && "$0" start {self.port} "{self.pidfile}"'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, str(SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "API_KEY": API_KEY},
        )
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 1200) -> str:
        """The server's URL once it answers; ``CannotRun`` or ``RuntimeError`` otherwise."""
        _, stderr = self.proc.communicate(timeout=timeout)
        if self.proc.returncode:
            lines = [ln for ln in stderr.splitlines() if ln.strip()]
            if self.proc.returncode == 3:
                raise CannotRun(lines[-1] if lines else "the set-up script declined")
            raise RuntimeError(f"Redmine set-up failed ({self.proc.returncode}): {stderr[-2000:]}")
        return self.url

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for thin to exit (it closes its database)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


#: the launch started at collection time (by conftest), shared with the session fixture
EARLY: dict[str, Launch] = {}
