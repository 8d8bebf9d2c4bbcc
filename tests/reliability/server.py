"""The API as a real process (`leadflow serve`), as an operator runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.reliability.cluster import free_port

LEADFLOW = Path(sys.executable).with_name("leadflow")
OPERATOR_TOKEN = "reliability-operator-token"
REPO = Path(__file__).resolve().parents[2]


class ApiServer:
    def __init__(self, database_url: str, workdir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / f"server-{uuid.uuid4().hex[:6]}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")},
            "DATABASE_URL": database_url,
            "LEADFLOW_ADMIN_TOKEN": OPERATOR_TOKEN,
            "LEADFLOW_SECRET_KEY": "reliability-secret-key-of-32-characters",
            "LEADFLOW_DATA_DIR": str(workdir / "data"),
            "LEADFLOW_FILES_DIR": str(workdir / "files"),
            "LEADFLOW_LOG_JSON": "true",
            **{f"LEADFLOW_{k.upper()}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, migrate: bool = False, worker: bool = False) -> ApiServer:
        self.launch(migrate=migrate, worker=worker)
        return self.ready()

    def launch(self, *, migrate: bool = False, worker: bool = False) -> None:
        """Starts the process (migrating first with `migrate`, with the worker inside
        with `worker`) without waiting for it."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                [str(LEADFLOW), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 *([] if migrate else ["--no-migrate"]), *(["--worker"] if worker else [])],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> ApiServer:
        """Once the process answers /healthz."""
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"leadflow serve exited:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"leadflow serve did not answer:\n{self.log_text()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.signal(signal.SIGKILL)
            self.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def error_lines(self) -> str:
        """The log's ERROR lines (with their tracebacks): what a failed assertion shows,
        where the tail of the log is only access lines."""
        lines = self.log_text().splitlines()
        return "\n".join(line for line in lines if '"level":"ERROR"' in line)[-12000:]


async def create_company(client: httpx.AsyncClient) -> dict[str, str]:
    """A new company; the headers of its first admin."""
    response = await client.post(
        "/api/v1/companies",
        json={"name": "Faults", "admin_email": f"admin-{uuid.uuid4().hex[:8]}@example.com"},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['api_token']}"}
