"""``dds user``: invite, list, (de)activate and delete users."""

from __future__ import annotations

from typing import Any

import click

from cli.app import Ctx, DdsGroup, confirm, pass_ctx, yes_option
from cli.commands.auth import auth_info
from cli.output import done, emit, table


@click.group(cls=DdsGroup)
def user() -> None:
    """Invite and manage users."""


ROLES = {"researcher": "researcher", "unit personnel": "unit_personnel",
         "unit admin": "unit_admin", "super admin": "super_admin"}


def _role(value: str) -> str:
    key = value.strip().lower().replace("_", " ").replace("-", " ")
    return ROLES.get(key, value)


def show_members(data: dict[str, Any]) -> None:
    """A project's members and pending invites (``user ls -p``, ``project access ls``)."""
    table(data["members"], [("username", "Username"), ("name", "Name"), ("email", "Email"),
                            ("owner", "Owner"), ("has_key", "Has key")], title="Members")
    if data.get("invites"):
        table(data["invites"], [("email", "Email"), ("owner", "Owner"),
                                ("expires_at", "Invite expires")], title="Pending invites")


def _show_users(rows: list[dict[str, Any]]) -> None:
    table(rows, [
        ("username", "Username"), ("name", "Name"), ("email", "Email"), ("role", "Role"),
        ("is_active", "Active")])


@user.command("ls")
@click.option("-p", "--project", help="List the members of this project.")
@pass_ctx
def user_ls(ctx: Ctx, project: str | None) -> None:
    """List users (of your unit, or of one project)."""
    if project:
        emit(ctx.json, ctx.api.get(f"projects/{project}/members"), show_members)
    else:
        emit(ctx.json, ctx.api.get("users"), _show_users)


@user.command("add")
@click.argument("email")
@click.option("-r", "--role", required=True,
              help="Researcher, Unit Personnel, Unit Admin or Super Admin.")
@click.option("-p", "--project", help="Give access to this project.")
@click.option("--owner", is_flag=True, help="Make the researcher a project owner.")
@click.option("--unit", help="Unit name (Super Admin inviting unit staff).")
@pass_ctx
def user_add(ctx: Ctx, email: str, role: str, project: str | None, owner: bool,
             unit: str | None) -> None:
    """Invite a user by email (or add an existing researcher to a project)."""
    body: dict[str, Any] = {"email": email, "role": _role(role), "is_owner": owner}
    if project:
        body["project"] = project
    if unit:
        body["unit"] = unit
    got = ctx.api.post("invites", body)
    done(ctx.json, got,
         f"Invitation sent to {got['email']} (valid until {got['expires_at']})."
         if got["kind"] == "invited"
         else f"{got['email']} already has an account and was given access.")


@user.command("delete")
@click.argument("username")
@yes_option
@pass_ctx
def user_delete(ctx: Ctx, username: str, yes: bool) -> None:
    """Delete a user account."""
    confirm(f"Delete the account {username}?", yes=yes)
    ctx.api.delete(f"users/{username}")
    done(ctx.json, {"username": username, "deleted": True}, f"Deleted {username}.")


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
