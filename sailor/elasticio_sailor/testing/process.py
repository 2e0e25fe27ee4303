"""One runner for every runtime a test starts: our worker, the Node sailor, the ferryman.

Each runs as a real subprocess configured only through its environment, as the platform starts it; its
output (JSON-lines logs) goes to a file that the test reads while it runs and prints when it fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

READY = "Fully initialized and waiting for messages"


class WorkerProcess:
    """`cmd` (our sailor by default) in `cwd`, with `env` over this process's environment minus ELASTICIO_*.

    The log goes to `log_path`, or to a temporary file that `kill()` deletes.
    """

    def __init__(
        self, env: dict[str, str], cwd: Path, cmd: list[str] | None = None, log_path: Path | None = None
    ) -> None:
        self._temporary = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="sailor-worker-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
        full_env.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen(
            cmd or [sys.executable, "-m", "elasticio_sailor", "run"],
            cwd=cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.logs():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not log {text!r} within {timeout}s:\n{self.logs()[-4000:]}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 20.0) -> WorkerProcess:
        self.wait_for_log(READY, timeout)
        return self

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM; the worker must exit within `timeout` (an assertion), and its exit code is returned."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"worker did not exit within {timeout}s:\n{self.logs()[-4000:]}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal, wait, kill if it hangs (for teardown: never raises); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """Kill it if it still runs and remove a temporary log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        if self._temporary:
            self.log_path.unlink(missing_ok=True)


def start_sailor(env: dict[str, str], component: Path, log_path: Path | None = None) -> WorkerProcess:
    """Our sailor as a container runs it: `python -m elasticio_sailor run` in the component's folder."""
    env = {"ELASTICIO_COMPONENT_PATH": str(component), "LOG_LEVEL": "info", **env}
    return WorkerProcess(env, component, log_path=log_path)
