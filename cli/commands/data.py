"""``dds data``: put, get, ls and rm (and ``dds ls``, the same as ``dds data ls``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from cli.app import Ctx, DdsGroup, Outcome, confirm, pass_ctx, project_option, yes_option
from cli.commands.project import PROJECT_COLUMNS, show_projects
from cli.errors import Cancelled, Exit, Refused, UsageError
from cli.output import done, emit, err, human, out, plain, print_json, table, when

if TYPE_CHECKING:
    from cli.transfer import Bars, Summary


@click.group(cls=DdsGroup)
def data() -> None:
    """Upload, list, download and remove files."""


def _bars(ctx: Ctx, silent: bool, label: str) -> Callable[[int], Bars]:
    from cli.transfer import Bars  # noqa: PLC0415 - start-up time (cli/app.py)

    return lambda total: Bars(err, total, silent or ctx.json, label)


def _finish(summary: Summary, verb: str, hint: str, ctx: Ctx) -> Outcome:
    """The closing report; PARTIAL when any file failed."""
    if ctx.json:
        print_json({"done": sorted(summary.done), "skipped": dict(summary.skipped),
                    "failed": dict(summary.failed)})
    summary.report(err, verb, hint)
    return Exit.PARTIAL if summary.failed else None


# --------------------------------------------------------------------------- put


def read_source_path_file(name: str | None) -> list[str]:
    """The paths a ``--source-path-file`` lists: one per line, surrounding spaces removed;
    blank lines and lines starting with ``#`` are skipped. A file that cannot be read is a
    usage error."""
    if not name:
        return []
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"cannot read the source path file {name}: {reason}") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


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
def data_put(ctx: Ctx, project: str, sources: tuple[str, ...], source_path_file: str | None,
             destination: str, overwrite: bool, num_threads: int, break_on_fail: bool,
             already_encrypted: bool, silent: bool) -> Outcome:
    """Encrypt and upload files (resumes an interrupted put of the same files)."""
    from cli.put import collect_sources, run_put  # noqa: PLC0415 - start-up time (cli/app.py)
    from cli.transfer import Summary  # noqa: PLC0415 - start-up time (cli/app.py)

    paths = list(sources) + read_source_path_file(source_path_file)
    if not paths:
        raise UsageError("Nothing to upload: give --source or --source-path-file.")
    summary = Summary()
    found = collect_sources(paths, destination, summary, encrypted=already_encrypted)
    try:
        run_put(ctx.api, project, found, overwrite=overwrite, threads=num_threads,
                bars_factory=_bars(ctx, silent, "Uploading"), summary=summary,
                break_on_fail=break_on_fail,
                notify=lambda m: err.print(m, markup=False))
    except Cancelled:
        summary.report(err, "uploaded", "run the same command again: it resumes")
        raise Cancelled("Run the same command again to resume.") from None
    return _finish(summary, "uploaded", "run the same command again (stored files are "
                   "skipped, unfinished ones resume)", ctx)


# --------------------------------------------------------------------------- get


@data.command("get")
@project_option
@click.option("-s", "--source", "sources", multiple=True, help="File or folder to download.")
@click.option("-spf", "--source-path-file", type=click.Path(dir_okay=False),
              help="File listing project paths to download, one per line (# comments).")
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
def data_get(ctx: Ctx, project: str, sources: tuple[str, ...],
             source_path_file: str | None, get_all: bool, destination: str | None,
             num_threads: int, break_on_fail: bool, keep_encrypted: bool,
             recipient_pk: str | None, silent: bool) -> Outcome:
    """Download and decrypt files (verified by SHA-256 before they appear)."""
    import c4gh  # noqa: PLC0415 - start-up time (cli/app.py)
    from cli.get import Downloader, local_keypair  # noqa: PLC0415 - start-up time (cli/app.py)
    from cli.transfer import Summary  # noqa: PLC0415 - start-up time (cli/app.py)

    wanted = list(sources) + read_source_path_file(source_path_file)
    if source_path_file and not wanted and not get_all:
        raise UsageError(f"{source_path_file} lists no path to download.")
    if bool(wanted) == get_all:
        raise UsageError("Give either --source / --source-path-file (one or more paths) "
                         "or --get-all.")
    if recipient_pk and not keep_encrypted:
        raise UsageError("--recipient-pk only makes sense with --keep-encrypted.")
    pk = None
    sec = None
    if keep_encrypted:
        if recipient_pk:
            try:
                pk = c4gh.load_public_key(Path(recipient_pk).read_bytes())
            except (OSError, c4gh.C4GHError, ValueError) as exc:
                raise UsageError(f"{recipient_pk} is not a Crypt4GH public key file: "
                                 f"{exc}") from None
        else:
            sec, pk = local_keypair()
            err.print(f"Files will be encrypted to your key; decrypt with "
                      f"`crypt4gh decrypt --sk {sec} < NAME.c4gh > NAME` (files named "
                      f"NAME.zst.c4gh hold zstd data: `... | zstd -d > NAME`).",
                      markup=False)
    dest = Path(destination or f"DDS_{project}_{dt.date.today():%Y-%m-%d}")  # noqa: DTZ011 - the user's local date names the folder
    summary = Summary()
    down = Downloader(ctx.api, project, dest, threads=num_threads,
                      bars_factory=_bars(ctx, silent, "Downloading"), summary=summary,
                      break_on_fail=break_on_fail, keep_encrypted=keep_encrypted,
                      recipient_pk=pk)
    items = down.resolve(None if get_all else wanted)
    try:
        down.run(items)
    except Cancelled:
        summary.report(err, "downloaded", "run the same command again: it resumes")
        raise Cancelled("Run the same command again to resume.") from None
    if not ctx.json:
        err.print(f"Destination: {dest}")
        finished = set(summary.done)
        zst = [it for it in items if keep_encrypted and it.compressed and it.path in finished]
        if zst:
            key = "the matching secret key" if recipient_pk else str(sec)
            err.print(f"{len(zst)} file(s) were stored zstd-compressed (NAME.zst.c4gh): "
                      f"decrypt, then decompress: `crypt4gh decrypt --sk {key} < "
                      "NAME.zst.c4gh | zstd -d > NAME`.", markup=False)
    return _finish(summary, "downloaded", "run the same command again (finished files are "
                   "skipped, partial ones resume)", ctx)


# --------------------------------------------------------------------------- ls


def _list_folder(ctx: Ctx, project: str, folder: str) -> dict[str, Any]:
    folders: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = ctx.api.get(f"projects/{project}/files",
                           params={"folder": folder, "offset": offset, "limit": 1000})
        folders += page["folders"] if offset == 0 else []
        files += page["files"]
        if page.get("next_offset") is None:
            return {"folder": page["folder"], "folders": folders, "files": files}
        offset = page["next_offset"]


def _tree(ctx: Ctx, project: str, folder: str) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    after = ""
    while True:
        page = ctx.api.get(f"projects/{project}/files/tree",
                           params={"folder": folder, "after": after, "limit": 10000})
        files += page["files"]
        if not page.get("next"):
            return files
        after = page["next"]


def _show_tree(project: str, folder: str, size: bool) -> Callable[[list[dict[str, Any]]], None]:
    def render(rows: list[dict[str, Any]]) -> None:
        root = Tree(f"[bold]{project}[/]/{folder}")
        nodes = {"": root}
        for f in rows:
            rel = f["path"][len(folder):].lstrip("/") if folder else f["path"]
            parts = rel.split("/")
            for i in range(1, len(parts)):
                key = "/".join(parts[:i])
                if key not in nodes:
                    nodes[key] = nodes["/".join(parts[:i - 1])].add(f"[blue]{parts[i - 1]}/")
            label = parts[-1] + (f"  ({human(f['size_original'])})" if size else "")
            nodes["/".join(parts[:-1])].add(label, highlight=False)
        out.print(root)

    return render


#: After a file that storage lost (``storage_reconcile`` flags it; downloads refuse it).
_LOST = " (lost)"


def _show_listing(size: bool) -> Callable[[dict[str, Any]], None]:
    def render(d: dict[str, Any]) -> None:
        if not out.is_terminal:
            rows = ([[f"{f['name']}/", human(f["size_original"])] for f in d["folders"]]
                    + [[f["name"] + _LOST * bool(f.get("lost")), human(f["size_original"])]
                       for f in d["files"]])
            plain(([["Name", "Size"], *rows]) if size else [row[:1] for row in rows])
            return
        t = Table(show_header=size, box=None)
        t.add_column("Name")
        if size:
            t.add_column("Size", justify="right")
        for f in d["folders"]:
            t.add_row(f"[blue]{escape(f['name'])}/[/]",
                      *([human(f["size_original"])] if size else []))
        for f in d["files"]:
            name = escape(f["name"]) + (f"[red]{_LOST}[/]" if f.get("lost") else "")
            t.add_row(name, *([human(f["size_original"])] if size else []))
        out.print(t)

    return render


#: ``dds ls --sort KEY``: the key in GET /projects' rows, for each choice.
SORT_KEYS = {"id": "id", "title": "title", "pi": "pi", "unit": "unit", "status": "status",
             "deadline": "deadline", "role": "role", "files": "files", "size": "size_bytes",
             "created": "created_at"}
#: Members are fetched per project (GET /projects/ID/members), this many at once.
MEMBER_FETCHES = 8


def _sorted_projects(rows: list[dict[str, Any]], key: str, reverse: bool
                     ) -> list[dict[str, Any]]:
    """Rows by one column; projects without a value (no deadline...) last either way."""
    field = SORT_KEYS[key]

    def value(row: dict[str, Any]) -> Any:
        v = row.get(field)
        return v.casefold() if isinstance(v, str) else v

    present = [r for r in rows if r.get(field) is not None]
    missing = [r for r in rows if r.get(field) is None]
    return sorted(present, key=value, reverse=reverse) + missing


def _with_members(ctx: Ctx, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each project with ``users``: its members (username, name, email, owner), or None
    when the server would not list them to you."""
    api = ctx.api

    def members(row: dict[str, Any]) -> list[dict[str, Any]] | None:
        try:
            got: list[dict[str, Any]] = api.get(f"projects/{row['id']}/members")["members"]
        except Refused:
            return None
        return got

    with ThreadPoolExecutor(max_workers=MEMBER_FETCHES) as pool:
        found = list(pool.map(members, rows))
    return [{**row, "users": users} for row, users in zip(rows, found, strict=True)]


def _users_cell(users: list[dict[str, Any]] | None) -> str | None:
    if users is None:
        return None
    return ", ".join(u["username"] + (" (owner)" if u.get("owner") else "")
                     for u in users) or "none"


def _show_projects_with_users(rows: list[dict[str, Any]]) -> None:
    table([{**r, "size": human(r.get("size_bytes", 0)),
            "deadline": when(r.get("deadline")) if r.get("deadline") else None,
            "users": _users_cell(r.get("users"))} for r in rows],
          [*PROJECT_COLUMNS, ("users", "Users")])


@data.command("ls")
@click.option("-p", "--project", help="Project ID (none: list your projects).")
@click.argument("folder", default="")
@click.option("--tree", is_flag=True, help="Every file under the folder, as a tree.")
@click.option("--size", is_flag=True, help="Show sizes.")
@click.option("--sort", "sort_key", type=click.Choice(list(SORT_KEYS)),
              help="Your projects (no -p): sort by this column.")
@click.option("--reverse", is_flag=True, help="With --sort: descending.")
@click.option("--users", is_flag=True,
              help="Your projects (no -p): add each project's members (owners marked).")
@pass_ctx
def data_ls(ctx: Ctx, project: str | None, folder: str, tree: bool, size: bool,
            sort_key: str | None, reverse: bool, users: bool) -> None:
    """List a project's files (or your projects)."""
    if project is None:
        rows: list[dict[str, Any]] = ctx.api.get("projects")
        if sort_key:
            rows = _sorted_projects(rows, sort_key, reverse)
        elif reverse:
            rows = rows[::-1]
        if users:
            rows = _with_members(ctx, rows)
        emit(ctx.json, rows, _show_projects_with_users if users else show_projects)
        return
    if sort_key or reverse or users:
        raise UsageError("--sort, --reverse and --users list your projects: use them "
                         "without -p.")
    folder = folder.strip("/")
    if tree:
        emit(ctx.json, _tree(ctx, project, folder), _show_tree(project, folder, size))
    else:
        emit(ctx.json, _list_folder(ctx, project, folder), _show_listing(size))


# --------------------------------------------------------------------------- rm


@data.command("rm")
@project_option
@click.argument("paths", nargs=-1)
@click.option("--folder", help="Remove this folder and everything under it.")
@click.option("--all", "remove_all", is_flag=True, help="Remove every file of the project.")
@yes_option
@pass_ctx
def data_rm(ctx: Ctx, project: str, paths: tuple[str, ...], folder: str | None,
            remove_all: bool, yes: bool) -> Outcome:
    """Remove files, a folder, or everything (files named one by one are removed without
    asking, as rm does)."""
    if sum(bool(x) for x in (paths, folder, remove_all)) != 1:
        raise UsageError("Give file paths, --folder or --all (one of them).")
    if remove_all or folder:
        what = "every file" if remove_all else f"the folder {folder}"
        confirm(f"Remove {what} from {project}?", yes=yes)
        got = ctx.api.post(f"projects/{project}/files/remove-folder",
                           {"folder": "" if remove_all else folder})
        queued = " (continuing in the background)" if got.get("queued") else ""
        done(ctx.json, got, f"Removing {got['files']} file(s){queued}.")
        return None
    got = ctx.api.post(f"projects/{project}/files/remove", {"paths": list(paths)})
    if ctx.json:
        print_json(got)
    else:
        for p in got["removed"]:
            err.print(f"removed {p}", markup=False)
        for p in got["not_found"]:
            err.print(f"[red]not found[/] {p}")
    return Exit.PARTIAL if got["not_found"] else None
