"""A real balancer (HAProxy, Debian's `haproxy`) and a Redis of the test's own, for
tests of several `leadflow serve` replicas: started as processes, stopped at the end.

The balancer is configured as docs/scaling.md recommends: round robin over the replicas
with a health check on /healthz, and layer-7 retries on another replica when a replica
fails to answer (connection refused, connection closed with no response) for every
request but a POST without an `Idempotency-Key`, which a retry could run twice.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.reliability.cluster import free_port

HAPROXY_CONFIG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    option http-buffer-request

frontend api
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    # A POST with no Idempotency-Key may have been carried out: never replayed.
    http-request disable-l7-retry if METH_POST !{{ req.hdr(Idempotency-Key) -m found }}
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
{servers}
"""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port}")


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install {package})")
    return found


class Balancer:
    """HAProxy in front of `backends` (host:port each), on a free port of its own."""

    def __init__(self, backends: list[str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"    server r{i} {backend} check" for i, backend in enumerate(backends)
        )
        self.config = workdir / f"haproxy-{self.port}.cfg"
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        self.log = workdir / f"haproxy-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Balancer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and our config
                [_binary("haproxy", "haproxy"), "-db", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, self.process, "haproxy")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class RedisServer:
    """A Redis of the test's own (no persistence), on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            [
                _binary("redis-server", "redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "redis-server")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
