"""The `dds` command: the root group and its command groups (``cli.commands``).

Data (tables, JSON) goes to stdout; progress, messages and the failure summary go to
stderr, so ``--json`` output pipes cleanly (``cli.output``). Every outcome has its exit
status (``cli.errors.Exit``, chosen in ``cli.app``).
"""

from __future__ import annotations

import click

from cli.app import DdsGroup
from cli.commands.auth import auth
from cli.commands.data import data, data_ls
from cli.commands.maintenance import maintenance
from cli.commands.motd import motd
from cli.commands.project import project
from cli.commands.stats import stats
from cli.commands.unit import unit
from cli.commands.user import user
from cli.version import __version__


@click.group(cls=DdsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dds")
def cli() -> None:
    """DDS: deliver research data, encrypted end to end."""


for _group in (auth, user, unit, project, data, motd, maintenance, stats):
    cli.add_command(_group)
# `dds ls` is a shortcut for `dds data ls` (your projects without -p).
cli.add_command(data_ls, "ls")


def main() -> None:
    cli.main(prog_name="dds")


if __name__ == "__main__":
    main()
