"""``dds stats``: Statistics of the whole system (Super Admin)."""

from __future__ import annotations

import click

from cli.app import DdsGroup


@click.group(cls=DdsGroup)
def stats() -> None:
    """Statistics of the whole system (Super Admin)."""
