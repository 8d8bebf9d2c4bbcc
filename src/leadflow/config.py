"""Settings, read once from the environment and validated at start."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ASYNC_SCHEME = "postgresql+asyncpg"
_ORIGIN = re.compile(r"^https?://[^/\s*]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's bucket naming rules


def to_async_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` as operators write them; we speak asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return f"{ASYNC_SCHEME}://{url[len(prefix) :]}"
    raise ValueError(
        "DATABASE_URL must start with postgresql:// or postgresql+asyncpg:// "
        f"(got {url.split('://', 1)[0]!r}://...)"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "LEADFLOW_DATABASE_URL")
    )
    admin_token: SecretStr | None = None
    data_dir: Path = Path(".data")
    # One process keeps this many connections open. Connections beyond the pool
    # ("overflow") are closed again as soon as they are returned, so under sustained load
    # they are opened and closed per request; the default has none.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    # The database is reached through PgBouncer in transaction (or statement) pooling:
    # no prepared statement outlives its round trip, no startup parameters (see db.py).
    db_pgbouncer: bool = False
    # Seconds a known API token's caller is remembered per process (0: look up every time).
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    # Seconds a request waits for a database connection (a free one of the pool, then
    # again to open one) before it is answered 503.
    db_pool_timeout: float = Field(default=5.0, gt=0, le=300)
    # PostgreSQL cancels a statement running longer (answered 503); 0 turns it off.
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    # PostgreSQL ends a session idle inside a transaction this long; 0 turns it off.
    idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0)
    # On SIGTERM, seconds in-flight requests may take to finish before the process exits.
    shutdown_timeout: int = Field(default=25, ge=1, le=3600)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Deal files: stored under random keys in this directory (local storage), unless
    # files_url names an S3-compatible bucket: `s3://bucket` or `s3://bucket/prefix`.
    files_dir: Path = Path(".data/files")
    files_url: str | None = None
    # The S3 endpoint (MinIO, Ceph, R2...; unset: AWS by region), region and credentials;
    # any left unset are read as AWS SDKs read them (AWS_* variables, instance metadata).
    files_s3_endpoint: str | None = None
    files_s3_region: str | None = None
    files_s3_access_key_id: SecretStr | None = None
    files_s3_secret_access_key: SecretStr | None = None
    # S3 only: a download answers 307 to a presigned URL valid this many seconds, so the
    # bytes go from the bucket to the client; 0 streams them through the API.
    files_redirect_seconds: int = Field(default=0, ge=0, le=604_800)
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    # Imports (CSV/XLSX): the file's size (413 over it) and its data rows (422 over them).
    import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    import_max_rows: int = Field(default=50_000, ge=1)
    # Rows per chunk of an import's run: one transaction each, the unit a crash resumes
    # from (smaller: less redone after a crash and finer progress; larger: fewer round
    # trips per row).
    import_chunk_rows: int = Field(default=500, ge=1, le=5_000)
    default_phone_region: str | None = Field(default=None, min_length=2, max_length=2)
    log_level: str = "INFO"
    log_json: bool = True
    # Set in the container image: there, a missing DATABASE_URL is a mistake, not a
    # request for the embedded PostgreSQL.
    require_database_url: bool = False
    # Seals form signing secrets and stored idempotent answers (AES-GCM, leadflow.sealing)
    # and signs hosted-form tokens. Every API process must share it; without it a local
    # key is kept in <data_dir>/secret_key.
    secret_key: SecretStr | None = Field(default=None, min_length=32)
    # Where capture rate-limit counters live: memory:// counts per process;
    # redis://host:6379 shares them across API processes (for several replicas).
    rate_limit_storage: str = "memory://"
    capture_rate_per_form: str = "600/minute"
    capture_rate_per_client: str = "120/minute"
    form_page_min_fill_seconds: float = Field(default=2.0, ge=0, le=600)
    # Failed authentications (401) per client address and per presented token, counted
    # in the same storage; past it, 429 until the window frees up.
    auth_failure_rate: str = "20/minute"
    # Browser origins allowed to call the API (CORS); none by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Strict-Transport-Security max-age in seconds; 0 sends none (set it behind TLS).
    hsts_max_age: int = Field(default=0, ge=0, le=63_072_000)

    # Outgoing webhooks. Plain http:// subscription URLs; None: allowed in local mode only (where
    # LEADFLOW_REQUIRE_DATABASE_URL is not set, i.e. not in the container image).
    webhook_allow_http: bool | None = None
    # Send to loopback, private, link-local and metadata addresses (development, tests);
    # refused by default, whatever the URL's name resolves to.
    webhook_allow_local_targets: bool = False
    # The in-process worker of `leadflow serve --worker` (what `make run` starts).
    run_worker: bool = False
    # Seconds the worker waits after a round that found nothing due.
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # `leadflow worker` serves its own Prometheus metrics (delivery outcomes, durations)
    # on this port; 0: none (`leadflow serve --worker` counts them on the API's /metrics).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    @property
    def webhooks_allow_http(self) -> bool:
        if self.webhook_allow_http is not None:
            return self.webhook_allow_http
        return not self.require_database_url

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """A JSON list or comma-separated origins, each `scheme://host[:port]`."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list):
            return value
        origins = [str(origin).strip().rstrip("/") for origin in value if str(origin).strip()]
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return origins

    @field_validator("capture_rate_per_form", "capture_rate_per_client", "auth_failure_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse  # imported here: only the rate settings need it

        parse(value)  # "600/minute", "10/second", "5 per 10 seconds"; raises ValueError
        return value

    @field_validator("files_url")
    @classmethod
    def _files_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not value.startswith("s3://") or not _BUCKET.match(bucket):
            raise ValueError(
                f"{value!r} is not an S3 location like s3://bucket or s3://bucket/prefix"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _async_url(cls, value: str | None) -> str | None:
        return to_async_url(value) if value else None

    @model_validator(mode="after")
    def _deployed_needs_secret_key(self) -> Settings:
        # Where DATABASE_URL is required (the image), a key generated per process could not
        # open the secrets another replica sealed, nor survive a restart: refuse to start
        # rather than fail at the first capture.
        if self.require_database_url and self.secret_key is None:
            raise ValueError(
                "LEADFLOW_SECRET_KEY is required where LEADFLOW_REQUIRE_DATABASE_URL is set "
                "(32+ characters, the same on every replica)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
