"""Fake fetch integration that stores a datetime in the last run (not JSON-serializable)."""

from datetime import UTC, datetime

import demistomock as demisto


def main() -> None:
    demisto.incidents([{"name": "event"}])
    demisto.setLastRun({"last_fetch": datetime(2026, 11, 26, tzinfo=UTC)})


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
