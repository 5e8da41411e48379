"""``dds auth``: log in and out, who am I, the second factor."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli import config
from cli.app import Ctx, DdsGroup, pass_ctx
from cli.errors import CliError, UsageError
from cli.output import done, emit, err, fields, table


@click.group(cls=DdsGroup)
def auth() -> None:
    """Log in and out."""


def _read_secret(prompt: str, env: str, hide: bool = True) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if sys.stdin.isatty():
        answer: str = click.prompt(prompt, hide_input=hide, err=True)
        return answer
    # Scripts and tests feed answers on stdin, one per line.
    line = sys.stdin.readline()
    if not line:
        raise UsageError(f"{prompt}: nothing on standard input (or set {env}).")
    return line.rstrip("\r\n")


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
    code = code or _read_secret("Code", "DDS_2FA_CODE", hide=False)
    tokens = api.post("auth/2fa", {"code": code.strip()},
                      headers={"Authorization": f"Bearer {first['pending_token']}"})
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
    fields([(key.replace("_label", "").replace("_", " "), user.get(key))
            for key in ("username", "name", "email", "role_label", "unit", "second_factor",
                        "has_keys", "date_joined", "last_login")])
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


@twofactor.command("configure")
@pass_ctx
def twofactor_configure(ctx: Ctx) -> None:
    """Switch between email codes and an authenticator app."""
    current = me(ctx).get("second_factor")
    # The server offers setting up an authenticator app (QR code) in the portal only.
    setup, account = f"{ctx.url}/accounts/totp/setup/", f"{ctx.url}/accounts/"
    emit(ctx.json, {"second_factor": current, "setup_url": setup, "account_url": account},
         lambda _: err.print(f"Your second factor is: {current}.\n"
                             f"Set up or remove an authenticator app at {setup} "
                             f"(the account page: {account}).", markup=False))
