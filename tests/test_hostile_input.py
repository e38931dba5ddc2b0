"""Hostile input: every bad parameter, argument and response gets one clear sentence, nothing stored is damaged,
the API key never leaks, and TLS and proxy settings do what they say."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import EventFetcher as ef
import pytest
import requests_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import demisto_mock
from simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
KEY = "KEY-LEAK-CANARY-93f1c0d7"  # distinctive, so that any copy of it anywhere is found
BASE_URL = "https://events.example.com"
EVENTS_URL = BASE_URL + "/api/v1/events"
FIRST_FETCH = "2026-11-26T05:00:00.000Z"
STORED_LAST_RUN = {"version": 1, "watermark": "2026-11-26T05:30:00.000Z", "floor": ["2026-11-26T05:25:00.000Z", ""],
                   "seen_ids": {"2026-11-26T05:30:00.000Z": ["evt-old"]}}
FINAL_PAGE = {"json": {"events": [], "next_cursor": None}}
COMMANDS = ("test-module", "fetch-incidents", "event-fetcher-get-events")


@pytest.fixture(autouse=True)
def no_backoff_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries still happen and are counted; only the waits between them are skipped."""
    waits: list[float] = []
    monkeypatch.setattr(ef.time, "sleep", waits.append)
    return waits


def instance_params(address: str = BASE_URL, **overrides: Any) -> dict[str, Any]:
    params = {"url": address, "credentials": {"identifier": "", "password": KEY}, "isFetch": True,
              "first_fetch": FIRST_FETCH, "max_fetch": "50", "look_back": "5", "request_timeout": "2"}
    params.update(overrides)
    return params


@dataclass
class Outcome:
    """What one command left behind: the runtime's record and the exception the server would have seen."""

    runtime: demisto_mock.Runtime
    exception: str | None

    @property
    def message(self) -> str | None:
        """The error the user sees: the raised message for fetch-incidents, the error entry for other commands."""
        if self.exception is not None:
            return self.exception
        errors = self.runtime.errors()
        return errors[0]["Contents"] if errors else None

    def everything(self) -> str:
        record = self.runtime
        return json.dumps([record.logs, record.entries, record.incidents_created, record.set_last_run_calls,
                           record.warnings, self.exception], default=str)


def run_command(command: str, params: dict[str, Any], args: dict[str, Any] | None = None,
                last_run: dict[str, Any] | None = None) -> Outcome:
    runtime = demisto_mock.reset(command=command, params=params, args=args or {},
                                 last_run=json.loads(json.dumps(last_run or STORED_LAST_RUN)))
    try:
        ef.main()
    except Exception as error:  # what the server catches and shows for fetch-incidents
        return Outcome(runtime, str(error))
    return Outcome(runtime, None)


def assert_clear_failure(outcome: Outcome, fragment: str) -> None:
    """One sentence on one line naming the problem; no traceback; nothing stored changed; no key anywhere."""
    message = outcome.message
    assert message is not None, "the command should have failed"
    assert fragment in message
    assert "\n" not in message and "Traceback" not in message and "Unexpected error" not in message
    assert message.rstrip().endswith((".", ")"))
    assert outcome.runtime.set_last_run_calls == [] and outcome.runtime.incidents_created == []
    assert KEY not in outcome.everything()


@dataclass
class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 whose every answer comes from `respond`; it records what it was asked."""

    respond: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def start(self) -> LoopbackServer:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server_self.requests.append((self.requestline, dict(self.headers)))
                status, headers, body = server_self.respond(self)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    started: list[LoopbackServer] = []

    def factory(respond: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]) -> LoopbackServer:
        server = LoopbackServer(respond).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def source(make_simulator: Callable[..., Simulator]) -> Simulator:
    """A simulator holding one event, whose key is the canary."""
    sim = make_simulator(api_key=KEY, seed=5)
    sim.add_event("2026-11-26T05:45:00.000Z", id="evt-1")
    return sim


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def html(status: int) -> Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]:
    return lambda _: (status, {"Content-Type": "text/html"}, b"<html><body>Welcome to our site</body></html>")


# --- bad parameters ------------------------------------------------------------------------------------------

BAD_PARAMETERS: list[tuple[str, dict[str, Any], str]] = [
    ("url missing", {"url": ""}, "Server URL is missing"),
    ("url without scheme", {"url": "127.0.0.1:8080"}, "Server URL must start with https:// or http://"),
    ("url of another scheme", {"url": "ftp://127.0.0.1"}, "Server URL must start with https:// or http://"),
    ("key missing", {"credentials": {"identifier": "", "password": ""}}, "API Key is missing"),
    ("credentials absent", {"credentials": None}, "API Key is missing"),
    ("first_fetch unparseable", {"first_fetch": "the day before"}, "First fetch time must be like"),
    ("first_fetch unit unknown", {"first_fetch": "3 months"}, "First fetch time must be like"),
    ("first_fetch in the future", {"first_fetch": "2999-01-01T00:00:00Z"}, "is in the future"),
    ("first_fetch before 1970", {"first_fetch": "1969-12-31"}, "is before 1970"),
    ("max_fetch blank", {"max_fetch": ""}, "Maximum number of incidents per fetch must be a whole number from 1 to"),
    ("max_fetch zero", {"max_fetch": "0"}, "from 1 to 200, not 0."),
    ("max_fetch negative", {"max_fetch": "-3"}, "from 1 to 200, not -3."),
    ("max_fetch non-numeric", {"max_fetch": "lots"}, 'from 1 to 200, not "lots".'),
    ("max_fetch above 200", {"max_fetch": "201"}, "from 1 to 200, not 201."),
    ("look_back negative", {"look_back": "-1"}, "Look-back (minutes) must be a whole number from 0 to 1440, not -1."),
    ("look_back too large", {"look_back": "2000"}, "Look-back (minutes) must be a whole number from 0 to 1440"),
    ("severity unknown", {"severity": ["high", "severe"]}, 'Severities to fetch has an unknown value "severe"'),
    ("source unknown", {"source": "Splunk"}, "Source must be one of Event Source, Microsoft Graph Security alerts"),
    ("auth type unknown", {"auth_type": "ntlm"}, "Authentication type must be one of bearer, header, basic, oauth2"),
    ("query placeholder unknown", {"query": "since={since}"}, "Query has an unknown placeholder {since}"),
    ("severity map malformed", {"severity_map": "high"}, "Severity map must be value=level pairs"),
    ("headers line malformed", {"headers": "X-Tenant"}, 'Headers must hold one "Name: value" per line'),
    ("request timeout out of range", {"request_timeout": "0"}, "Request timeout (seconds) must be"),
    ("time limit out of range", {"fetch_time_limit": "5"}, "Fetch time limit (seconds) must be"),
]


@pytest.mark.parametrize("command", ["test-module", "fetch-incidents"])
@pytest.mark.parametrize(("overrides", "fragment"), [case[1:] for case in BAD_PARAMETERS],
                         ids=[case[0] for case in BAD_PARAMETERS])
def test_each_bad_parameter_gets_one_clear_sentence(source: Simulator, command: str, overrides: dict[str, Any],
                                                    fragment: str) -> None:
    outcome = run_command(command, instance_params(source.url, **overrides))
    assert_clear_failure(outcome, fragment)
    assert source.request_log() == []  # refused before any request


@pytest.mark.parametrize("command", ["test-module", "fetch-incidents"])
def test_a_wrong_key_is_named(source: Simulator, command: str) -> None:
    params = instance_params(source.url, credentials={"identifier": "", "password": "not-the-key"})
    assert_clear_failure(run_command(command, params), "The Event Source refused the API key (HTTP 401); check "
                                                       "the Credentials parameter.")


@pytest.mark.parametrize("command", ["test-module", "fetch-incidents"])
def test_an_unreachable_url_is_named(command: str, no_backoff_waits: list[float]) -> None:
    url = closed_port_url()
    outcome = run_command(command, instance_params(url))
    assert_clear_failure(outcome, f"Could not connect to the Event Source at {url}, still after 5 attempts.")
    assert no_backoff_waits == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize("command", ["test-module", "fetch-incidents"])
@pytest.mark.parametrize(("status", "fragment"), [(200, "answered with a web page, not the API; check the Server URL"),
                                                  (404, "does not serve the API at /api/v1/"),])
def test_a_url_of_a_web_site_instead_of_the_api_is_named(serve: Callable[..., LoopbackServer], command: str,
                                                         status: int, fragment: str) -> None:
    site = serve(html(status))
    assert_clear_failure(run_command(command, instance_params(site.url)), fragment)
    assert len(site.requests) == 1  # not retried: retrying cannot turn a web site into the API


@pytest.mark.parametrize(("args", "fragment"), [
    ({"since": "whenever"}, "since must be like"),
    ({"since": "2999-01-01"}, None),  # a future start is allowed for a preview: it lists nothing
    ({"limit": "0"}, "limit must be a whole number from 1 to 1000, not 0."),
    ({"limit": "1001"}, "limit must be a whole number from 1 to 1000, not 1001."),
    ({"limit": "ten"}, 'limit must be a whole number from 1 to 1000, not "ten".'),
    ({"severity": "high,urgent"}, 'severity has an unknown value "urgent"'),
])
def test_bad_command_arguments_get_one_clear_sentence(source: Simulator, args: dict[str, str],
                                                      fragment: str | None) -> None:
    outcome = run_command("event-fetcher-get-events", instance_params(source.url), args)
    if fragment is None:
        assert outcome.message is None
        assert outcome.runtime.entries[0]["Contents"] == []
    else:
        assert_clear_failure(outcome, fragment)


@pytest.mark.parametrize("command", ["test-module", "fetch-incidents"])
def test_the_runner_shows_the_sentence_and_no_traceback(source: Simulator, tmp_path: Path, command: str) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps(instance_params(source.url, max_fetch="many")), encoding="utf-8")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"last_run": STORED_LAST_RUN, "integration_context": {}}), encoding="utf-8")
    before = state.read_bytes()
    run = subprocess.run([sys.executable, str(ROOT / "demisto_mock.py"), "--params", str(params), "--state",
                          str(state), command], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith(
        'Maximum number of incidents per fetch must be a whole number from 1 to 200, not "many".')
    assert state.read_bytes() == before


# --- bad responses -------------------------------------------------------------------------------------------

def nested(depth: int) -> str:
    return '{"events": [' + "[" * depth + "]" * depth + '], "next_cursor": null}'


BAD_RESPONSES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("not JSON", [{"text": "events: none", "headers": {"Content-Type": "application/json"}}],
     "The Event Source answered with malformed JSON, still after 5 attempts."),
    ("truncated JSON", [{"text": '{"events": [{"id": "a"', "headers": {"Content-Type": "application/json"}}],
     "malformed JSON"),
    ("NaN in JSON", [{"text": '{"events": [], "next_cursor": NaN}'}], "malformed JSON"),
    ("nesting beyond reason", [{"text": nested(100_000)}], "malformed JSON"),
    ("not UTF-8", [{"content": b'{"events": ["\xff\xfe"], "next_cursor": null}'}], "malformed JSON"),
    ("a list instead of a page", [{"json": []}], "no list of items at events (Items path); the answer is a list."),
    ("events missing", [{"json": {"next_cursor": None}}],
     "no list of items at events (Items path); the keys there are next_cursor."),
    ("events not a list", [{"json": {"events": {"id": "a"}, "next_cursor": None}}], "no list of items at events"),
    ("next_cursor an object", [{"json": {"events": [], "next_cursor": {"at": 7}}}],
     "answered with a dict at next_cursor (Next path), not a cursor."),
    ("a web page with 200", [{"text": "<html></html>", "headers": {"Content-Type": "text/html; charset=utf-8"}}],
     "answered with a web page"),
    ("5xx with an HTML body", [{"status_code": 502, "text": "<html>Bad Gateway</html>",
                                "headers": {"Content-Type": "text/html"}}], "server error (HTTP 502), still after 5"),
    ("an unexpected 4xx", [{"status_code": 422, "json": {"error": "unprocessable"}}],
     "rejected the request (HTTP 422): unprocessable."),
]


@pytest.mark.parametrize(("responses", "fragment"), [case[1:] for case in BAD_RESPONSES],
                         ids=[case[0] for case in BAD_RESPONSES])
def test_each_bad_response_fails_the_run_clearly_and_keeps_the_last_run(
        requests_mock: Any, responses: list[dict[str, Any]], fragment: str) -> None:
    requests_mock.get(EVENTS_URL, responses)
    outcome = run_command("fetch-incidents", instance_params())
    assert_clear_failure(outcome, fragment)
    assert outcome.runtime.last_run == STORED_LAST_RUN


def test_unusable_events_are_skipped_with_a_warning_naming_them(requests_mock: Any) -> None:
    events = [{"created_time": "2026-11-26T05:50:00.000Z", "name": "no id"},
              {"id": "no-time", "name": "no time"},
              {"id": "bad-time", "created_time": "26/11/2026 05:51"},
              {"id": "good", "created_time": "2026-11-26T05:52:00.000Z"},
              {"id": "far-future-time", "created_time": "9999-12-31T23:59:59.999+00:00"}]
    requests_mock.get(EVENTS_URL, [{"json": {"events": events, "next_cursor": None}}])
    outcome = run_command("fetch-incidents", instance_params())
    assert outcome.message is None
    assert [incident["dbotMirrorId"] for incident in outcome.runtime.incidents_created] == ["good", "far-future-time"]
    infos = [message for level, message in outcome.runtime.logs if level == "info"]
    assert "Skipped an item without an id at id." in infos
    assert "Skipped item no-time with a missing or malformed time at created_time." in infos
    assert "Skipped item bad-time with a missing or malformed time at created_time." in infos


def test_a_huge_event_and_deep_unicode_fields_become_incidents_intact(requests_mock: Any) -> None:
    deep: Any = "bottom"
    for _ in range(200):
        deep = {"level": deep}
    huge = {"id": "huge", "created_time": "2026-11-26T05:50:00.000Z", "description": "x" * 1_000_000}
    odd = {"id": "évènement-٣-🛰", "created_time": "2026-11-26T05:51:00.000Z",
           "name": "Connexion suspecte \u202e 東京 🛰", "severity": "HIGH", "deep": deep,
           "tags": ["日本語", "\u0000null"], "source": {"ip": None}}
    requests_mock.get(EVENTS_URL, [{"json": {"events": [huge, odd], "next_cursor": None}}])
    outcome = run_command("fetch-incidents", instance_params())
    assert outcome.message is None
    first, second = outcome.runtime.incidents_created
    assert json.loads(first["rawJSON"]) == huge and len(first["details"]) == 1_000_000
    assert json.loads(second["rawJSON"]) == odd
    assert (second["name"], second["severity"], second["dbotMirrorId"]) == ("Connexion suspecte \u202e 東京 🛰", 3,
                                                                            "évènement-٣-🛰")
    assert outcome.runtime.last_run["seen_ids"]["300000"] == ["évènement-٣-🛰"]  # the look-back after the floor


def test_a_redirect_to_another_host_is_not_followed_with_the_key(serve: Callable[..., LoopbackServer]) -> None:
    elsewhere = serve(lambda _: (200, {"Content-Type": "application/json"}, b'{"status": "ok"}'))
    redirector = serve(lambda handler: (302, {"Location": elsewhere.url + handler.path}, b""))
    for command in COMMANDS:
        assert_clear_failure(run_command(command, instance_params(redirector.url)), "redirects elsewhere")
    assert elsewhere.requests == []


def test_a_401_in_the_middle_of_a_paged_run_delivers_the_pages_before_it(requests_mock: Any) -> None:
    first_page = {"events": [{"id": "a", "created_time": "2026-11-26T05:50:00.000Z"}], "next_cursor": "c1"}
    requests_mock.get(EVENTS_URL, [{"json": first_page},
                                   {"status_code": 401, "json": {"error": "invalid or missing API key"}}])
    outcome = run_command("fetch-incidents", instance_params())
    assert [incident["dbotMirrorId"] for incident in outcome.runtime.incidents_created] == ["a"]
    assert any("Fetch stopped early" in message and "HTTP 401" in message for _, message in outcome.runtime.logs)
    # the next run meets the refused key at once: nothing to deliver, so the instance shows the error
    next_run = run_command("fetch-incidents", instance_params(), last_run=outcome.runtime.last_run)
    assert_clear_failure(next_run, "No incident fetched: The Event Source refused the API key (HTTP 401)")


# --- the key never leaks ---------------------------------------------------------------------------------------


def test_the_key_appears_nowhere_across_every_command_and_path(source: Simulator, serve: Callable[..., LoopbackServer],
                                                               tmp_path: Path) -> None:
    site, unreachable = serve(html(200)), closed_port_url()
    everything: list[str] = []
    paths = [instance_params(source.url), instance_params(site.url), instance_params(unreachable),
             instance_params(source.url, credentials={"password": KEY + "-wrong"}),
             *(instance_params(source.url, **case[1]) for case in BAD_PARAMETERS)]
    for params in paths:
        for command in (*COMMANDS, "event-fetcher-unknown"):
            everything.append(run_command(command, params, {"limit": "5"}).everything())
    # the runner's files and output, through a successful fetch and a failing one
    params_path = tmp_path / "params.json"
    for params in (instance_params(source.url), instance_params(unreachable, request_timeout="1")):
        params_path.write_text(json.dumps(params), encoding="utf-8")
        for command in COMMANDS:
            run = subprocess.run([sys.executable, str(ROOT / "demisto_mock.py"), "--params", str(params_path),
                                  "--state", str(tmp_path / "state.json"), "--inbox", str(tmp_path / "inbox.jsonl"),
                                  "--debug", command], capture_output=True, text=True, timeout=120, check=False)
            everything += [run.stdout, run.stderr]
    everything += [(tmp_path / "state.json").read_text(), (tmp_path / "inbox.jsonl").read_text()]
    everything += [json.dumps([record.path, record.query]) for record in source.request_log()]
    everything += [line for line, _ in site.requests]
    assert source.request_log(), "the successful paths reached the API"
    assert not [text for text in everything if KEY in text]


# --- TLS and proxy -----------------------------------------------------------------------------------------------


@pytest.fixture
def https_source(make_simulator: Callable[..., Simulator], tls_certificate: tuple[Path, Path]) -> Simulator:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_certificate)
    return make_simulator(api_key=KEY, ssl_context=context)


def test_certificates_are_verified_by_default(https_source: Simulator) -> None:
    outcome = run_command("test-module", instance_params(https_source.url))
    assert_clear_failure(outcome, f"The TLS certificate of {https_source.url} could not be verified")
    assert https_source.request_log() == []


def test_trust_any_certificate_turns_verification_off(https_source: Simulator) -> None:
    outcome = run_command("test-module", instance_params(https_source.url, insecure=True))
    assert outcome.message is None


def test_a_certificate_authority_given_in_the_environment_is_trusted(
        https_source: Simulator, tls_certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_certificate[0]))
    assert run_command("test-module", instance_params(https_source.url)).message is None


@pytest.fixture
def proxy(serve: Callable[..., LoopbackServer], monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    """A proxy named by the environment, as a system proxy is; it answers every request itself."""
    server = serve(lambda _: (200, {"Content-Type": "application/json"},
                              b'{"status": "ok", "version": "1", "events": [], "next_cursor": null}'))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, server.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return server


def test_without_use_system_proxy_the_environment_proxy_is_ignored(source: Simulator, proxy: LoopbackServer) -> None:
    outcome = run_command("test-module", instance_params(source.url, isFetch=False))
    assert outcome.message is None
    assert proxy.requests == []
    assert [record.path for record in source.request_log()] == ["/api/v1/health", "/api/v1/events"]


def test_with_use_system_proxy_requests_go_through_the_proxy(source: Simulator, proxy: LoopbackServer) -> None:
    outcome = run_command("test-module", instance_params(source.url, isFetch=False, proxy=True))
    assert outcome.message is None
    assert [line.split("?")[0] for line, _ in proxy.requests] == [f"GET {source.url}/api/v1/health HTTP/1.1",
                                                                   f"GET {source.url}/api/v1/events"]
    assert source.request_log() == []


# --- fuzz: arbitrary JSON at the parser, arbitrary strings at every parameter and argument ---------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
times = st.datetimes(timezones=st.just(ef.UTC)).map(ef.format_time)
event_like = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=12), json_values), "created_time": st.one_of(times, st.text(max_size=30),
                                                                                    json_values)},
    optional={"name": json_values,
              "severity": st.one_of(st.sampled_from(["low", "medium", "high", "critical"]), json_values),
              "description": json_values, "type": json_values, "status": json_values})
pages = st.one_of(json_values, st.fixed_dictionaries({
    "events": st.lists(st.one_of(event_like, json_values), max_size=6),
    "next_cursor": st.one_of(st.none(), st.text(min_size=1, max_size=8), json_values)}))


def assert_success_or_clear_failure(outcome: Outcome, last_run: dict[str, Any]) -> None:
    assert KEY not in outcome.everything()
    if outcome.message is None:
        if outcome.runtime.set_last_run_calls:
            ef.load_state(outcome.runtime.last_run, ef.EARLIEST_FIRST_FETCH)  # the next run can read it
        return
    assert "Unexpected error" not in outcome.message and "\n" not in outcome.message
    assert outcome.runtime.set_last_run_calls == [] and outcome.runtime.last_run == last_run


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(body=pages, command=st.sampled_from(["fetch-incidents", "event-fetcher-get-events"]))
def test_fuzz_any_json_answer_gives_success_or_a_clear_error(body: Any, command: str) -> None:
    with requests_mock.Mocker() as api:
        api.get(EVENTS_URL, [{"json": body}, FINAL_PAGE])
        outcome = run_command(command, instance_params(), {"since": FIRST_FETCH})
    assert_success_or_clear_failure(outcome, STORED_LAST_RUN)
    if outcome.message is None and command == "fetch-incidents":
        assert all(json.loads(incident["rawJSON"])["id"] is not None for incident in outcome.runtime.incidents_created)


PARAMETER_NAMES = ["url", "credentials", "insecure", "proxy", "isFetch", "incidentType", "first_fetch", "max_fetch",
                   "status", "severity", "look_back", "request_timeout", "fetch_time_limit"]
ARGUMENT_NAMES = ["since", "status", "severity", "limit"]
any_text = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "0", "-1", "201", "1e3", "²", "٣", "3 days",
                                                            "http://", "https://x", "New", "high,low", "null"]))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(replaced=st.dictionaries(st.sampled_from(PARAMETER_NAMES), st.one_of(any_text, json_values), min_size=1),
       args=st.dictionaries(st.sampled_from(ARGUMENT_NAMES), any_text),
       command=st.sampled_from([*COMMANDS, "event-fetcher-unknown"]))
def test_fuzz_any_parameter_or_argument_gives_success_or_a_clear_error(replaced: dict[str, Any],
                                                                      args: dict[str, str], command: str) -> None:
    def answer(request: Any, context: Any) -> dict[str, Any]:
        return {"status": "ok"} if request.path.endswith("/health") else {"events": [], "next_cursor": None}

    with requests_mock.Mocker() as api:  # every request stays in this process, whatever URL was given
        api.get(requests_mock.ANY, json=answer)
        outcome = run_command(command, instance_params(**replaced), args)
    assert_success_or_clear_failure(outcome, STORED_LAST_RUN)
