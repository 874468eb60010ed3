"""Operator commands behind `python -m proxy` (and the `resize-proxy` script).

`upload`, `warm` and `purge` talk to a running service over HTTP, like any
client (base URL from --url, else server.public_url, else the configured
host:port; the token from --token, else an admin's, else the first configured one, else
the service's generated admin token (proxy.credentials); URLs are signed when signing keys
are configured). `gc`, `refs` and `migrate-refs` work on the store directly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import httpx

from proxy import credentials
from proxy.config import Settings
from proxy.signing import sign_url
from proxy.storage import Store

TIMEOUT_S = 120.0


def base_url(settings: Settings, args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    if settings.server.public_url:
        return settings.server.public_url
    return f"http://{settings.server.host}:{settings.server.port}"


def default_token(settings: Settings) -> str:
    """The first admin's token (it may purge), else the first token configured, else the generated one, else none."""
    auth = credentials.known(settings).auth
    names = [*auth.admins, *auth.tokens]
    return auth.tokens[names[0]] if names else ""


def _client(settings: Settings, args: argparse.Namespace) -> httpx.Client:
    token = args.token or default_token(settings)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url(settings, args), headers=headers, timeout=TIMEOUT_S)


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('error')}: {body.get('detail')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


def upload(settings: Settings, args: argparse.Namespace) -> int:
    """Upload each file; print `<id> <url>` per file (errors on stderr, exit 1 if any)."""
    failed = 0
    with _client(settings, args) as client:
        for name in args.files:
            try:
                response = client.post("/img", content=Path(name).read_bytes())
            except (OSError, httpx.HTTPError) as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if response.status_code in (200, 201):
                doc = response.json()
                print(
                    f"{doc['id']} {doc['url']} {doc['ref']}  ({name}, {doc['width']}x{doc['height']}, "
                    f"{'new' if response.status_code == 201 else 'already stored'})"
                )
            else:
                print(f"{name}: {_problem(response)}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def _progress(done: int, total: int, out: TextIO) -> None:
    width = 30
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
    if done == total:
        out.write("\n")
    out.flush()


def warm(settings: Settings, args: argparse.Namespace) -> int:
    """Render every configured preset in each format ahead of time, with a progress bar on stderr."""
    formats = (
        args.formats.split(",")
        if args.formats
        else [f for f in ("avif", "webp", "jpeg") if f in settings.variants.formats]
    )
    keys = settings.security.signing_keys
    paths = [
        f"/img/{image}?p={preset}&fmt={fmt}"
        for image in args.ids
        for preset in sorted(settings.variants.presets)
        for fmt in formats
    ]
    failed = 0
    with _client(settings, args) as client:
        _progress(0, len(paths), sys.stderr)
        for done, path in enumerate(paths, 1):
            response = client.get(sign_url(path, keys[0]) if keys else path)
            if response.status_code != 200:
                print(f"\n{path}: {_problem(response)}", file=sys.stderr)
                failed += 1
            _progress(done, len(paths), sys.stderr)
    print(f"warmed {len(paths) - failed} of {len(paths)} variants for {len(args.ids)} image(s)")
    return 1 if failed else 0


def purge(settings: Settings, args: argparse.Namespace) -> int:
    """Delete images for every holder (`?purge=true`, an admin token): every reference, the original,
    metadata, every stored variant (purge the CDN too)."""
    failed = 0
    with _client(settings, args) as client:
        for image in args.ids:
            response = client.delete(f"/img/{image}", params={"purge": "true"})
            if response.status_code == 204:
                print(f"purged {image}")
            else:
                print(f"{image}: {_problem(response)}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def _on_store(settings: Settings, work: Callable[[Store], Awaitable[int]]) -> int:
    """Run `work` against the configured store, closing it afterwards."""
    from proxy.storage import create_store

    async def run() -> int:
        store = create_store(settings.storage, settings.render_slots)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def gc(settings: Settings, args: argparse.Namespace) -> int:
    """Drop stored variants the current config can no longer produce; report images nobody holds."""
    from proxy.maintenance import collect_garbage

    async def work(store: Store) -> int:
        report = await collect_garbage(settings, store, dry_run=args.dry_run)
        for key in report.dropped:
            print(f"{'would drop' if args.dry_run else 'dropped'} {key}")
        for image in report.unreferenced:
            print(f"unreferenced {image} (kept: no reference holds it; `purge {image}` removes it)")
        for image in report.legacy:
            print(f"legacy {image} (stored before references; see `migrate-refs`)")
        print(
            f"gc: {report.images} image(s), kept {report.kept} variant(s), "
            f"{'would drop' if args.dry_run else 'dropped'} {len(report.dropped)}; "
            f"{len(report.unreferenced)} unreferenced, {len(report.legacy)} legacy image(s)"
        )
        return 0

    return _on_store(settings, work)


def _unknown_owner(settings: Settings, owner: str) -> bool:
    """Whether --owner names no token, said on stderr (references are held by names from auth.tokens)."""
    if owner in settings.auth.tokens:
        return False
    names = ", ".join(sorted(settings.auth.tokens)) or "none configured"
    print(f"--owner {owner!r} is not a name in auth.tokens ({names})", file=sys.stderr)
    return True


def refs(settings: Settings, args: argparse.Namespace) -> int:
    """List references (`<id> <owner> <ref>` per line), all of them or one token's."""
    from proxy.maintenance import all_references

    if args.owner is not None and _unknown_owner(settings, args.owner):
        return 2

    async def work(store: Store) -> int:
        found = [row for row in await all_references(store) if args.owner in (None, row[1])]
        for image, owner, ref in found:
            print(f"{image} {owner} {ref}")
        print(f"{len(found)} reference(s) to {len({row[0] for row in found})} image(s)", file=sys.stderr)
        return 0

    return _on_store(settings, work)


def migrate_refs(settings: Settings, args: argparse.Namespace) -> int:
    """Give every image stored before references one reference held by --owner."""
    from proxy.maintenance import migrate_refs as migrate
    from proxy.references import References, lease_for

    if _unknown_owner(settings, args.owner):
        return 2

    async def work(store: Store) -> int:
        migrated = await migrate(References(store, lease_for(settings.storage)), args.owner, dry_run=args.dry_run)
        for image in migrated:
            print(f"{'would give' if args.dry_run else 'gave'} {args.owner} a reference to {image}")
        print(f"migrate-refs: {len(migrated)} legacy image(s)")
        return 0

    return _on_store(settings, work)


def add_commands(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:  # type: ignore[type-arg]
    """Register the operator commands; returns their parsers (they all take --config)."""
    parsers = []
    for name, fn, text in (
        ("upload", upload, "upload files; prints ids and URLs"),
        ("warm", warm, "render the configured presets ahead of time"),
        ("purge", purge, "delete images for every holder (an admin token)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--url", help="service base URL (default: server.public_url or host:port)")
        sub.add_argument("--token", help="bearer token (default: an admin's from auth.tokens, else the first)")
        sub.set_defaults(handler=fn)
        parsers.append(sub)
    parsers[0].add_argument("files", nargs="+", metavar="FILE")
    parsers[1].add_argument("ids", nargs="+", metavar="ID")
    parsers[1].add_argument("--formats", help="comma-separated (default: avif,webp,jpeg as allowed)")
    parsers[2].add_argument("ids", nargs="+", metavar="ID")
    collect = commands.add_parser("gc", help="drop stored variants no longer allowed by the config")
    collect.add_argument("--dry-run", action="store_true", help="only list what would go")
    collect.set_defaults(handler=gc)
    listing = commands.add_parser("refs", help="list references: <id> <owner> <ref> per line")
    listing.add_argument("--owner", help="only this token name's (default: every reference)")
    listing.set_defaults(handler=refs)
    migrate = commands.add_parser("migrate-refs", help="give images stored before references one reference each")
    migrate.add_argument("--owner", required=True, help="the token name (from auth.tokens) that will hold them")
    migrate.add_argument("--dry-run", action="store_true", help="only list the images")
    migrate.set_defaults(handler=migrate_refs)
    return parsers + [collect, listing, migrate]
