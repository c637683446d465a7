"""Time, in one place (UTC, ISO 8601 with milliseconds)."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day_of(iso_timestamp: str) -> str:
    """The UTC calendar day (YYYY-MM-DD) of an ISO timestamp written by :func:`now_iso`."""
    return iso_timestamp[:10]
