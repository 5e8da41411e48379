"""Part URLs of an unchecksummed upload: the first ones come with the start, the next
hundred are asked for in the background before they are needed, and a part whose URL
is missing (the background request failed) asks for it itself."""

from __future__ import annotations

import threading
import time

from cli import put as cli_put
from cli.client import Api
from cli.errors import CliError
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


def _slow_answers(api: FakeApi, delay: float) -> None:
    def before(seen: Seen) -> None:
        time.sleep(delay)
        wanted = (seen.body or {}).get("part_numbers") or []
        api.on("POST", PATH, {"parts": [{"part_number": n, "url": f"https://s3/{n}/"
                                                                  f"{len(api.seen)}"}
                                        for n in wanted]})
    api.before_answer = before


def _all_at_once(fn, args: list) -> list:
    out: list = [None] * len(args)

    def run(i: int) -> None:
        out[i] = fn(*args[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return out


def test_parts_without_urls_at_hand_make_one_request_not_one_each(logged_in: FakeApi):
    """A resumed upload, or an older server that brings no first URLs: the 8 parts in
    flight wait for the first one's request instead of each asking for 100 URLs."""
    _slow_answers(logged_in, 0.2)
    urls = cli_put._PartUrls(Api(logged_in.url), PATH, 300)
    got = _all_at_once(urls.get, [(n,) for n in range(1, 9)])
    assert all(u.startswith(f"https://s3/{n}/") for n, u in zip(range(1, 9), got, strict=True))
    assert len(_asked(logged_in)) == 1


def test_expired_urls_are_renewed_once_for_the_parts_in_flight(logged_in: FakeApi):
    _slow_answers(logged_in, 0.2)
    urls = cli_put._PartUrls(Api(logged_in.url), PATH, 300, _first(100))
    got = _all_at_once(lambda n: urls.get(n, refresh=True), [(5,), (6,), (7,)])
    assert len(_asked(logged_in)) == 1  # the first renewed all three
    # every one a renewed URL (the expired ones had no request number in them)
    assert all(u.startswith(f"https://s3/{n}/") for n, u in zip((5, 6, 7), got, strict=True))


def test_a_malformed_answer_fails_that_part_and_leaves_no_part_waiting(logged_in: FakeApi):
    """Checksummed uploads: a group's answer without its URLs is the server's error for
    the part that asked; the other parts of the group ask again and get theirs."""
    path = PATH
    answers = iter([{"parts": [{"part_number": 1, "url": "https://s3/1"}]},  # alone
                    {"nonsense": True},  # the group of 2 and 3
                    ])

    def before(seen: Seen) -> None:
        time.sleep(0.2)
        wanted = [p["part_number"] for p in seen.body["parts"]]
        body = next(answers, None) or {"parts": [{"part_number": n, "url": f"https://s3/{n}"}
                                                 for n in wanted]}
        logged_in.on("POST", path, body)

    logged_in.before_answer = before
    urls = cli_put._CheckedPartUrls(Api(logged_in.url), path)

    def get(n: int, delay: float):
        time.sleep(delay)
        try:
            return urls.get(n, crc32=cli_put.crc32_b64(bytes([n])))
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            return exc

    got = _all_at_once(get, [(1, 0), (2, 0.05), (3, 0.05)])
    assert got[0] == "https://s3/1"
    failed = [g for g in got[1:] if isinstance(g, CliError)]
    served = [g for g in got[1:] if isinstance(g, str)]
    assert len(failed) == 1 and "malformed" in failed[0].message
    assert len(served) == 1 and served[0] in ("https://s3/2", "https://s3/3")
