"""Part URLs of an unchecksummed upload: the first ones come with the start, the next
hundred are asked for in the background before they are needed, and a part whose URL
is missing (the background request failed) asks for it itself."""

from __future__ import annotations

import threading
import time

from cli import put as cli_put
from cli.client import Api
from cli.tests.fake_api import FakeApi, Seen

PATH = "projects/p1/uploads/u1/part-urls"


def _answer_part_urls(api: FakeApi, fail_from: int | None = None,
                      hold: threading.Event | None = None):
    def before(seen: Seen) -> None:
        wanted = (seen.body or {}).get("part_numbers") or []
        if hold is not None and wanted and wanted[0] > 1:
            hold.wait(10)
        if fail_from is not None and wanted and wanted[0] >= fail_from:
            api.on("POST", PATH, {"detail": "try later"}, status=503)
            return
        api.on("POST", PATH, {"parts": [{"part_number": n, "url": f"https://s3/{n}"}
                                        for n in wanted]})
    api.before_answer = before


def _first(n: int) -> list[dict]:
    return [{"part_number": i, "url": f"https://s3/{i}"} for i in range(1, n + 1)]


def _asked(api: FakeApi) -> list[tuple[int, int]]:
    return [(s.body["part_numbers"][0], s.body["part_numbers"][-1])
            for s in api.seen if s.path == PATH]


def _settle(urls: cli_put._PartUrls) -> None:
    deadline = time.monotonic() + 10
    while urls.ahead is not None and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_next_hundred_are_asked_for_ahead(logged_in: FakeApi) -> None:
    _answer_part_urls(logged_in)
    urls = cli_put._PartUrls(Api(logged_in.url), PATH, 250, _first(100))
    for n in range(1, 50):
        assert urls.get(n) == f"https://s3/{n}"
    assert _asked(logged_in) == []  # the start brought them: no request yet
    urls.get(51)  # the second half of those at hand: the next hundred, in the background
    _settle(urls)
    assert _asked(logged_in) == [(101, 200)]
    assert all(n in urls.urls for n in range(101, 201))
    for n in range(52, 251):
        assert urls.get(n) == f"https://s3/{n}"
    _settle(urls)
    assert _asked(logged_in) == [(101, 200), (201, 250)]  # never beyond the last part


def test_a_part_waits_for_the_request_ahead_rather_than_asking_twice(
        logged_in: FakeApi) -> None:
    hold = threading.Event()
    _answer_part_urls(logged_in, hold=hold)
    urls = cli_put._PartUrls(Api(logged_in.url), PATH, 150, _first(100))
    urls.get(60)  # starts the request for 101-150, held back by the server
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(urls.get(101)))
    waiter.start()
    time.sleep(0.2)
    assert not got  # waiting for the request in flight
    hold.set()
    waiter.join(10)
    assert got == ["https://s3/101"]
    assert _asked(logged_in) == [(101, 150)]


def test_a_failed_request_ahead_is_made_again_by_the_part_that_needs_it(
        logged_in: FakeApi) -> None:
    _answer_part_urls(logged_in, fail_from=101)
    urls = cli_put._PartUrls(Api(logged_in.url), PATH, 150, _first(100))
    urls.get(70)
    _settle(urls)
    assert 101 not in urls.urls  # the background request failed, quietly
    _answer_part_urls(logged_in)  # the server is back
    assert urls.get(101) == "https://s3/101"
    assert _asked(logged_in)[-1] == (101, 150)
