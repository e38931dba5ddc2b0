"""Baseline for the benchmark: the naive fetch of the original XSOAR fetching guide, ported to Python 3.

The guide's idea is kept with its flaws: one query for status=New since the last start time, a single page
(the API's default page size, since the guide asks for no limit and follows no cursor), then "now" saved as
the next start time. Events created while a run is under way, arriving late, or beyond the first page are
lost; the inclusive `since` repeats the events on the boundary.

Only what cannot run as written is changed, each marked "port:" below:
- `last_run.has_key('start_time')` is Python 2: `'start_time' in last_run`;
- `incident.append(incident)` appends to the wrong list: `incidents.append(incident)`;
- `datetime.now()` stored in the last run is not JSON: it is stored as an ISO 8601 string (UTC, so that the
  API accepts it back as `since`);
- `day_ago.time()` is a time of day without a date, which the API refuses (400), so nothing would ever be
  fetched: the first start time is the full ISO time a day ago;
- `event['create_time']` is not a field of this API (a KeyError on every event): `event['created_time']`.

Runs in process (`fetch_incidents` with an injectable clock) or through the local runner as an integration:
`python demisto_mock.py --integration bench/naive_fetch.py --params P.json --state S.json fetch-incidents`.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import demistomock as demisto
import requests

EVENTS_PATH = "/api/v1/events"


def query_events(session: requests.Session, base_url: str, query: str, start_time: str) -> list[dict[str, Any]]:
    """The guide's helper: the events matching `query` created since `start_time`, first page only."""
    name, _, value = query.partition("=")
    response = session.get(base_url.rstrip("/") + EVENTS_PATH, params={name: value, "since": start_time})
    response.raise_for_status()
    return response.json()["events"]


def fetch_incidents(session: requests.Session, base_url: str, last_run: dict[str, Any],
                    clock: Callable[[], datetime]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One run of the guide's fetch: the incidents to create and the last run to save."""
    # usually there will be some kind of query based on event creation date,
    # or get all the events with id greater than X id and their status is New
    query = "status=New"

    day_ago = clock() - timedelta(days=1)
    start_time = day_ago.isoformat()  # port: the guide's day_ago.time() has no date
    if last_run and "start_time" in last_run:  # port: has_key
        start_time = last_run.get("start_time")

    # execute the query and get the events
    events = query_events(session, base_url, query, str(start_time))

    # convert the events to demisto incident
    incidents = []
    for event in events:
        incident = {
            "name": event["name"],  # name is required field, must be set
            "occurred": event["created_time"],  # port: this API's field is created_time, not create_time
            "rawJSON": json.dumps(event),
        }
        incidents.append(incident)  # port: the guide appends to `incident`

    # save your data from this run, to continue the next run
    next_run = {"start_time": clock().isoformat()}  # port: a datetime is stored as an ISO string
    return incidents, next_run


def main() -> None:
    params = demisto.params()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {params['credentials']['password']}"
    incidents, next_run = fetch_incidents(session, params["url"], demisto.getLastRun(), lambda: datetime.now(UTC))
    demisto.setLastRun(next_run)
    # this command will create incidents in Demisto
    demisto.incidents(incidents)


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
