"""What the benchmarks in bench/ share: their database, servers, signing, fill SQL, tables.

Each benchmark works in a database of its own on the DATABASE_URL server (recreated and
migrated each run), or on the embedded PostgreSQL when DATABASE_URL is not set. Fills are
set-based (INSERT ... SELECT generate_series): a million leads in about a minute.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from leadflow.capture.signing import sign  # noqa: E402
from leadflow.config import to_async_url  # noqa: E402
from leadflow.localdb import (  # noqa: E402
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    migrate,
)

API = "/api/v1"
OPERATOR_TOKEN = "bench-operator-token"  # noqa: S105 - a local benchmark's own token
SERVER_KEY = "bench-server-key-0123456789abcdefghijklmnop"


# --- database -------------------------------------------------------------------------


class BenchDatabase:
    """A fresh database named `name` on DATABASE_URL's server, or on the embedded one."""

    def __init__(self, name: str, data_dir: Path | None = None) -> None:
        configured = os.environ.get("DATABASE_URL")
        self.embedded: EmbeddedPostgres | None = None
        if configured:
            server = to_async_url(configured)
        else:
            self.embedded = EmbeddedPostgres(data_dir or ROOT / ".data")
            server = to_async_url(self.embedded.url())
        self.url = make_url(server).set(database=name).render_as_string(hide_password=False)
        self.dsn = self.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def recreate(self) -> None:
        """Drop, create and migrate (alembic runs its own event loop: kept in a thread)."""

        def prepare() -> None:
            asyncio.run(drop_database(self.url))
            asyncio.run(ensure_database(self.url))
            migrate(self.url)

        thread = threading.Thread(target=prepare)
        thread.start()
        thread.join()

    def drop(self) -> None:
        asyncio.run(drop_database(self.url))

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


# --- servers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# How leadflow serves in production (leadflow.cli.cmd_serve): one uvicorn worker, uvloop,
# httptools, no uvicorn access log (leadflow writes its own JSON line per request).
UVICORN_ARGS = (
    "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
    "--proxy-headers",
)  # fmt: skip


def uvicorn_command(app: str, port: int, *, factory: bool = False) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    return [*command, *UVICORN_ARGS, "--log-level", "warning", *(["--factory"] if factory else [])]


def leadflow_command(port: int) -> list[str]:
    """`leadflow serve` itself, as production runs it (migrations already applied)."""
    leadflow = Path(sys.executable).with_name("leadflow")
    return [str(leadflow), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"]


def leadflow_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "LEADFLOW_ADMIN_TOKEN": OPERATOR_TOKEN,
        "LEADFLOW_SECRET_KEY": SERVER_KEY,
        # Captures are rate limited per form and per client address: out of reach here.
        "LEADFLOW_CAPTURE_RATE_PER_FORM": "100000000/minute",
        "LEADFLOW_CAPTURE_RATE_PER_CLIENT": "100000000/minute",
        **extra,
    }


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: IO[bytes]) -> None:
        self.process = process
        self.base = base
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        """Resident set size of the server process (VmRSS, KiB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system, /proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, size: int = 1500) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-size:]


@contextmanager
def serve(
    command: list[str], env: dict[str, str], *, log: IO[bytes] | None = None
) -> Iterator[Server]:
    """Run a server (its last argument pair names the port), wait for /healthz, stop it.

    The server's stdout and stderr go to `log` (a temporary file unless given): a real
    file, as a container runtime would collect them."""
    port = command[command.index("--port") + 1]
    own_log = log is None
    sink: IO[bytes] = log if log is not None else tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, env={**os.environ, **env}, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
    )
    server = Server(process, f"http://127.0.0.1:{port}", sink)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(server.base + "/healthz", timeout=1):  # noqa: S310
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"{' '.join(command)} did not start:\n{server.log_tail()}"
                    ) from None
                time.sleep(0.1)
        yield server
    except BaseException:
        print(f"server log (last 1,500 bytes):\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if own_log:
            sink.close()


# --- capture signing (Standard Webhooks, see leadflow.capture.signing) ----------------


def signed(secret: str, body: bytes, webhook_id: str | None = None) -> dict[str, str]:
    """Headers of a capture request signed with a form's `whsec_...` secret."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


# --- output ---------------------------------------------------------------------------


def pct(samples: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(rows: Sequence[Sequence[str]], out: Any = None) -> str:
    """Rows as aligned text columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    if out is not None:
        print(text, file=out)
    return text


# --- set-based fills ------------------------------------------------------------------

# $1 company, $2 owners (uuid[]), $3 organizations (uuid[]), $4 the deal converted leads
# went into, $5..$6 the range of g. Patterns by g (none overlap):
#   g % 20 = 0   linked to an existing organization, no prospect details (what the
#                benchmarks convert: no contact to create, no duplicate to resolve)
#   g % 10 = 0   one note and one activity (10 % of the leads)
#   g % 20 = 3   archived (5 %)
#   g % 50 = 1   converted (2 %)
# The newest lead is g = 1 (created_at goes back 30 s per g).
FILL_LEADS = """
WITH src AS MATERIALIZED (
    SELECT g, gen_random_uuid() AS id, ($2::uuid[])[1 + g % array_length($2::uuid[], 1)] AS owner
    FROM generate_series($5::int, $6::int) AS g
), leads AS (
    INSERT INTO lead (
        id, company_id, title, owner_id, organization_id, prospect_person_name, prospect_email,
        prospect_organization_name, value_amount, value_currency, source, is_archived,
        archived_at, was_seen, visible_to, converted_deal_id, converted_at, created_at,
        updated_at, custom_fields
    )
    SELECT
        id, $1, 'Lead ' || g, owner,
        CASE WHEN g % 20 = 0 THEN ($3::uuid[])[1 + g / 20 % array_length($3::uuid[], 1)] END,
        CASE WHEN g % 20 <> 0 THEN 'Prospect ' || g END,
        CASE WHEN g % 20 <> 0 THEN 'prospect' || g || '@example.com' END,
        CASE WHEN g % 20 <> 0 AND g % 3 = 0 THEN 'Organization ' || (g % 5000) END,
        CASE WHEN g % 4 = 0 THEN (g % 9000) + 0.50 END,
        CASE WHEN g % 4 = 0 THEN 'EUR' END,
        (ARRAY['api', 'manual', 'web_form', 'webhook', 'import'])[1 + g % 5],
        g % 20 = 3,
        CASE WHEN g % 20 = 3 THEN now() - make_interval(secs => g * 30) + interval '1 day' END,
        g % 3 = 0,
        CASE WHEN g % 10 = 7 THEN 'owner' ELSE 'company' END,
        CASE WHEN g % 50 = 1 THEN $4::uuid END,
        CASE WHEN g % 50 = 1 THEN now() END,
        now() - make_interval(secs => g * 30),
        now() - make_interval(secs => g * 30),
        -- A `text` custom field (defined by the bench) shared by 5 leads at any size: an
        -- external id, what a custom-field filter looks up.
        jsonb_build_object('crm_id', 'C-' || (g / 5))
    FROM src
), notes AS (
    INSERT INTO note (id, company_id, lead_id, content, user_id, created_at, updated_at)
    SELECT gen_random_uuid(), $1, id, 'Called, wants a quote (lead ' || g || ')', owner,
           now() - make_interval(secs => g * 30), now() - make_interval(secs => g * 30)
    FROM src WHERE g % 10 = 0
), activities AS (
    INSERT INTO activity (id, company_id, lead_id, type, subject, due_date, owner_id)
    SELECT gen_random_uuid(), $1, id, 'call', 'Follow up on lead ' || g, current_date + g % 30,
           owner
    FROM src WHERE g % 10 = 0
)
SELECT count(*) FROM src
"""

# $1 company, $2 owners (uuid[]), $3 stages (uuid[]), $4 their pipelines (uuid[], same
# order), $5 count. 80 % open, 10 % won, 10 % lost.
FILL_DEALS = """
INSERT INTO deal (
    id, company_id, title, owner_id, pipeline_id, stage_id, status, probability,
    value_amount, value_currency, visible_to, won_at, lost_at, closed_at, stage_changed_at,
    created_at, updated_at
)
SELECT
    gen_random_uuid(), $1, 'Deal ' || g, ($2::uuid[])[1 + g % array_length($2::uuid[], 1)],
    ($4::uuid[])[1 + g % array_length($3::uuid[], 1)],
    ($3::uuid[])[1 + g % array_length($3::uuid[], 1)],
    CASE g % 10 WHEN 1 THEN 'won' WHEN 2 THEN 'lost' ELSE 'open' END,
    50,
    CASE WHEN g % 7 = 0 THEN NULL ELSE (g % 5000) + 0.99 END,
    CASE WHEN g % 7 = 0 THEN NULL WHEN g % 3 = 0 THEN 'USD' ELSE 'EUR' END,
    'company',
    CASE WHEN g % 10 = 1 THEN now() END,
    CASE WHEN g % 10 = 2 THEN now() END,
    CASE WHEN g % 10 IN (1, 2) THEN now() END,
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30),
    now() - make_interval(secs => g * 30)
FROM generate_series(1, $5::int) AS g
"""

# $1 company. Stage history of the filled deals, as the app records it: a move into
# their stage from their pipeline's first stage an hour after creation (when they are
# not in the first stage; it entered the first stage at creation), and the status
# change of the won and lost ones.
FILL_HISTORY = """
INSERT INTO deal_history (id, company_id, deal_id, pipeline_id, from_stage_id, stage_id,
                          from_status, to_status, at, from_stage_entered_at)
SELECT gen_random_uuid(), d.company_id, d.id, d.pipeline_id, first.id, d.stage_id, NULL, NULL,
       d.created_at + interval '1 hour', d.created_at
FROM deal d
CROSS JOIN LATERAL (
    SELECT id FROM stage WHERE pipeline_id = d.pipeline_id ORDER BY position, id LIMIT 1
) AS first
WHERE d.company_id = $1 AND d.stage_id <> first.id
UNION ALL
SELECT gen_random_uuid(), d.company_id, d.id, d.pipeline_id, NULL, d.stage_id, 'open',
       d.status, coalesce(d.won_at, d.lost_at), NULL
FROM deal d
WHERE d.company_id = $1 AND d.status <> 'open'
"""

# $1 company, $2 owner, $3 count. Names and emails no lead's prospect has.
FILL_ORGANIZATIONS = """
INSERT INTO organization (id, company_id, name, name_normalized, owner_id, visible_to)
SELECT gen_random_uuid(), $1, 'Organization ' || g, 'organization ' || g, $2, 'company'
FROM generate_series(1, $3::int) AS g
RETURNING id
"""
FILL_PERSONS = """
INSERT INTO person (id, company_id, name, emails, phones, phones_e164, owner_id, visible_to)
SELECT gen_random_uuid(), $1, 'Contact ' || g, ARRAY['contact-' || g || '@example.org'],
       '{}', '{}', $2, 'company'
FROM generate_series(1, $3::int) AS g
"""
