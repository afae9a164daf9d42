"""Process configuration, read from the environment (prefix ``YUNGUAN_``)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUNGUAN_", extra="ignore")

    data_dir: Path = Field(default=Path.home() / ".local/share/yunguan")
    database_url: str | None = None
    """SQLAlchemy URL; defaults to a SQLite file in ``data_dir``."""
    system_database_url: str | None = None
    """DBOS system database; defaults to the application database."""

    secret_key: str | None = None
    """Fernet key that encrypts provider credentials at rest; without it, a key is made once
    in ``data_dir/secret.key`` (every process of one platform must share it)."""
    provision_timeout_seconds: int = Field(default=900, ge=10, le=86400)
    """How long provisioning waits for a new machine to run before it gives up."""
    provider_sync_minutes: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30] = 5
    """How often every provider's inventory is collected and reconciled."""
    token_ttl_seconds: int = 3600
    public_url: str | None = None
    """The address users reach the portal at, when a proxy in front rewrites ``Host``."""
    max_body_bytes: int = 1024 * 1024
    lockout_threshold: int = 5
    lockout_seconds: int = 900
    password_min_length: int = 10

    run_workers: bool = True
    """Whether this process dequeues workflows; API-only processes set it false."""
    run_schedules: bool = True
    """Whether a worker process runs the periodic jobs (tests run them by hand instead)."""
    workflow_concurrency: int = Field(default=8, ge=1, le=256)
    """Workflows one worker process runs at once."""
    executor_id: str = "local"
    """DBOS executor id; a restarted process with the same id resumes its workflows."""
    fault_points: str = ""
    """Fault injection for tests: ``point=crash,other=sleep:2``."""
    log_level: str = "INFO"
    quota_reclaim_grace_seconds: int = Field(default=300, ge=0, le=86400)
    """How long a workload told to give borrowed capacity back keeps running."""
    quota_hold_seconds: int = Field(default=900, ge=60, le=86400)
    """How long a request waiting for reclaimed capacity stays pending."""
    billing_retention_days: int = Field(default=7, ge=0, le=365)
    """How long a prepaid account below zero keeps its (stopped) resources before they go."""
    service_retention_days: int = Field(default=7, ge=0, le=365)
    """How long an expired service stays stopped (renewable) before its resources go."""
    sdn_learn_ttl_seconds: int = Field(default=300, ge=10, le=86400)
    """How long a direct entry granted on a learn report lives (``ondemand`` VPCs)."""
    sdn_learn_cap: int = Field(default=512, ge=1, le=100_000)
    """The most learned entries one host holds; the least recently granted go first."""
    storage_refresh_minutes: int = Field(default=5, ge=5, le=1440)
    """How often storage pools are re-measured: minutes dividing an hour, or hours dividing a
    day (the schedule is a cron expression, so the runs stay evenly spaced)."""

    smtp_host: str | None = None
    """SMTP server that sends notification email; unset, no email is queued (the inbox and
    webhooks work without it)."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "yunguan@localhost"
    """The From address of notification email."""
    smtp_username: str | None = None
    """Log in to the SMTP server as this user (with ``smtp_password``); unset, no login."""
    smtp_password: str | None = None
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS before logging in and sending."""
    webhook_private_targets: bool = False
    """Whether tenants' webhooks may reach private, loopback and link-local addresses. Off,
    a webhook whose host is (or resolves to) one is refused, so a tenant cannot make the
    platform call into its own network; turn it on where the receivers live inside."""

    @field_validator("storage_refresh_minutes")
    @classmethod
    def _fits_a_clock(cls, minutes: int) -> int:
        hours, rest = divmod(minutes, 60)
        if (minutes < 60 and 60 % minutes) or (minutes >= 60 and (rest or 24 % hours)):
            raise ValueError(
                "use minutes that divide an hour (5, 10, 15, 20, 30) or hours that divide a day"
            )
        return minutes

    @property
    def storage_refresh_cron(self) -> str:
        minutes = self.storage_refresh_minutes
        return f"*/{minutes} * * * *" if minutes < 60 else f"0 */{minutes // 60} * * *"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'yunguan.db'}"

    @property
    def resolved_system_database_url(self) -> str:
        if self.system_database_url:
            return self.system_database_url
        url = self.resolved_database_url
        if url.startswith("sqlite"):
            # DBOS keeps its checkpoints in a file of its own beside ours.
            return url.removesuffix(".db") + "-workflows.db"
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
