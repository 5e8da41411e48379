"""The frame every ``dds`` command runs in.

* Global options (``--url``, ``--json``, ``--token-path``, ``--log-file``, ``-v``) are
  accepted before or after any subcommand: every group and command of the tree carries
  them (:class:`DdsGroup`, :class:`DdsCommand`) and they all set the one :class:`Ctx`.
* :meth:`DdsGroup.main` is the one place where a failure becomes a message (or, with
  ``--json``, ``{"error": ...}`` on stdout) and the exit status of its kind
  (:class:`cli.errors.Exit`). Commands raise, or return an :class:`Exit`; they never exit.
* :func:`confirm` is the one rule for destructive commands: ask on a terminal, refuse
  without ``--yes`` anywhere else.

Start-up time: ``dds --help`` and every shell-completion TAB start a new process, and
httpx takes about half as long to import as the rest of ``dds``. Measured on this project's
2-core machine (median of 15 starts, 2026-12-01): the command tree alone 90 ms, with the
API client (httpx) 137 ms, with the transfer modules too (cryptography, zstandard) 181 ms;
as it is, ``dds --help`` takes 96 ms and a completion TAB 100 ms. So the API client
(:attr:`Ctx.api`) and the transfer modules are imported when a command first needs them;
these are the only imports inside functions in ``cli``, each marked with a pointer here.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from cli import config
from cli.errors import Cancelled, CliError, Exit, UsageError
from cli.output import err, error_json, label, logging_start, logging_stop, show_error

if TYPE_CHECKING:
    from cli.client import Api

F = TypeVar("F", bound=Callable[..., Any])
#: A command's outcome: None (success) or the exit status it chose (e.g. PARTIAL).
Outcome = Exit | None
log = logging.getLogger(__name__)


class Ctx:
    """What the global options chose, and the API client made from them on first use."""

    def __init__(self) -> None:
        self.url_option: str | None = None
        self.json = False
        self.log_file: str | None = None
        self.verbose = False
        #: The command line (for the log's first lines).
        self.argv: list[str] = []
        self._logging = False

    def start_logging(self) -> None:
        """The debug log that --log-file and -v asked for, once the command line is read
        (so that its first lines are written once, whatever the options' order)."""
        if self._logging or not (self.log_file or self.verbose):
            return
        self._logging = True
        logging_start(log_file=self.log_file, verbose=self.verbose, argv=self.argv)

    @functools.cached_property
    def url(self) -> str:
        from cli.client import server_url  # noqa: PLC0415 - start-up time (cli/app.py)

        return server_url(self.url_option)

    @functools.cached_property
    def api(self) -> Api:
        """The API client with the stored login (refuses when there is none)."""
        from cli import announce  # noqa: PLC0415 - start-up time (cli/app.py)

        api = self.client(authenticated=True)
        announce.show_new(self, api)
        return api

    def client(self, *, authenticated: bool) -> Api:
        from cli.client import Api  # noqa: PLC0415 - start-up time (cli/app.py)

        return Api(self.url, authenticated=authenticated)


pass_ctx = click.make_pass_decorator(Ctx, ensure=True)


# ----------------------------------------------------------------- global options


def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Ctx).url_option = value


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Ctx).json = True


def _set_log_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Ctx).log_file = value


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Ctx).verbose = True


def _set_token_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        config.use_token_path(value)


def _global_options() -> list[click.Parameter]:
    return [
        click.Option(["--url"], metavar="URL", expose_value=False, callback=_set_url,
                     help="DDS server, e.g. https://dds.example.org (or DDS_URL; default: "
                          "the server you logged in to)."),
        click.Option(["--json"], is_flag=True, expose_value=False, callback=_set_json,
                     help="Print JSON: the result, or the error."),
        click.Option(["--token-path"], metavar="FILE", expose_value=False,
                     callback=_set_token_path,
                     help="Where the login token is kept (or DDS_TOKEN_PATH; default: "
                          "token.json in the config directory)."),
        click.Option(["--log-file"], metavar="FILE", expose_value=False,
                     callback=_set_log_file,
                     help="Append a detailed log of this run to FILE (for support; "
                          "secrets are masked)."),
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False,
                     callback=_set_verbose, help="Print the debug log on stderr."),
    ]


class DdsCommand(click.Command):
    """A command that also takes the global options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())

    def invoke(self, ctx: click.Context) -> Any:
        ctx.ensure_object(Ctx).start_logging()
        return super().invoke(ctx)


class DdsGroup(click.Group):
    """A group that takes the global options, makes its commands and subgroups the same
    way, and (as the root) turns every outcome into an exit status."""

    command_class = DdsCommand
    group_class = type  # subgroups are DdsGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> NoReturn:
        # ``standalone_mode`` is click's and always True here: ``dds`` always exits.
        argv = list(sys.argv[1:] if args is None else args)
        state = extra.setdefault("obj", Ctx())
        state.argv = argv
        config.use_token_path(None)  # this run's --token-path (or none), not a previous one's
        try:
            try:
                rv = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                  **extra)
                status = Exit(rv) if isinstance(rv, int) else Exit.OK
            except BaseException as exc:  # noqa: BLE001 - every outcome gets its exit status
                try:
                    state.start_logging()  # a usage error comes before the command ran
                except CliError:
                    pass  # the log file itself cannot be written: _report says so
                _log_failure(exc)
                status = _report(exc, state.json or _json_asked(argv))
            log.debug("exit status %d (%s)", int(status), status.name)
        finally:
            logging_stop()
            config.use_token_path(None)
        sys.exit(int(status))


def _log_failure(exc: BaseException) -> None:
    """The failure in the debug log, with its traceback (support reads it there)."""
    if isinstance(exc, SystemExit) and not exc.code:
        return
    if isinstance(exc, CliError):
        log.debug("failed: %s: %s (status %s, code %s)", type(exc).__name__, exc.message,
                  exc.status, exc.code, exc_info=exc)
    else:
        log.debug("failed: %r", exc, exc_info=exc)


def _json_asked(argv: list[str]) -> bool:
    """``--json`` on the command line, for a failure before the option was parsed."""
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def _report(exc: BaseException, as_json: bool) -> Exit:
    """Say what went wrong, once, and choose the exit status."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, click.Abort):
        # click turns Ctrl-C (and the end of input at a prompt) into Abort; a "no" at a
        # confirmation is an Abort of its own.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return _interrupted(as_json, None)
        return _fail(as_json, "aborted", "Aborted.", Exit.ERROR)
    if isinstance(exc, click.ClickException):
        status = Exit.USAGE if isinstance(exc, click.UsageError) else Exit.ERROR
        if as_json:
            error_json("usage" if status is Exit.USAGE else "error", exc.format_message())
        else:
            exc.show()
        return status
    if isinstance(exc, CliError):
        show_error(exc, as_json)
        return exc.exit
    if isinstance(exc, Cancelled | KeyboardInterrupt):
        return _interrupted(as_json, str(exc) or None)
    raise exc  # a bug: its traceback is the report


def _fail(as_json: bool, code: str, message: str, status: Exit) -> Exit:
    if as_json:
        error_json(code, message)
    else:
        err.print(message, markup=False)
    return status


def _interrupted(as_json: bool, hint: str | None) -> Exit:
    if as_json:
        error_json("interrupted", "Interrupted." + (f" {hint}" if hint else ""))
    else:
        err.print("[yellow]Interrupted.[/]" + (f" {hint}" if hint else ""), highlight=False)
    return Exit.INTERRUPTED


# ----------------------------------------------------------------- shared options


def yes_option(fn: F) -> F:
    return click.option("--yes", is_flag=True,
                        help="Do not ask for confirmation (needed when standard input is "
                             "not a terminal).")(fn)


def confirm(question: str, *, yes: bool) -> None:
    """Ask before something that cannot be undone; ``--yes`` answers in advance.

    Without a terminal on standard input there is nobody to ask: refuse (a usage error)
    rather than go ahead silently, so that a script must say ``--yes`` explicitly.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        command = click.get_current_context().command_path
        raise UsageError(f"{question} `{command}` cannot ask: standard input is not a "
                         "terminal. Add --yes to confirm.")
    click.confirm(question, abort=True, err=True)


class CodeChoice(click.Choice):  # type: ignore[type-arg]  # click's Choice is generic
    """One of the server's codes (a project status, a role), given as the code
    (``unit_personnel``) or as the label the tables show (``"Unit Personnel"``), in any
    case; the command gets the code. A wrong value is refused listing the labels."""

    def __init__(self, codes: Sequence[str]) -> None:
        super().__init__(list(codes), case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return super().convert(value, param, ctx)
        code = value.strip().lower().replace(" ", "_").replace("-", "_")
        if code in self.choices:
            return code
        self.fail(f"{value!r} is not one of "
                  + ", ".join(f"{label(c)} ({c})" for c in map(str, self.choices)) + ".",
                  param, ctx)


def project_option(fn: F) -> F:
    return click.option("-p", "--project", required=True, help="Project ID.")(fn)
