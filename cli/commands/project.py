"""``dds project``: create projects, show and change them, their status and access."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from cli.app import CodeChoice, Ctx, DdsGroup, confirm, pass_ctx, project_option, yes_option
from cli.commands.user import show_members
from cli.errors import CliError, Refused, UsageError
from cli.output import done, emit, err, fields, human, label, out, print_json, table, when


@click.group(cls=DdsGroup)
def project() -> None:
    """Create projects, change their status, manage access."""


PROJECT_COLUMNS = [("id", "Project"), ("title", "Title"), ("pi", "PI"),
                   ("status_display", "Status"), ("deadline", "Deadline"),
                   ("role", "Your role"), ("files", "Files"), ("size", "Stored")]


def show_projects(rows: list[dict[str, Any]]) -> None:
    """The projects table (``project ls``, ``dds ls``)."""
    table([{**r, "size": human(r.get("size_bytes", 0)),
            "deadline": when(r.get("deadline")) if r.get("deadline") else None}
           for r in rows], PROJECT_COLUMNS)


USAGE_COLUMNS = [*PROJECT_COLUMNS, ("gb_months", "GB-months"), ("cost", "Cost")]


def _with_usage(ctx: Ctx, rows: list[dict[str, Any]], month: str | None) -> list[dict[str, Any]]:
    """Each project's GB-months and cost in ``month`` (default: last month), from
    GET /usage (unit staff; a researcher is refused there, with the server's reason)."""
    report = ctx.api.get("usage", params={"month": month} if month else None)
    by_id = {p["project_id"]: {**p, "currency": report.get("currency")}
             for u in report.get("units", []) for p in u.get("projects", [])}
    period = report.get("from") if report.get("from") == report.get("to") else (
        f"{report.get('from')}..{report.get('to')}")
    return [{**r, "usage": {"month": period, "gb_months": by_id.get(r["id"], {}).get(
                "gb_months", "0"), "cost": by_id.get(r["id"], {}).get("cost"),
                "currency": report.get("currency")}} for r in rows]


def _show_projects_usage(rows: list[dict[str, Any]]) -> None:
    month = rows[0]["usage"]["month"] if rows else ""
    table([{**r, "size": human(r.get("size_bytes", 0)),
            "deadline": when(r.get("deadline")) if r.get("deadline") else None,
            "gb_months": r["usage"]["gb_months"],
            "cost": (f"{r['usage']['cost']} {r['usage']['currency']}"
                     if r["usage"]["cost"] is not None else "-")}
           for r in rows], USAGE_COLUMNS)
    if month:
        err.print(f"Usage in {month} (GB-months: 10^9 bytes stored for a whole month).",
                  markup=False)


#: The project statuses (the server's codes; tables show them by :func:`label`).
STATUSES = ("in_progress", "available", "expired", "archived", "deleted")


@project.command("ls")
@click.option("--status", type=CodeChoice(STATUSES),
              help="Only projects in this status: its code or its label, e.g. available or "
                   "\"In Progress\".")
@click.option("--usage", is_flag=True,
              help="Add each project's storage use in GB-months and its cost (unit staff).")
@click.option("--month", metavar="YYYY-MM",
              help="With --usage: this month (default: last month; the current one so far).")
@pass_ctx
def project_ls(ctx: Ctx, status: str | None, usage: bool, month: str | None) -> None:
    """Projects you can see."""
    if month and not usage:
        raise UsageError("--month goes with --usage.")
    rows = ctx.api.get("projects", params={"status": status} if status else None)
    if usage:
        emit(ctx.json, _with_usage(ctx, rows, month), _show_projects_usage)
    else:
        emit(ctx.json, rows, show_projects)


#: The API fields of project creation and info change by their options (field errors).
CREATE_OPTIONS = {"title": "--title", "description": "--description",
                  "pi": "--principal-investigator", "non_sensitive": "--non-sensitive",
                  "owners": "--owner", "researchers": "--researcher", "force": "--force",
                  "notify": "--no-mail"}


@project.command("create")
@click.option("-t", "--title", required=True)
@click.option("-d", "--description", default="")
@click.option("-pi", "--principal-investigator", "pi", default="")
@click.option("--non-sensitive", is_flag=True, help="The data is not personal/sensitive.")
@click.option("--owner", "owners", multiple=True, help="Email of a project owner.")
@click.option("--researcher", "researchers", multiple=True, help="Email of a researcher.")
@click.option("--force", is_flag=True, help="Create even if the server warns.")
@click.option("--no-mail", is_flag=True,
              help="Email no invitations (send them later with `project access grant`).")
@pass_ctx
def project_create(ctx: Ctx, title: str, description: str, pi: str, non_sensitive: bool,
                   owners: tuple[str, ...], researchers: tuple[str, ...],
                   force: bool, no_mail: bool) -> None:
    """Create a project (unit staff); prints its ID.

    Researchers and owners with an account become members; other addresses are invited
    to the project (by email, unless --no-mail)."""
    try:
        got = ctx.api.post("projects", {"title": title, "description": description,
                                        "pi": pi, "non_sensitive": non_sensitive,
                                        "force": force, "owners": list(owners),
                                        "researchers": list(researchers),
                                        "notify": not no_mail},
                           options=CREATE_OPTIONS)
    except Refused as exc:
        if exc.code != "needs_force":
            raise
        # The server's words name its API field; here the confirmation is an option.
        reason = exc.message.replace("Confirm (force) to create the project anyway", "")
        raise Refused(f"{reason.strip().rstrip('.')}. To create the project anyway, run "
                      "the same command with --force.", status=exc.status,
                      code=exc.code) from None
    if ctx.json:
        print_json(got)
    else:
        err.print(f"Created project [bold]{got['id']}[/]: {escape(got['title'])}")
        for member in got.get("added", []):
            err.print(f"  added {escape(member['username'])} ({escape(member['email'])})"
                      + (" as owner" if member.get("owner") else ""))
        for invite in got.get("invited", []):
            err.print(f"  invited {escape(invite['email'])}"
                      + (" as owner" if invite.get("owner") else "")
                      + (" (no email sent: run `dds project access grant` without "
                         "--no-mail to send the invitation)" if no_mail else ""))
        out.print(got["id"])


@project.group("info")
def project_info() -> None:
    """Show or change a project's title, description and PI."""


def _show_project(p: dict[str, Any]) -> None:
    def value(key: str) -> Any:
        if key == "size_bytes":
            return human(p[key])
        if key in ("deadline", "created_at") and p.get(key):
            return when(p[key])
        return p.get(key)

    fields([(key.replace("_display", "").replace("_bytes", "").replace("_", " "), value(key))
            for key in ("id", "title", "description", "pi", "unit", "status_display",
                        "deadline", "role", "files", "size_bytes", "non_sensitive",
                        "created_at")])


@project_info.command("display")
@project_option
@pass_ctx
def project_info_display(ctx: Ctx, project: str) -> None:
    """Show the project."""
    emit(ctx.json, ctx.api.get(f"projects/{project}"), _show_project)


@project_info.command("change")
@project_option
@click.option("-t", "--title")
@click.option("-d", "--description")
@click.option("-pi", "--principal-investigator", "pi")
@pass_ctx
def project_info_change(ctx: Ctx, project: str, title: str | None,
                        description: str | None, pi: str | None) -> None:
    """Change title, description or PI."""
    body = {k: v for k, v in (("title", title), ("description", description), ("pi", pi))
            if v is not None}
    if not body:
        raise UsageError("Nothing to change: give --title, --description or "
                         "--principal-investigator.")
    emit(ctx.json, ctx.api.patch(f"projects/{project}", body, options=CREATE_OPTIONS),
         _show_project)


# --------------------------------------------------------------------------- status


@project.group("status")
def project_status() -> None:
    """Status: display, release, retract, extend, archive, delete."""


@project_status.command("display")
@project_option
@click.option("--history", is_flag=True, help="Show every status change.")
@pass_ctx
def status_display(ctx: Ctx, project: str, history: bool) -> None:
    """Current status (and history)."""
    data = ctx.api.get(f"projects/{project}/status")

    def render(d: dict[str, Any]) -> None:
        out.print(f"{project}: [bold]{label(d['status'])}[/]"
                  + (f", deadline {when(d['deadline'])}" if d.get("deadline") else ""))
        if history:
            rows = [{**e, "at": when(e.get("at")), "status": label(e.get("status")),
                     "deadline": when(e["deadline"]) if e.get("deadline") else None}
                    for e in d["history"]]
            table(rows, [("at", "When"), ("status", "Status"), ("by", "By"),
                         ("deadline", "Deadline"), ("aborted", "Aborted")])

    emit(ctx.json, data if history else {k: data[k] for k in ("status", "deadline")}, render)


#: The API fields of the transitions by the option that gives them (for field errors).
TRANSITION_OPTIONS = {"deadline_days": "--deadline", "days": "--days", "abort": "--abort",
                      "notify": "--no-mail"}


def _transition(ctx: Ctx, project: str, action: str, body: dict[str, Any] | None = None,
                ) -> None:
    got = ctx.api.post(f"projects/{project}/{action}", body or {},
                       options=TRANSITION_OPTIONS)
    done(ctx.json, got,
         f"{project} is now [bold]{got['status_display']}[/]"
         + (f" (deadline {when(got['deadline'])})" if got.get("deadline") else "") + ".")


@project_status.command("release")
@project_option
@click.option("--deadline", type=int, help="Days the data stays available (default: unit's).")
@click.option("--no-mail", is_flag=True, help="Do not email the researchers.")
@pass_ctx
def status_release(ctx: Ctx, project: str, deadline: int | None, no_mail: bool) -> None:
    """Make the data available to the researchers."""
    body: dict[str, Any] = {"notify": not no_mail}
    if deadline is not None:
        body["deadline_days"] = deadline
    _transition(ctx, project, "release", body)


@project_status.command("retract")
@project_option
@pass_ctx
def status_retract(ctx: Ctx, project: str) -> None:
    """Back to In Progress (researchers lose access until released again)."""
    _transition(ctx, project, "retract")


@project_status.command("extend")
@project_option
@click.option("--days", type=int, required=True, help="Days to add to the deadline.")
@pass_ctx
def status_extend(ctx: Ctx, project: str, days: int) -> None:
    """Extend the deadline."""
    _transition(ctx, project, "extend", {"days": days})


@project_status.command("archive")
@project_option
@click.option("--abort", is_flag=True, help="The data was released by mistake.")
@yes_option
@pass_ctx
def status_archive(ctx: Ctx, project: str, abort: bool, yes: bool) -> None:
    """Archive: delete all data and keys of the project."""
    confirm(f"Archive {project} and delete all its data?", yes=yes)
    _transition(ctx, project, "archive", {"abort": abort})


@project_status.command("delete")
@project_option
@yes_option
@pass_ctx
def status_delete(ctx: Ctx, project: str, yes: bool) -> None:
    """Delete a project that was never released."""
    confirm(f"Delete {project}?", yes=yes)
    _transition(ctx, project, "delete")


BUSY_COLUMNS = [("id", "Project"), ("unit", "Unit"), ("status", "Status"),
                ("work", "In flight"), ("since", "Since")]


def _in_flight(row: dict[str, Any]) -> str:
    work = []
    if row.get("uploads"):
        work.append(f"{row['uploads']} upload{'s' if row['uploads'] != 1 else ''}")
    if row.get("rotation_since"):
        work.append(f"key rotation ({row.get('rotation_files_done') or 0} files done)")
    if row.get("purge_pending"):
        work.append("storage purge")
    if row.get("locked") and not row.get("rotation_since"):
        work.append("locked by a long operation")
    return ", ".join(work)


def show_busy(rows: list[dict[str, Any]]) -> None:
    if not rows:
        err.print("No project has work in flight: no uploads, key rotations or storage "
                  "purges are running.")
        return
    table([{**r, "work": _in_flight(r), "status": label(r.get("status")),
            "since": when(r["since"]) if r.get("since") else None}
           for r in rows], BUSY_COLUMNS)


@project_status.command("busy")
@pass_ctx
def status_busy(ctx: Ctx) -> None:
    """Projects with work in flight (uploads, key rotation, storage purge): pick a
    deploy moment when this is empty (unit staff: your unit's; operators: all)."""
    emit(ctx.json, ctx.api.get("projects/busy"), show_busy)


# The legacy client also accepts these at the `project` level.
for _name, _cmd in (("release", status_release), ("retract", status_retract),
                    ("archive", status_archive), ("delete", status_delete),
                    ("extend", status_extend)):
    project.add_command(_cmd, _name)


# --------------------------------------------------------------------------- key


@project.command("public-key")
@project_option
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write it to this file instead of standard output.")
@pass_ctx
def project_public_key(ctx: Ctx, project: str, output: str | None) -> None:
    """The project's Crypt4GH public key: encrypt files to it elsewhere (e.g. with
    `crypt4gh encrypt --recipient_pk`), then `dds data put --already-encrypted`."""
    import c4gh  # noqa: PLC0415 - start-up time (cli/app.py)

    key = ctx.api.request("GET", f"projects/{project}/public-key").content
    try:
        c4gh.load_public_key(key)  # the server's answer is a key file, or an error
    except (c4gh.C4GHError, ValueError) as exc:
        raise CliError(f"The server's answer is not a Crypt4GH public key ({exc}).") from None
    if output:
        try:
            Path(output).write_bytes(key)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
        done(ctx.json, {"project": project, "output": output},
             f"Public key of {project} written to {output}.")
    elif ctx.json:
        print_json({"project": project, "public_key": key.decode()})
    else:
        sys.stdout.write(key.decode())
        sys.stdout.flush()


# --------------------------------------------------------------------------- access


@project.group("access")
def project_access() -> None:
    """Who can see the project's data."""


@project_access.command("ls")
@project_option
@pass_ctx
def access_ls(ctx: Ctx, project: str) -> None:
    """Members and pending invites."""
    emit(ctx.json, ctx.api.get(f"projects/{project}/members"), show_members)


@project_access.command("grant")
@project_option
@click.option("-e", "--email", required=True)
@click.option("--owner", is_flag=True, help="Make them a project owner.")
@click.option("--no-mail", is_flag=True,
              help="Send no email; a new address's invitation is held until granted "
                   "again without --no-mail.")
@pass_ctx
def access_grant(ctx: Ctx, project: str, email: str, owner: bool, no_mail: bool) -> None:
    """Give a researcher access (invites them if they have no account)."""
    got = ctx.api.post(f"projects/{project}/members",
                       {"email": email, "owner": owner, "notify": not no_mail},
                       options={"email": "--email", "owner": "--owner",
                                "notify": "--no-mail"})
    quiet = " No email was sent." if no_mail else ""
    done(ctx.json, got,
         f"{got['username']} ({got['email']}) now has access to {project}.{quiet}"
         if "username" in got
         else f"Invited {got['email']} to {project} (until {when(got['expires_at'])})."
         + (" No email was sent: grant again without --no-mail to send the invitation."
            if no_mail else " The invitation is held by another unit: no link was emailed "
            "yet; it carries this grant." if got.get("held") else ""))


@project_access.command("revoke")
@project_option
@click.option("-u", "--username", required=True)
@pass_ctx
def access_revoke(ctx: Ctx, project: str, username: str) -> None:
    """Take a member's access away."""
    ctx.api.delete(f"projects/{project}/members/{username}")
    done(ctx.json, {"project": project, "username": username, "revoked": True},
         f"{username} no longer has access to {project}.")


@project_access.command("fix")
@click.option("-u", "--username", required=True, help="The user who reset their password.")
@click.option("-p", "--project", help="Only this project (default: all you can fix).")
@pass_ctx
def access_fix(ctx: Ctx, username: str, project: str | None) -> None:
    """Re-grant keys to a user who reset their password."""
    if project:
        fixed = ctx.api.post(f"projects/{project}/access-fix", {"username": username})["fixed"]
    else:
        fixed = ctx.api.post(f"users/{username}/access-fix", {})["projects"]
    if fixed:
        message = f"Access fixed for {username} in {', '.join(fixed)}."
    elif project:
        message = f"{username}'s access to {project} needed no fix: nothing was changed."
    else:
        message = (f"No project needed an access fix for {username} (among the projects "
                   "you can fix): nothing was changed.")
    done(ctx.json, {"username": username, "fixed": fixed}, message)
