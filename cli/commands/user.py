"""``dds user``: invite, find, list, (de)activate and delete users; pending invites; a
unit's addresses; resetting a user's second factor (support for staff and operators)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from cli.app import CodeChoice, Ctx, DdsGroup, Outcome, confirm, pass_ctx, yes_option
from cli.commands.auth import auth_info
from cli.errors import CliError, Exit, UsageError
from cli.output import done, emit, err, label, table, when


@click.group(cls=DdsGroup)
def user() -> None:
    """Invite and manage users."""


#: The roles (the server's codes; tables show them by :func:`~cli.output.label`).
ROLES = ("researcher", "unit_personnel", "unit_admin", "super_admin")


def show_members(data: dict[str, Any]) -> None:
    """A project's members and pending invites (``user ls -p``, ``project access ls``)."""
    table(data["members"], [("username", "Username"), ("name", "Name"), ("email", "Email"),
                            ("owner", "Owner"), ("has_key", "Has key")], title="Members")
    if data.get("invites"):
        table([{**row, "expires_at": when(row.get("expires_at"))} for row in data["invites"]],
              [("email", "Email"), ("owner", "Owner"), ("expires_at", "Invite expires")],
              title="Pending invites")


def _show_users(rows: list[dict[str, Any]]) -> None:
    table([{**row, "role": label(row.get("role"))} for row in rows], [
        ("username", "Username"), ("name", "Name"), ("email", "Email"), ("role", "Role"),
        ("is_active", "Active")])


def _show_found(rows: list[dict[str, Any]]) -> None:
    table([{**row, "last_login": when(row.get("last_login")), "role": label(row.get("role"))}
           for row in rows], [
        ("username", "Username"), ("name", "Name"), ("email", "Email"), ("role", "Role"),
        ("unit", "Unit"), ("is_active", "Active"), ("second_factor", "Second factor"),
        ("last_login", "Last login")])


def _show_invites(rows: list[dict[str, Any]]) -> None:
    table([{**row, "projects": ", ".join(row["projects"]) or None,
            "role": label(row.get("role")),
            "expires_at": when(row["expires_at"]) + (" (expired)" if row["is_expired"] else "")}
           for row in rows],
          [("email", "Email"), ("role", "Role"), ("unit", "Unit"), ("projects", "Projects"),
           ("invited_by", "Invited by"), ("expires_at", "Expires")])


def _save_emails(path: str, rows: list[dict[str, Any]]) -> list[str]:
    """Write the active accounts' addresses, one a line; readable by the owner only
    (they are personal data)."""
    emails = sorted({row["email"] for row in rows if row.get("is_active", True)},
                    key=str.lower)
    target = Path(path).expanduser()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{e}\n" for e in emails))
    except OSError as exc:
        raise CliError(f"Cannot write {target}: {exc.strerror or exc}.") from exc
    return emails


@user.command("ls")
@click.option("-p", "--project", help="List the members of this project.")
@click.option("--invites", is_flag=True,
              help="List the pending invites (of your unit; all for a Super Admin).")
@click.option("--unit", help="List this unit's staff, by name, internal ref or public id "
                             "(Super Admin: any unit; unit staff: "
                             "their own).")
@click.option("--save-emails", "save_emails", metavar="FILE",
              help="With --unit: write the addresses of the unit's active staff to FILE, "
                   "one a line.")
@pass_ctx
def user_ls(ctx: Ctx, project: str | None, invites: bool, unit: str | None,
            save_emails: str | None) -> None:
    """List users, a project's members, a unit's staff or the pending invites.

    Without options: the users you manage (your unit's staff and your unit's projects'
    members; everyone for a Super Admin).
    """
    if sum(map(bool, (project, invites, unit))) > 1:
        raise UsageError("Choose one of --project, --invites and --unit.")
    if save_emails and not unit:
        raise UsageError("--save-emails needs --unit: the unit whose addresses to save.")
    if project:
        emit(ctx.json, ctx.api.get(f"projects/{project}/members"), show_members)
    elif invites:
        emit(ctx.json, ctx.api.get("invites"), _show_invites)
    elif unit:
        rows = ctx.api.get("users", params={"unit": unit})
        if save_emails:
            emails = _save_emails(save_emails, rows)
            done(ctx.json, {"unit": unit, "file": save_emails, "emails": emails},
                 f"Saved {len(emails)} address{'es' if len(emails) != 1 else ''} of "
                 f"{unit}'s active staff to {save_emails}.")
        else:
            emit(ctx.json, rows, _show_users)
    else:
        emit(ctx.json, ctx.api.get("users"), _show_users)


@user.command("find")
@click.argument("term")
@pass_ctx
def user_find(ctx: Ctx, term: str) -> Outcome:
    """Find a user by username or email.

    TERM is a username or an email address (exact, any case), or the start of a
    username. Only users you may see are searched: your unit's staff and your unit's projects'
    members (everyone for a Super Admin). Exit status 1 when nobody matches.
    """
    rows = ctx.api.get("users", params={"q": term})
    if rows or ctx.json:
        emit(ctx.json, rows, _show_found)
        return None if rows else Exit.ERROR
    message = f"No user matches {term!r} among the users you can see."
    invited = []
    if "@" in term:  # no user with that address: perhaps one is invited
        invited = [i for i in ctx.api.get("invites") if i["email"].lower() == term.lower()]
    if invited:
        state = "expired" if invited[0]["is_expired"] else "expires"
        message += (f" {invited[0]['email']} has a pending invite ({state} "
                    f"{when(invited[0]['expires_at'])}): see dds user ls --invites.")
    err.print(message, markup=False)
    return Exit.ERROR


@user.command("add")
@click.argument("email")
@click.option("-r", "--role", required=True, type=CodeChoice(ROLES),
              help="Researcher, Unit Personnel, Unit Admin or Super Admin (the label or "
                   "the code, any case).")
@click.option("-p", "--project", help="Give access to this project.")
@click.option("--owner", is_flag=True, help="Make the researcher a project owner.")
@click.option("--unit", help="The unit (name, internal ref or public id) of the staff invited "
                             "(Super Admin).")
@click.option("--no-mail", "no_mail", is_flag=True,
              help="Send no email about it (where the facility tells people itself).")
@pass_ctx
def user_add(ctx: Ctx, email: str, role: str, project: str | None, owner: bool,
             unit: str | None, no_mail: bool) -> None:
    """Invite a user by email (or add an existing researcher to a project)."""
    body: dict[str, Any] = {"email": email, "role": role, "is_owner": owner,
                            "notify": not no_mail}
    if project:
        body["project"] = project
    if unit:
        body["unit"] = unit
    got = ctx.api.post("invites", body, options={
        "email": "EMAIL", "role": "--role", "is_owner": "--owner", "project": "--project",
        "unit": "--unit", "notify": "--no-mail"})
    if got["kind"] == "held":
        message = (f"{got['email']} has an invitation another unit holds back: no email was "
                   "sent; your grant waits with that invitation.")
    elif got["kind"] != "invited":
        message = f"{got['email']} already has an account and was given access."
        if no_mail:
            message += " No email was sent."
    elif no_mail:
        message = (f"Invitation created for {got['email']} (valid until "
                   f"{when(got['expires_at'])}); no email was sent. To email them the link "
                   "later, invite them again without --no-mail.")
    else:
        message = (f"Invitation sent to {got['email']} (valid until "
                   f"{when(got['expires_at'])}).")
    done(ctx.json, got, message)


@user.command("delete")
@click.argument("username", required=False)
@click.option("--invite", "invite", metavar="EMAIL",
              help="Cancel the pending invite of this address instead.")
@click.option("--self", "myself", is_flag=True,
              help="Delete your own account (confirmed by a link emailed to you).")
@yes_option
@pass_ctx
def user_delete(ctx: Ctx, username: str | None, invite: str | None, myself: bool,
                yes: bool) -> None:
    """Delete a user, cancel an invite, or delete your own account.

    USERNAME deletes that account; --invite EMAIL cancels the pending invite of EMAIL
    (its link stops working); --self asks to delete your own account (an email with a
    link to confirm it is sent to you).
    """
    if sum(map(bool, (username, invite, myself))) != 1:
        raise UsageError("Give exactly one of USERNAME, --invite EMAIL and --self.")
    if invite:
        confirm(f"Cancel the invite of {invite}? Its link stops working.", yes=yes)
        got = ctx.api.delete(f"invites/{quote(invite, safe='@')}")
        kept = "" if got["deleted"] else (" (it stays valid for another unit's projects)")
        done(ctx.json, got, f"Cancelled the invite of {got['email']}{kept}.")
    elif myself:
        confirm("Delete your own account? You lose access to every project.", yes=yes)
        got = ctx.api.post("me/delete-request")
        done(ctx.json, {"requested": True, "detail": got["detail"]},
             "An email with a link to confirm the deletion was sent to you; the link is "
             "valid for one hour. Nothing is deleted until you open it.")
    else:
        confirm(f"Delete the account {username}?", yes=yes)
        ctx.api.delete(f"users/{username}")
        done(ctx.json, {"username": username, "deleted": True}, f"Deleted {username}.")


@user.command("reset-second-factor")
@click.argument("username")
@yes_option
@pass_ctx
def user_reset_second_factor(ctx: Ctx, username: str, yes: bool) -> None:
    """Reset a user's second factor (Super Admin).

    For a user who lost their authenticator app: the app is removed, logins use emailed
    codes again, the user's sessions end and the user is emailed. Audited.
    """
    confirm(f"Reset the second factor of {username}? Their authenticator app is removed "
            "and their sessions end.", yes=yes)
    got = ctx.api.post(f"users/{username}/second-factor-reset")
    done(ctx.json, got, got["detail"])


def _set_active(ctx: Ctx, username: str, active: bool) -> None:
    ctx.api.post(f"users/{username}/{'reactivate' if active else 'deactivate'}")
    done(ctx.json, {"username": username, "active": active},
         f"{username} is active again." if active else f"{username} is deactivated.")


@user.command("deactivate")
@click.argument("username")
@pass_ctx
def user_deactivate(ctx: Ctx, username: str) -> None:
    """Deactivate a user (ends their sessions)."""
    _set_active(ctx, username, False)


@user.command("activate")
@click.argument("username")
@pass_ctx
def user_activate(ctx: Ctx, username: str) -> None:
    """Reactivate a user."""
    _set_active(ctx, username, True)


# `dds user info` is the same command as `dds auth info`.
user.add_command(auth_info, "info")
