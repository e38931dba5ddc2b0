"""Fake fetch integration: creates up to max_fetch incidents per run from a pool of `total` events.

Params: max_fetch (default 2), total (events available, default 1000), advance (false: never sets the last run,
so every run re-creates the same incidents), figures (false: no figures log line), credentials.password (API key).
"""

import demistomock as demisto


def fetch() -> None:
    params = demisto.params()
    api_key = params["credentials"]["password"]
    max_fetch = int(params.get("max_fetch", 2))
    total = int(params.get("total", 1000))
    last_run = demisto.getLastRun()
    counter = last_run.get("counter", 0)
    demisto.debug(f"request headers: {{'Authorization': 'Bearer {api_key}'}}")
    demisto.info(f"fetching from counter {counter}")
    created = [
        {"name": f"event {number}", "dbotMirrorId": str(number), "rawJSON": f'{{"id": {number}}}'}
        for number in range(counter, min(counter + max_fetch, total))
    ]
    context = demisto.getIntegrationContext()
    demisto.setIntegrationContext({"runs": context.get("runs", 0) + 1})
    if params.get("figures", True):
        demisto.debug(
            f"fetch figures: events_read={len(created)} incidents={len(created)} duplicates=0 pages=1 retries=0 "
            f"watermark=2026-11-26T06:00:00.123Z lag_seconds=0.5"
        )
    demisto.incidents(created)
    if params.get("advance", True):
        demisto.setLastRun({"counter": counter + len(created)})


def main() -> None:
    command = demisto.command()
    if command == "fetch-incidents":
        fetch()
    elif command == "test-module":
        demisto.results("ok")
    elif command == "reset-counter":
        demisto.setLastRun({"counter": 0})
        demisto.results("counter reset")


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
