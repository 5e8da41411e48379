"""How ``dds`` prints: data on stdout, everything else on stderr, one format per kind.

* Data (tables, JSON, a project ID, a key) goes to stdout, so that it pipes cleanly.
  With ``--json`` stdout holds exactly one JSON document: the command's result, or
  ``{"error": {"code", "message"}}`` when it failed.
* Progress, messages and the failure summary go to stderr.
* Tables are drawn with rich on a terminal; piped (stdout not a terminal) they are plain
  columns (a header line, values padded with spaces, nothing wrapped or folded), for
  ``grep``, ``cut`` and ``awk``.
* Times are shown in this machine's time zone, the same way everywhere (:func:`when`),
  and codes the server sends (statuses, roles) by their labels (:func:`label`).
* The debug log (``--log-file FILE``, ``-v``): the stdlib ``logging`` module, a logger per
  module under ``cli``; every line passes :class:`Redact`, so that no password, token,
  code, key or presigned URL signature reaches a log, even inside a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.errors import CliError
from cli.version import __version__


class _Messages(Console):
    """Wraps long lines on a terminal only: piped or logged, a message stays one line."""

    @property
    def soft_wrap(self) -> bool:
        return not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, _value: bool) -> None:
        pass  # decided by where the output goes, when it is printed


out = Console(highlight=False, soft_wrap=True)
err = _Messages(stderr=True, highlight=False)

#: (key in the row, column label)
Columns = Sequence[tuple[str, str]]
#: Columns between plain values: two spaces, so that one space inside a value stays readable.
GAP = "  "


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def error_json(code: str, message: str) -> None:
    print_json({"error": {"code": code, "message": message}})


def emit(as_json: bool, data: Any, render: Callable[[Any], None]) -> None:
    """``data`` as JSON with ``--json``, else as ``render`` shows it."""
    if as_json:
        print_json(data)
    else:
        render(data)


def done(as_json: bool, data: Any, message: str) -> None:
    """What a command that changed something did: its result as JSON with ``--json``,
    else ``message`` on stderr (rich markup allowed)."""
    if as_json:
        print_json(data)
    else:
        err.print(message)


def show_error(exc: CliError, as_json: bool) -> None:
    if as_json:
        error_json(exc.json_code, exc.message)
    else:
        label = "Not logged in" if exc.kind == "not_logged_in" else "Error"
        err.print(f"[bold red]{label}:[/] {escape(exc.message)}", emoji=False)


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Columns,
          title: str | None = None) -> None:
    values = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    labels = [label for _, label in columns]
    if not out.is_terminal:
        if title:
            out.print(title, markup=False)
        plain([labels, *values])
        return
    t = Table(title=title, show_lines=False)
    for label in labels:
        t.add_column(label, overflow="fold")
    for row_values in values:
        t.add_row(*row_values)
    out.print(t)


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """One record, a name and a value per line."""
    values = [[name, cell(value)] for name, value in pairs]
    if not out.is_terminal:
        plain(values)
        return
    t = Table(show_header=False, box=None)
    for name, value in values:
        t.add_row(name, value)
    out.print(t)


def plain(lines: list[list[str]]) -> None:
    """Rows of values as plain columns (the first row is the header, if any)."""
    if not lines:
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        text = GAP.join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
        out.print(text, markup=False, emoji=False, crop=False, overflow="ignore")


def qr_lines(text: str) -> list[str]:
    """``text`` as a QR code in Unicode half blocks (two modules per character cell, top
    and bottom; ``█`` both dark, ``▀`` top, ``▄`` bottom), quiet zone included. Printed in
    black on white (:func:`show_qr`), it scans whatever the terminal's colours."""
    import qrcode  # noqa: PLC0415 - start-up time (cli/app.py)

    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyph = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    return ["".join(glyph[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
            for upper, lower in zip(matrix[::2], matrix[1::2], strict=True)]


def show_qr(text: str, console: Console) -> None:
    """Draw ``text`` as a QR code on ``console``: black modules on white on a terminal,
    the same characters unstyled elsewhere (a redirected stream has no colours)."""
    style = "black on white" if console.is_terminal else None
    for line in qr_lines(text):
        console.print(line, style=style, markup=False, highlight=False, emoji=False,
                      crop=False, overflow="ignore", soft_wrap=True)


def when(value: Any) -> str:
    """An API timestamp in this machine's time zone, the same way everywhere (the API
    answers some in UTC and some in the server's zone)."""
    if not value:
        return "–"
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    local = parsed.astimezone()
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or local.strftime('%z')}"


def label(code: Any) -> str:
    """A server code (a project status, a role) as the tables show it, the same way
    everywhere: ``in_progress`` → ``In Progress``, ``unit_personnel`` → ``Unit Personnel``
    (``--json`` keeps the code)."""
    if not code:
        return "–"
    return " ".join(word.capitalize() for word in str(code).split("_"))


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


# ------------------------------------------------------------------------- debug log

#: The client's loggers are ``cli.*``; nothing is shown unless --log-file or -v asks
#: (a NullHandler keeps Python's last-resort handler from printing warnings).
LOGGER = "cli"
logging.getLogger(LOGGER).addHandler(logging.NullHandler())
log = logging.getLogger(__name__)
MASK = "***"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
#: Option values that are secrets on a command line (``--code 123456``, ``--password=x``).
_SECRET_OPTION = re.compile(r"^--?[\w-]*(password|passphrase|secret|code|token)$")
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # An Authorization header, a bearer token anywhere.
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 " + MASK),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+"), r"\1" + MASK),
    # JWTs (access, refresh and pending tokens).
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), MASK),
    # The query of any full URL: presigned storage URLs carry their signature there.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]*)\?[^\s'\"]*", re.IGNORECASE),
     r"\1?" + MASK),
    # The local store's signed URLs carry their token in the path: /storage/<route>/<token>
    # (the server's core.log_redaction masks the same segment).
    (re.compile(r"(/storage/[A-Za-z0-9_-]+/)[^/\s?#'\"]+"), r"\1" + MASK),
    # What a storage error answer may echo of a signed request.
    (re.compile(r"<(SignatureProvided|StringToSign|StringToSignBytes|CanonicalRequest|"
                r"CanonicalRequestBytes|AWSAccessKeyId|Credential)>.*?</\1>", re.DOTALL),
     r"<\1>" + MASK + r"</\1>"),
    # Private keys in PEM/Crypt4GH armour.
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE "
                r"KEY-----|$)", re.DOTALL), MASK),
    # "password": "...", secret=..., code: ... (JSON bodies, reprs, query-like text).
    (re.compile(r"(?i)(['\"]?\b(?:password|passphrase|current_password|new_password|secret|"
                r"code|token|access|refresh|pending_token|session_key|private_key)['\"]?"
                r"\s*[:=]\s*)(['\"])(?:(?!\2).)*\2"), r"\1\2" + MASK + r"\2"),
    (re.compile(r"(?i)(\b(?:password|passphrase|secret|code|token|access|refresh)=)"
                r"[^\s&'\",]+"), r"\1" + MASK),
]


def secret(value: str) -> str:
    """Remember a secret this run holds (a password, a code, a TOTP secret...): it is
    replaced by *** wherever it would appear in the log. Returns ``value``."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)
    return value


def redact(text: str) -> str:
    """``text`` without the secrets this run knows of, nor anything that looks like one."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def masked_argv(argv: Sequence[str]) -> list[str]:
    """The command line with the values of secret options masked."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append(MASK)
            hide_next = False
        elif arg.startswith("-") and "=" in arg and _SECRET_OPTION.match(arg.split("=")[0]):
            shown.append(arg.split("=")[0] + "=" + MASK)
        else:
            shown.append(arg)
            hide_next = bool(_SECRET_OPTION.match(arg))
    return shown


class Redact(logging.Filter):
    """Every record, its arguments and its traceback, through :func:`redact`, before any
    handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _DdsHandler:
    """Marks the handlers :func:`logging_start` added (removed by the next start)."""


class _FileHandler(logging.FileHandler, _DdsHandler):
    def _open(self):  # type: ignore[no-untyped-def]  # typeshed: private, untyped
        # A log holds file names and project IDs: only its owner reads it.
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8")


class _StderrHandler(logging.StreamHandler, _DdsHandler):  # type: ignore[type-arg]
    pass


def logging_stop() -> None:
    """Remove (and close) the handlers of an earlier :func:`logging_start`."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler, _DdsHandler):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def logging_start(*, log_file: str | None, verbose: bool, argv: Sequence[str]) -> None:
    """Send the debug log to ``log_file`` (appended) and/or stderr (``verbose``), starting
    with what support needs first: the version and the (masked) command line."""
    logging_stop()
    if not log_file and not verbose:
        return
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # only our handlers, which redact, see the debug lines
    redactor = Redact()
    handlers: list[logging.Handler] = []
    if log_file:
        try:
            handlers.append(_FileHandler(os.path.expanduser(log_file), encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot write the log file {log_file}: "
                           f"{exc.strerror or exc}") from None
        handlers[-1].setFormatter(logging.Formatter(
            "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s "
            "[%(threadName)s]: %(message)s", "%Y-%m-%d %H:%M:%S"))
    if verbose:
        handlers.append(_StderrHandler(sys.stderr))
        handlers[-1].setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    for handler in handlers:
        handler.addFilter(redactor)
        logger.addHandler(handler)
    log.debug("dds %s, Python %s, %s", __version__, platform.python_version(),
              platform.platform(terse=True))
    log.debug("command line: %s", " ".join(["dds", *masked_argv(argv)]))
