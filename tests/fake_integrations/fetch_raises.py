"""Fake fetch integration that creates incidents and sets the last run, then fails."""

import demistomock as demisto


def main() -> None:
    demisto.incidents([{"name": "never delivered", "dbotMirrorId": "x1"}])
    demisto.setLastRun({"counter": 999})
    demisto.setIntegrationContext({"runs": 999})
    raise RuntimeError("upstream API returned 500 for /events\nretry later")


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
