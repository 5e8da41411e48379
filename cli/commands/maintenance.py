"""``dds maintenance``: Maintenance mode (Super Admin)."""

from __future__ import annotations

import click

from cli.app import DdsGroup


@click.group(cls=DdsGroup)
def maintenance() -> None:
    """Maintenance mode (Super Admin)."""
