"""``dds motd``: Messages of the day (Super Admin adds and sends; everyone sees them)."""

from __future__ import annotations

import click

from cli.app import DdsGroup


@click.group(cls=DdsGroup)
def motd() -> None:
    """Messages of the day (Super Admin adds and sends; everyone sees them)."""
