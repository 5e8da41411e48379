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


def _read_secret(prompt: str, env: str | None, hide: bool = True) -> str:
    value = os.environ.get(env) if env else None
    if value:
        return secret(value)
    if sys.stdin.isatty():
        answer: str = click.prompt(prompt, hide_input=hide, err=True)
        return secret(answer)
    # Scripts and tests feed answers on stdin, one per line.
    line = sys.stdin.readline()
    if not line:
        where = f" (or set {env})" if env else ""
        raise UsageError(f"{prompt}: nothing on standard input{where}.")
    return secret(line.rstrip("\r\n"))


@auth.command("login")
@click.option("-u", "--username", envvar="DDS_USERNAME", help="Your username.")
@click.option("--code", envvar="DDS_2FA_CODE", help="Second-factor code (non-interactive).")
@pass_ctx
def auth_login(ctx: Ctx, username: str | None, code: str | None) -> None:
    """Log in with password and second factor; keeps a token (0600) for later commands."""
    api = ctx.client(authenticated=False)
    username = username or _read_secret("Username", "DDS_USERNAME", hide=False)
    password = _read_secret("Password", "DDS_PASSWORD")
    first = api.post("auth/login", {"username": username, "password": password})
    err.print(first.get("detail", "Enter your code."))
    secret(str(first.get("pending_token") or ""))
    code = secret(code) if code else _read_secret("Code", "DDS_2FA_CODE", hide=False)
    tokens = api.post("auth/2fa", {"code": code.strip()},
                      headers={"Authorization": f"Bearer {first['pending_token']}"})
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
            if exc.status != 400 or attempt == CODE_TRIES or not sys.stdin.isatty():
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
