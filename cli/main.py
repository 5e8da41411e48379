"""The `dds` command: auth, user, project, unit and data commands over the DDS API.

Data (tables, JSON) goes to stdout; progress, messages and the failure summary go to
stderr, so ``--json`` output pipes cleanly. Any failure exits non-zero.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from cli import config
from cli.client import Api, server_url, tokens_to_store
from cli.errors import CliError, LoginRequired
from cli.transfer import Bars, Cancelled, Summary
from cli.version import __version__

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class Ctx:
    def __init__(self, url: str | None, as_json: bool) -> None:
        self._url, self.json = url, as_json

    @functools.cached_property
    def url(self) -> str:
        return server_url(self._url)

    @functools.cached_property
    def api(self) -> Api:
        return Api(self.url)


def handle_errors(fn):
    """Turn CliError/Ctrl-C into a message on stderr and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LoginRequired as exc:
            err.print(f"[bold red]Not logged in:[/] {exc.message}")
            sys.exit(EXIT_FAILED)
        except CliError as exc:
            err.print(f"[bold red]Error:[/] {exc.message}")
            sys.exit(EXIT_FAILED)
        except (KeyboardInterrupt, Cancelled):
            err.print("[yellow]Interrupted.[/]")
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def emit(ctx: Ctx, data, render) -> None:
    if ctx.json:
        out.print_json(json.dumps(data, default=str))
    else:
        render(data)


def table(rows: list[dict], columns: list[tuple[str, str]], title: str | None = None) -> None:
    t = Table(title=title, show_lines=False)
    for _, label in columns:
        t.add_column(label, overflow="fold")
    for row in rows:
        t.add_row(*[_cell(row.get(key)) for key, _ in columns])
    out.print(t)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def when(value) -> str:
    """An API timestamp in this machine's time zone, the same way everywhere (the API
    answers some in UTC and some in the server's zone)."""
    import datetime as dt

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


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


pass_ctx = click.make_pass_decorator(Ctx)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
project_option = click.option("-p", "--project", required=True, help="Project ID.")


def _json_ctx(ctx: Ctx, as_json: bool) -> Ctx:
    ctx.json = ctx.json or as_json
    return ctx


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="DDS_URL", help="DDS server, e.g. https://dds.example.org "
              "(or DDS_URL; default: the server you logged in to).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON where lists are printed.")
@click.version_option(__version__, prog_name="dds")
@click.pass_context
def cli(click_ctx, url, as_json):
    """DDS: deliver research data, encrypted end to end."""
    click_ctx.obj = Ctx(url, as_json)


# =========================================================================== auth


@cli.group()
def auth():
    """Log in and out."""


def _read_secret(prompt: str, env: str, hide: bool = True) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=hide, err=True)
    # Scripts and tests feed answers on stdin, one per line.
    line = sys.stdin.readline()
    if not line:
        raise CliError(f"{prompt}: nothing on standard input (or set {env}).")
    return line.rstrip("\r\n")


@auth.command("login")
@click.option("-u", "--username", envvar="DDS_USERNAME", help="Your username.")
@click.option("--code", envvar="DDS_2FA_CODE", help="Second-factor code (non-interactive).")
@pass_ctx
@handle_errors
def auth_login(ctx: Ctx, username, code):
    """Log in with password and second factor; keeps a token (0600) for later commands."""
    api = Api(ctx.url, authenticated=False)
    username = username or _read_secret("Username", "DDS_USERNAME", hide=False)
    password = _read_secret("Password", "DDS_PASSWORD")
    first = api.post("auth/login", {"username": username, "password": password})
    err.print(first.get("detail", "Enter your code."))
    code = code or _read_secret("Code", "DDS_2FA_CODE", hide=False)
    r = api.http.post("auth/2fa", json={"code": code.strip()},
                      headers={"Authorization": f"Bearer {first['pending_token']}"})
    if r.status_code != 200:
        from cli.client import error_from

        raise error_from(r)
    config.save_token(tokens_to_store(ctx.url, username, r.json()))
    err.print(f"[green]Logged in to {ctx.url} as {username}.[/] "
              f"Token saved in {config.token_path()}.")


@auth.command("logout")
@pass_ctx
@handle_errors
def auth_logout(ctx: Ctx):
    """End your sessions on the server and delete the local token."""
    try:
        Api(ctx.url).post("auth/logout")
    except CliError as exc:
        err.print(f"[yellow]The server did not confirm the logout:[/] {exc.message}")
    removed = config.delete_token()
    err.print("Logged out." if removed else "You were not logged in.")


def _me(ctx: Ctx) -> dict:
    return ctx.api.get("me")


def _show_me(me: dict) -> None:
    t = Table(show_header=False, box=None)
    for key in ("username", "name", "email", "role_label", "unit", "second_factor",
                "has_keys", "date_joined", "last_login"):
        t.add_row(key.replace("_label", "").replace("_", " "), _cell(me.get(key)))
    out.print(t)
    if me.get("projects"):
        table(me["projects"], [("project", "Project"), ("title", "Title"),
                               ("is_owner", "Owner")], title="Projects")


@auth.command("info")
@json_option
@pass_ctx
@handle_errors
def auth_info(ctx: Ctx, as_json):
    """Who you are logged in as."""
    emit(_json_ctx(ctx, as_json), _me(ctx), _show_me)


@auth.group("twofactor")
def twofactor():
    """Second factor (email code or authenticator app)."""


@twofactor.command("configure")
@pass_ctx
@handle_errors
def twofactor_configure(ctx: Ctx):
    """Switch between email codes and an authenticator app."""
    me = _me(ctx)
    # The server offers setting up an authenticator app (QR code) in the portal only.
    err.print(f"Your second factor is: {me.get('second_factor')}.\n"
              f"Set up or remove an authenticator app at {ctx.url}/accounts/totp/setup/ "
              f"(the account page: {ctx.url}/accounts/).")


# =========================================================================== users


@cli.group()
def user():
    """Invite and manage users."""


ROLES = {"researcher": "researcher", "unit personnel": "unit_personnel",
         "unit admin": "unit_admin", "super admin": "super_admin"}


def _role(value: str) -> str:
    key = value.strip().lower().replace("_", " ").replace("-", " ")
    return ROLES.get(key, value)


@user.command("ls")
@click.option("-p", "--project", help="List the members of this project.")
@json_option
@pass_ctx
@handle_errors
def user_ls(ctx: Ctx, project, as_json):
    """List users (of your unit, or of one project)."""
    ctx = _json_ctx(ctx, as_json)
    if project:
        data = ctx.api.get(f"projects/{project}/members")
        emit(ctx, data, _show_members)
        return
    data = ctx.api.get("users")
    emit(ctx, data, lambda rows: table(rows if isinstance(rows, list) else rows["users"], [
        ("username", "Username"), ("name", "Name"), ("email", "Email"), ("role", "Role"),
        ("is_active", "Active")]))


def _show_members(data: dict) -> None:
    table(data["members"], [("username", "Username"), ("name", "Name"), ("email", "Email"),
                            ("owner", "Owner"), ("has_key", "Has key")], title="Members")
    if data.get("invites"):
        table(data["invites"], [("email", "Email"), ("owner", "Owner"),
                                ("expires_at", "Invite expires")], title="Pending invites")


@user.command("add")
@click.argument("email")
@click.option("-r", "--role", required=True,
              help="Researcher, Unit Personnel, Unit Admin or Super Admin.")
@click.option("-p", "--project", help="Give access to this project.")
@click.option("--owner", is_flag=True, help="Make the researcher a project owner.")
@click.option("--unit", help="Unit name (Super Admin inviting unit staff).")
@pass_ctx
@handle_errors
def user_add(ctx: Ctx, email, role, project, owner, unit):
    """Invite a user by email (or add an existing researcher to a project)."""
    body = {"email": email, "role": _role(role), "is_owner": owner}
    if project:
        body["project"] = project
    if unit:
        body["unit"] = unit
    got = ctx.api.post("invites", body)
    if got["kind"] == "invited":
        err.print(f"Invitation sent to {got['email']} (valid until {got['expires_at']}).")
    else:
        err.print(f"{got['email']} already has an account and was given access.")


@user.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@handle_errors
def user_delete(ctx: Ctx, username, yes):
    """Delete a user account."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete the account {username}?", abort=True, err=True)
    ctx.api.delete(f"users/{username}")
    err.print(f"Deleted {username}.")


@user.command("deactivate")
@click.argument("username")
@pass_ctx
@handle_errors
def user_deactivate(ctx: Ctx, username):
    """Deactivate a user (ends their sessions)."""
    ctx.api.post(f"users/{username}/deactivate")
    err.print(f"{username} is deactivated.")


@user.command("activate")
@click.argument("username")
@pass_ctx
@handle_errors
def user_activate(ctx: Ctx, username):
    """Reactivate a user."""
    ctx.api.post(f"users/{username}/reactivate")
    err.print(f"{username} is active again.")


# `dds user info` is the same command as `dds auth info`.
user.add_command(auth_info, "info")


# =========================================================================== units


@cli.group()
def unit():
    """Units (Super Admin)."""


@unit.command("ls")
@json_option
@pass_ctx
@handle_errors
def unit_ls(ctx: Ctx, as_json):
    """List units."""
    ctx = _json_ctx(ctx, as_json)
    emit(ctx, ctx.api.get("units"), lambda rows: table(rows, [
        ("name", "Name"), ("public_id", "ID"), ("contact_email", "Contact"),
        ("days_in_available", "Days available"), ("quota_bytes", "Quota")]))


# =========================================================================== projects


@cli.group()
def project():
    """Create projects, change their status, manage access."""


PROJECT_COLUMNS = [("id", "Project"), ("title", "Title"), ("pi", "PI"),
                   ("status_display", "Status"), ("deadline", "Deadline"),
                   ("role", "Your role"), ("files", "Files"), ("size", "Size")]


def _project_rows(rows: list[dict]) -> list[dict]:
    return [{**r, "size": human(r.get("size_bytes", 0)),
             "deadline": when(r.get("deadline")) if r.get("deadline") else None}
            for r in rows]


def _show_projects(rows: list[dict]) -> None:
    table(_project_rows(rows), PROJECT_COLUMNS)


@project.command("ls")
@click.option("--status", help="Only projects in this status (e.g. available).")
@json_option
@pass_ctx
@handle_errors
def project_ls(ctx: Ctx, status, as_json):
    """Projects you can see."""
    ctx = _json_ctx(ctx, as_json)
    rows = ctx.api.get("projects", params={"status": status} if status else None)
    emit(ctx, rows, _show_projects)


@project.command("create")
@click.option("-t", "--title", required=True)
@click.option("-d", "--description", default="")
@click.option("-pi", "--principal-investigator", "pi", default="")
@click.option("--non-sensitive", is_flag=True, help="The data is not personal/sensitive.")
@click.option("--owner", "owners", multiple=True, help="Email of a project owner.")
@click.option("--researcher", "researchers", multiple=True, help="Email of a researcher.")
@click.option("--force", is_flag=True, help="Create even if the server warns.")
@json_option
@pass_ctx
@handle_errors
def project_create(ctx: Ctx, title, description, pi, non_sensitive, owners, researchers,
                   force, as_json):
    """Create a project (unit staff); prints its ID."""
    ctx = _json_ctx(ctx, as_json)
    try:
        got = ctx.api.post("projects", {"title": title, "description": description,
                                        "pi": pi, "non_sensitive": non_sensitive,
                                        "force": force, "owners": list(owners),
                                        "researchers": list(researchers)})
    except CliError as exc:
        if exc.code != "needs_force":
            raise
        # The server's words name its API field; here the confirmation is an option.
        reason = exc.message.replace("Confirm (force) to create the project anyway", "")
        raise CliError(f"{reason.strip().rstrip('.')}. To create the project anyway, run "
                       "the same command with --force.", status=exc.status, code=exc.code)
    if ctx.json:
        emit(ctx, got, None)
    else:
        err.print(f"Created project [bold]{got['id']}[/]: {got['title']}")
        out.print(got["id"])


@project.group("info")
def project_info():
    """Show or change a project's title, description and PI."""


def _show_project(p: dict) -> None:
    t = Table(show_header=False, box=None)
    for key in ("id", "title", "description", "pi", "unit", "status_display", "deadline",
                "role", "files", "size_bytes", "non_sensitive", "created_at"):
        value = (human(p[key]) if key == "size_bytes"
                 else when(p.get(key)) if key in ("deadline", "created_at") and p.get(key)
                 else p.get(key))
        t.add_row(key.replace("_display", "").replace("_bytes", "").replace("_", " "),
                  _cell(value))
    out.print(t)


@project_info.command("display")
@project_option
@json_option
@pass_ctx
@handle_errors
def project_info_display(ctx: Ctx, project, as_json):
    """Show the project."""
    ctx = _json_ctx(ctx, as_json)
    emit(ctx, ctx.api.get(f"projects/{project}"), _show_project)


@project_info.command("change")
@project_option
@click.option("-t", "--title")
@click.option("-d", "--description")
@click.option("-pi", "--principal-investigator", "pi")
@pass_ctx
@handle_errors
def project_info_change(ctx: Ctx, project, title, description, pi):
    """Change title, description or PI."""
    body = {k: v for k, v in (("title", title), ("description", description), ("pi", pi))
            if v is not None}
    if not body:
        raise CliError("Nothing to change: give --title, --description or "
                       "--principal-investigator.")
    _show_project(ctx.api.patch(f"projects/{project}", body))


@project.group("status")
def project_status():
    """Status: display, release, retract, extend, archive, delete."""


@project_status.command("display")
@project_option
@click.option("--history", is_flag=True, help="Show every status change.")
@json_option
@pass_ctx
@handle_errors
def status_display(ctx: Ctx, project, history, as_json):
    """Current status (and history)."""
    ctx = _json_ctx(ctx, as_json)
    data = ctx.api.get(f"projects/{project}/status")

    def render(d):
        out.print(f"{project}: [bold]{d['status']}[/]"
                  + (f", deadline {when(d['deadline'])}" if d.get("deadline") else ""))
        if history:
            rows = [{**e, "at": when(e.get("at")),
                     "deadline": when(e["deadline"]) if e.get("deadline") else None}
                    for e in d["history"]]
            table(rows, [("at", "When"), ("status", "Status"), ("by", "By"),
                         ("deadline", "Deadline"), ("aborted", "Aborted")])

    emit(ctx, data if history else {k: data[k] for k in ("status", "deadline")}, render)


def _transition(ctx: Ctx, project: str, action: str, body: dict | None = None) -> None:
    got = ctx.api.post(f"projects/{project}/{action}", body or {})
    err.print(f"{project} is now [bold]{got['status_display']}[/]"
              + (f" (deadline {when(got['deadline'])})" if got.get("deadline") else "") + ".")


@project_status.command("release")
@project_option
@click.option("--deadline", type=int, help="Days the data stays available (default: unit's).")
@click.option("--no-mail", is_flag=True, help="Do not email the researchers.")
@pass_ctx
@handle_errors
def status_release(ctx: Ctx, project, deadline, no_mail):
    """Make the data available to the researchers."""
    body = {"notify": not no_mail}
    if deadline is not None:
        body["deadline_days"] = deadline
    _transition(ctx, project, "release", body)


@project_status.command("retract")
@project_option
@pass_ctx
@handle_errors
def status_retract(ctx: Ctx, project):
    """Back to In Progress (researchers lose access until released again)."""
    _transition(ctx, project, "retract")


@project_status.command("extend")
@project_option
@click.option("--days", type=int, required=True, help="Days to add to the deadline.")
@pass_ctx
@handle_errors
def status_extend(ctx: Ctx, project, days):
    """Extend the deadline."""
    _transition(ctx, project, "extend", {"days": days})


@project_status.command("archive")
@project_option
@click.option("--abort", is_flag=True, help="The data was released by mistake.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@handle_errors
def status_archive(ctx: Ctx, project, abort, yes):
    """Archive: delete all data and keys of the project."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Archive {project} and delete all its data?", abort=True, err=True)
    _transition(ctx, project, "archive", {"abort": abort})


@project_status.command("delete")
@project_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@handle_errors
def status_delete(ctx: Ctx, project, yes):
    """Delete a project that was never released."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete {project}?", abort=True, err=True)
    _transition(ctx, project, "delete")


# The legacy client also accepts these at the `project` level.
for _name, _cmd in (("release", status_release), ("retract", status_retract),
                    ("archive", status_archive), ("delete", status_delete),
                    ("extend", status_extend)):
    project.add_command(_cmd, _name)


@project.command("public-key")
@project_option
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write it to this file instead of standard output.")
@pass_ctx
@handle_errors
def project_public_key(ctx: Ctx, project, output):
    """The project's Crypt4GH public key: encrypt files to it elsewhere (e.g. with
    `crypt4gh encrypt --recipient_pk`), then `dds data put --already-encrypted`."""
    import c4gh

    key = ctx.api.request("GET", f"projects/{project}/public-key").content
    try:
        c4gh.load_public_key(key)  # the server's answer is a key file, or an error
    except (c4gh.C4GHError, ValueError) as exc:
        raise CliError(f"The server's answer is not a Crypt4GH public key ({exc}).")
    if output:
        try:
            Path(output).write_bytes(key)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}")
        err.print(f"Public key of {project} written to {output}.")
    else:
        sys.stdout.write(key.decode())
        sys.stdout.flush()


@project.group("access")
def project_access():
    """Who can see the project's data."""


@project_access.command("ls")
@project_option
@json_option
@pass_ctx
@handle_errors
def access_ls(ctx: Ctx, project, as_json):
    """Members and pending invites."""
    ctx = _json_ctx(ctx, as_json)
    emit(ctx, ctx.api.get(f"projects/{project}/members"), _show_members)


@project_access.command("grant")
@project_option
@click.option("-e", "--email", required=True)
@click.option("--owner", is_flag=True, help="Make them a project owner.")
@pass_ctx
@handle_errors
def access_grant(ctx: Ctx, project, email, owner):
    """Give a researcher access (invites them if they have no account)."""
    got = ctx.api.post(f"projects/{project}/members", {"email": email, "owner": owner})
    if "username" in got:
        err.print(f"{got['username']} ({got['email']}) now has access to {project}.")
    else:
        err.print(f"Invited {got['email']} to {project} (until {got['expires_at']}).")


@project_access.command("revoke")
@project_option
@click.option("-u", "--username", required=True)
@pass_ctx
@handle_errors
def access_revoke(ctx: Ctx, project, username):
    """Take a member's access away."""
    ctx.api.delete(f"projects/{project}/members/{username}")
    err.print(f"{username} no longer has access to {project}.")


@project_access.command("fix")
@click.option("-u", "--username", required=True, help="The user who reset their password.")
@click.option("-p", "--project", help="Only this project (default: all you can fix).")
@pass_ctx
@handle_errors
def access_fix(ctx: Ctx, username, project):
    """Re-grant keys to a user who reset their password."""
    if project:
        got = ctx.api.post(f"projects/{project}/access-fix", {"username": username})
        fixed = got["fixed"]
    else:
        fixed = ctx.api.post(f"users/{username}/access-fix", {})["projects"]
    err.print(f"Access fixed for {username} in: {', '.join(fixed) or 'no project'}.")


# =========================================================================== data


@cli.group()
def data():
    """Upload, list, download and remove files."""


def _bars(ctx: Ctx, silent: bool, label: str):
    return lambda total: Bars(err, total, silent or ctx.json, label)


def _finish(summary: Summary, verb: str, hint: str, ctx: Ctx) -> None:
    if ctx.json:
        out.print_json(json.dumps({"done": sorted(summary.done),
                                   "skipped": dict(summary.skipped),
                                   "failed": dict(summary.failed)}))
    summary.report(err, verb, hint)
    if summary.failed:
        sys.exit(EXIT_FAILED)


@data.command("put")
@project_option
@click.option("-s", "--source", "sources", multiple=True, help="File or folder to upload.")
@click.option("-spf", "--source-path-file", type=click.Path(dir_okay=False),
              help="File listing sources, one per line.")
@click.option("-d", "--destination", default="", help="Folder in the project to put into.")
@click.option("--overwrite", is_flag=True, help="Replace files already in the project.")
@click.option("-nt", "--num-threads", default=4, show_default=True, type=click.IntRange(1, 32),
              help="Files in flight at once.")
@click.option("--break-on-fail", is_flag=True, help="Stop at the first failed file.")
@click.option("--already-encrypted", is_flag=True,
              help="The files are Crypt4GH files encrypted to the project's public key "
                   "(`dds project public-key`): upload them as they are, without .c4gh.")
@click.option("--silent", is_flag=True, help="No progress bars.")
@pass_ctx
@handle_errors
def data_put(ctx: Ctx, project, sources, source_path_file, destination, overwrite,
             num_threads, break_on_fail, already_encrypted, silent):
    """Encrypt and upload files (resumes an interrupted put of the same files)."""
    from cli.put import collect_sources, run_put

    paths = list(sources)
    if source_path_file:
        try:
            paths += [line.strip() for line in Path(source_path_file).read_text().splitlines()
                      if line.strip()]
        except OSError as exc:
            raise CliError(f"cannot read {source_path_file}: {exc.strerror or exc}")
    if not paths:
        raise CliError("Nothing to upload: give --source or --source-path-file.")
    summary = Summary()
    found = collect_sources(paths, destination, summary, encrypted=already_encrypted)
    try:
        run_put(ctx.api, project, found, overwrite=overwrite, threads=num_threads,
                bars_factory=_bars(ctx, silent, "Uploading"), summary=summary,
                break_on_fail=break_on_fail,
                notify=lambda m: err.print(m, markup=False))
    except Cancelled:
        summary.report(err, "uploaded", "run the same command again: it resumes")
        err.print("[yellow]Interrupted[/]: run the same command again to resume.")
        sys.exit(EXIT_INTERRUPTED)
    _finish(summary, "uploaded", "run the same command again (stored files are skipped, "
            "unfinished ones resume)", ctx)


@data.command("get")
@project_option
@click.option("-s", "--source", "sources", multiple=True, help="File or folder to download.")
@click.option("-a", "--get-all", is_flag=True, help="Download everything.")
@click.option("-d", "--destination", type=click.Path(file_okay=False), default=None,
              help="Local folder (default: DDS_<project>_<date> in the current folder).")
@click.option("-nt", "--num-threads", default=4, show_default=True, type=click.IntRange(1, 32))
@click.option("--break-on-fail", is_flag=True, help="Stop at the first failed file.")
@click.option("--keep-encrypted", is_flag=True,
              help="Write standard .c4gh files instead of decrypting.")
@click.option("--recipient-pk", type=click.Path(exists=True, dir_okay=False),
              help="With --keep-encrypted: Crypt4GH public key file to address them to.")
@click.option("--silent", is_flag=True, help="No progress bars.")
@pass_ctx
@handle_errors
def data_get(ctx: Ctx, project, sources, get_all, destination, num_threads, break_on_fail,
             keep_encrypted, recipient_pk, silent):
    """Download and decrypt files (verified by SHA-256 before they appear)."""
    import datetime as dt

    import c4gh
    from cli.get import Downloader, local_keypair

    if bool(sources) == get_all:
        raise CliError("Give either --source (one or more) or --get-all.")
    if recipient_pk and not keep_encrypted:
        raise CliError("--recipient-pk only makes sense with --keep-encrypted.")
    pk = None
    if keep_encrypted:
        if recipient_pk:
            try:
                pk = c4gh.load_public_key(Path(recipient_pk).read_bytes())
            except (OSError, c4gh.C4GHError, ValueError) as exc:
                raise CliError(f"{recipient_pk} is not a Crypt4GH public key file: {exc}")
        else:
            sec, pk = local_keypair()
            err.print(f"Files will be encrypted to your key; decrypt with "
                      f"`crypt4gh decrypt --sk {sec} < NAME.c4gh > NAME` (files named "
                      f"NAME.zst.c4gh hold zstd data: `... | zstd -d > NAME`).",
                      markup=False)
    dest = Path(destination or f"DDS_{project}_{dt.date.today():%Y-%m-%d}")
    summary = Summary()
    down = Downloader(ctx.api, project, dest, threads=num_threads,
                      bars_factory=_bars(ctx, silent, "Downloading"), summary=summary,
                      break_on_fail=break_on_fail, keep_encrypted=keep_encrypted,
                      recipient_pk=pk)
    items = down.resolve(None if get_all else list(sources))
    try:
        down.run(items)
    except Cancelled:
        summary.report(err, "downloaded", "run the same command again: it resumes")
        sys.exit(EXIT_INTERRUPTED)
    if not ctx.json:
        err.print(f"Destination: {dest}")
        zst = [it for it in items if keep_encrypted and it.compressed
               and it.path in set(summary.done)]
        if zst:
            key = "the matching secret key" if recipient_pk else str(sec)
            err.print(f"{len(zst)} file(s) were stored zstd-compressed (NAME.zst.c4gh): "
                      f"decrypt, then decompress: `crypt4gh decrypt --sk {key} < "
                      "NAME.zst.c4gh | zstd -d > NAME`.", markup=False)
    _finish(summary, "downloaded", "run the same command again (finished files are skipped, "
            "partial ones resume)", ctx)


def _list_folder(ctx: Ctx, project: str, folder: str) -> dict:
    folders, files = [], []
    offset = 0
    while True:
        page = ctx.api.get(f"projects/{project}/files",
                           params={"folder": folder, "offset": offset, "limit": 1000})
        folders += page["folders"] if offset == 0 else []
        files += page["files"]
        if page.get("next_offset") is None:
            return {"folder": page["folder"], "folders": folders, "files": files}
        offset = page["next_offset"]


def _tree(ctx: Ctx, project: str, folder: str) -> list[dict]:
    files, after = [], ""
    while True:
        page = ctx.api.get(f"projects/{project}/files/tree",
                           params={"folder": folder, "after": after, "limit": 10000})
        files += page["files"]
        if not page.get("next"):
            return files
        after = page["next"]


def _ls(ctx: Ctx, project: str | None, folder: str, tree: bool, size: bool) -> None:
    if project is None:
        emit(ctx, ctx.api.get("projects"), _show_projects)
        return
    folder = folder.strip("/")
    if tree:
        files = _tree(ctx, project, folder)

        def render(rows):
            root = Tree(f"[bold]{project}[/]/{folder}")
            nodes = {"": root}
            for f in rows:
                rel = f["path"][len(folder):].lstrip("/") if folder else f["path"]
                parts = rel.split("/")
                for i in range(1, len(parts)):
                    key = "/".join(parts[:i])
                    if key not in nodes:
                        nodes[key] = nodes["/".join(parts[:i - 1])].add(f"[blue]{parts[i-1]}/")
                label = parts[-1] + (f"  ({human(f['size_original'])})" if size else "")
                nodes["/".join(parts[:-1])].add(label, highlight=False)
            out.print(root)

        emit(ctx, files, render)
        return
    listing = _list_folder(ctx, project, folder)

    def render(d):
        t = Table(show_header=size, box=None)
        t.add_column("Name")
        if size:
            t.add_column("Size", justify="right")
        for f in d["folders"]:
            t.add_row(f"[blue]{f['name']}/[/]", *([human(f["size_original"])] if size else []))
        for f in d["files"]:
            t.add_row(f["name"], *([human(f["size_original"])] if size else []))
        out.print(t)

    emit(ctx, listing, render)


@data.command("ls")
@click.option("-p", "--project", help="Project ID (none: list your projects).")
@click.argument("folder", default="")
@click.option("--tree", is_flag=True, help="Every file under the folder, as a tree.")
@click.option("--size", is_flag=True, help="Show sizes.")
@json_option
@pass_ctx
@handle_errors
def data_ls(ctx: Ctx, project, folder, tree, size, as_json):
    """List a project's files (or your projects)."""
    _ls(_json_ctx(ctx, as_json), project, folder, tree, size)


# `dds ls` is a shortcut for `dds data ls` (your projects without -p).
cli.add_command(data_ls, "ls")


@data.command("rm")
@project_option
@click.argument("paths", nargs=-1)
@click.option("--folder", help="Remove this folder and everything under it.")
@click.option("--all", "remove_all", is_flag=True, help="Remove every file of the project.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@handle_errors
def data_rm(ctx: Ctx, project, paths, folder, remove_all, yes):
    """Remove files, a folder, or everything."""
    if sum(bool(x) for x in (paths, folder, remove_all)) != 1:
        raise CliError("Give file paths, --folder or --all (one of them).")
    if remove_all or folder:
        target = "" if remove_all else folder
        if not yes and sys.stdin.isatty():
            what = "every file" if remove_all else f"the folder {folder}"
            click.confirm(f"Remove {what} from {project}?", abort=True, err=True)
        got = ctx.api.post(f"projects/{project}/files/remove-folder", {"folder": target})
        queued = " (continuing in the background)" if got.get("queued") else ""
        err.print(f"Removing {got['files']} file(s){queued}.")
        return
    got = ctx.api.post(f"projects/{project}/files/remove", {"paths": list(paths)})
    for p in got["removed"]:
        err.print(f"removed {p}")
    if got["not_found"]:
        for p in got["not_found"]:
            err.print(f"[red]not found[/] {p}")
        sys.exit(EXIT_FAILED)


def main() -> None:
    cli(prog_name="dds")


if __name__ == "__main__":
    main()
