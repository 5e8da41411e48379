"""``dds auth``: log in and out, who am I, the second factor."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.markup import escape

from cli import config
from cli.app import Ctx, DdsGroup, pass_ctx
from cli.errors import CliError, Refused, UsageError
from cli.output import done, emit, err, fields, secret, show_qr, table, when


@click.group(cls=DdsGroup)
def auth() -> None:
    """Log in and out."""


def _on_terminal() -> bool:
    """Whether someone can be asked: standard input is a terminal."""
    return sys.stdin.isatty()


def _read_secret(prompt: str, env: str | None, hide: bool = True,
                 missing: str | None = None) -> str:
    """A secret from ``env``, else typed at the terminal, else a line of standard input.
    ``missing``: what to say when standard input has nothing (default: name ``env``)."""
    value = os.environ.get(env) if env else None
    if value:
        return secret(value)
    if _on_terminal():
        answer: str = click.prompt(prompt, hide_input=hide, err=True)
        return secret(answer)
    # Scripts and tests feed answers on stdin, one per line.
    line = sys.stdin.readline()
    if not line:
        where = f" (or set {env})" if env else ""
        raise UsageError(missing or f"{prompt}: nothing on standard input{where}.")
    return secret(line.rstrip("\r\n"))


#: Tries of a login code on a terminal: the pending login takes several (the server's
#: lockout counts every wrong one, and ends the pending login when it locks).
LOGIN_CODE_TRIES = 3
LOGIN_AGAIN = "Run `dds auth login` again"
#: Standard input ended before the code came.
NO_EMAILED_CODE = (
    "Code: nothing on standard input, and the code was emailed just now. An emailed code "
    "is sent by each login, so it cannot be given in advance (--code or DDS_2FA_CODE only "
    "take an authenticator app's code): keep standard input open until you type it, or "
    "set up an authenticator app (`dds auth twofactor configure`).")
NO_APP_CODE = ("Code: nothing on standard input. Give your authenticator app's code with "
               "--code or DDS_2FA_CODE, or on the line after the password.")


@auth.command("login")
@click.option("-u", "--username", envvar="DDS_USERNAME", help="Your username.")
@click.option("--code", envvar="DDS_2FA_CODE",
              help="Authenticator app code (non-interactive; an emailed code is typed when "
                   "asked, as each login sends a new one).")
@pass_ctx
def auth_login(ctx: Ctx, username: str | None, code: str | None) -> None:
    """Log in with password and second factor; keeps a token (0600) for later commands."""
    api = ctx.client(authenticated=False)
    username = username or _read_secret("Username", "DDS_USERNAME", hide=False)
    password = _read_secret("Password", "DDS_PASSWORD")
    first = api.post("auth/login", {"username": username, "password": password})
    err.print(first.get("detail", "Enter your code."))
    secret(str(first.get("pending_token") or ""))
    emailed = first.get("second_factor") == "email"
    if code and emailed:
        # This login has just emailed a new code: the one given cannot be it.
        err.print("--code / DDS_2FA_CODE is for an authenticator app's code; yours are "
                  "emailed: type the code this login just sent.", markup=False)
        code = None
    missing = NO_EMAILED_CODE if emailed else NO_APP_CODE
    for attempt in range(1, LOGIN_CODE_TRIES + 1):
        if not code:
            code = _read_secret("Code", None, hide=False, missing=missing)
        try:
            tokens = api.post("auth/2fa", {"code": secret(code).strip()},
                              headers={"Authorization": f"Bearer {first['pending_token']}"})
            break
        except Refused as exc:
            if exc.code != "invalid_code":
                raise  # locked (429: the pending login is over), expired, ...
            if attempt < LOGIN_CODE_TRIES and _on_terminal():
                err.print(f"[red]{escape(exc.message)}[/] Try again "
                          f"({LOGIN_CODE_TRIES - attempt} more).")
                code = None
                continue
            again = (": it emails a new code." if emailed else
                     " with the code your app shows now.")
            raise Refused(f"{exc.message.rstrip('.')}. {LOGIN_AGAIN}{again}",
                          status=exc.status, code=exc.code, body=exc.body) from None
    for key in ("access", "refresh"):
        secret(str(tokens.get(key) or ""))
    config.save_token(config.tokens_to_store(ctx.url, username, tokens))
    done(ctx.json, {"url": ctx.url, "username": username,
                    "token_file": str(config.token_path())},
         f"[green]Logged in to {ctx.url} as {username}.[/] "
         f"Token saved in {config.token_path()}.")


@auth.command("logout")
@pass_ctx
def auth_logout(ctx: Ctx) -> None:
    """End your sessions on the server and delete the local token."""
    confirmed = True
    try:
        ctx.api.post("auth/logout")
    except CliError as exc:
        confirmed = False
        err.print(f"[yellow]The server did not confirm the logout:[/] {exc.message}",
                  markup=True)
    removed = config.delete_token()
    done(ctx.json, {"logged_out": removed, "server_confirmed": confirmed},
         "Logged out." if removed else "You were not logged in.")


def me(ctx: Ctx) -> dict[str, Any]:
    answer: dict[str, Any] = ctx.api.get("me")
    return answer


def _show_me(user: dict[str, Any]) -> None:
    times = ("date_joined", "last_login")
    fields([(key.replace("_label", "").replace("_", " "),
             when(user.get(key)) if key in times else user.get(key))
            for key in ("username", "name", "email", "role_label", "unit", "second_factor",
                        "has_keys", *times)])
    if user.get("projects"):
        table(user["projects"], [("project", "Project"), ("title", "Title"),
                                 ("is_owner", "Owner")], title="Projects")


@auth.command("info")
@pass_ctx
def auth_info(ctx: Ctx) -> None:
    """Who you are logged in as."""
    emit(ctx.json, me(ctx), _show_me)


@auth.group("twofactor")
def twofactor() -> None:
    """Second factor (email code or authenticator app)."""


#: Tries of the first code on a terminal before giving up (the server counts failures).
CODE_TRIES = 3


def _grouped(value: str) -> str:
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4))


def _app_setup(ctx: Ctx, current: str | None) -> None:
    """Start the set-up, show the QR code and the secret, confirm with the first code."""
    body: dict[str, str] = {}
    if current == "totp":
        err.print("You already use an authenticator app: the new one replaces it once "
                  "you confirm it with its first code. Replacing it needs your password.",
                  markup=False)
        body["password"] = _read_secret("Password", "DDS_PASSWORD")
    got = ctx.api.post("me/totp/setup", body or None)
    key = secret(str(got["secret"]))
    secret(str(got["uri"]))
    err.print("Scan this QR code with your authenticator app (e.g. FreeOTP, Google "
              "Authenticator, Microsoft Authenticator):", markup=False)
    show_qr(str(got["uri"]), err)
    err.print(f"Or enter the secret by hand: {_grouped(key)}  (time-based, "
              f"{got.get('digits', 6)} digits, every {got.get('period', 30)} s)",
              markup=False)
    err.print(f"Secret (no spaces): {key}", markup=False)
    for attempt in range(1, CODE_TRIES + 1):
        code = _read_secret("Code from the app", None, hide=False).strip().replace(" ", "")
        try:
            answer = ctx.api.post("me/totp/confirm", {"code": code})
            break
        except Refused as exc:
            if exc.status != 400 or attempt == CODE_TRIES or not _on_terminal():
                raise
            err.print(f"[red]{escape(exc.message)}[/] Try again.")
    done(ctx.json, {"second_factor": answer.get("second_factor", "totp"), "changed": True},
         "[green]Authenticator app enabled.[/] From now on, `dds auth login` and the "
         "portal ask for the app's code.")


def _email_back(ctx: Ctx, current: str | None) -> None:
    """Back to emailed codes: the server emails a link that turns the app off."""
    if current == "email":
        done(ctx.json, {"second_factor": "email", "changed": False},
             "Your second factor is already a code sent by email.")
        return
    answer = ctx.api.delete("me/totp") or {}
    done(ctx.json, {"second_factor": current, "changed": False, "email_sent": True,
                    "detail": answer.get("detail")},
         escape(answer.get("detail") or "Check your email to confirm."))


@twofactor.command("configure")
@click.option("--method", type=click.Choice(["app", "email"]), default="app",
              show_default=True,
              help="app: set up an authenticator app (QR code in the terminal, confirmed "
                   "with its first code); email: go back to codes sent by email.")
@pass_ctx
def twofactor_configure(ctx: Ctx, method: str) -> None:
    """Set up an authenticator app, or go back to email codes."""
    current = me(ctx).get("second_factor")
    if method == "app":
        _app_setup(ctx, current)
    else:
        _email_back(ctx, current)
