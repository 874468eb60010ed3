"""Command line: `python -m proxy serve|check-config|config-reference|sign|upload|warm|purge|gc`
(also `resize-proxy`)."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from proxy import cli, credentials
from proxy.config import CONFIG_ENV, METRICS_ENV, ConfigError, Settings, load_settings
from proxy.configkeys import nested_tables, reference


def _announce_token(settings: Settings, base: str) -> None:
    """Make the generated admin token before any worker starts, and say where it is; the
    secret itself is shown once, when it is made (README: Quick start)."""
    path = credentials.required_path(settings)
    if path is None:
        return
    running, created = credentials.ensure(settings)
    if created:
        secret = running.auth.tokens[credentials.ADMIN]
        print(
            f"resize-proxy: uploads and deletes need a token; generated one, shown only now and kept in {path}:\n"
            f"    {secret}\n"
            f'    curl -H "Authorization: Bearer $(cat {path})" --data-binary @photo.jpg {base}/img',
            file=sys.stderr,
            flush=True,
        )
    else:
        print(f"resize-proxy: uploads and deletes need the admin token kept in {path}", file=sys.stderr, flush=True)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    _announce_token(settings, settings.server.public_url or f"http://{host}:{port}")
    # Before anything imports prometheus_client: a fresh folder shared by every worker.
    metrics_dir = tempfile.mkdtemp(prefix="resize-proxy-metrics-")
    atexit.register(shutil.rmtree, metrics_dir, True)
    os.environ[METRICS_ENV] = metrics_dir
    os.environ[CONFIG_ENV] = str(Path(args.config).resolve())  # inherited by every worker
    import uvicorn

    uvicorn.run(
        "proxy.asgi:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=args.workers or settings.server.workers,
        server_header=False,
        access_log=False,
        proxy_headers=False,  # proxy.http.clients reads forwarding headers, from server.trusted_proxies only
        timeout_graceful_shutdown=30,
    )
    return 0


def _check(settings: Settings, args: argparse.Namespace) -> int:
    token_file = credentials.required_path(settings)
    print(f"config ok: {Path(args.config).resolve()}")
    st = settings.storage
    if st.backend == "s3":
        where = f"bucket {st.s3.bucket!r}, prefix {st.s3.prefix!r}, endpoint {st.s3.endpoint_url or 'AWS'}"
    else:
        where = str(st.path)
    print(f"  storage: {st.backend} at {where}")
    named = "tokens of " + ", ".join(settings.auth.tokens)
    print(f"  writes: {f'the generated admin token in {token_file}' if token_file else named}")
    print(f"  trusted proxies: {', '.join(settings.server.trusted_proxies) or 'none (the peer is the client)'}")
    print(f"  widths: {', '.join(map(str, settings.variants.widths))}")
    print(f"  formats: {', '.join(settings.variants.formats)}; presets: {', '.join(sorted(settings.variants.presets))}")
    return 0


def _sign(settings: Settings, args: argparse.Namespace) -> int:
    from proxy.signing import sign_url

    key = args.key or (settings.security.signing_keys[0] if settings.security.signing_keys else "")
    if not key:
        print("no key: pass --key or set security.signing_keys in the config", file=sys.stderr)
        return 2
    for url in args.urls:
        print(sign_url(url, key))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resize-proxy", description="On-demand resizing image origin.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service (uvicorn)")
    serve.add_argument("--host", help="address to bind (default: server.host)")
    serve.add_argument("--port", type=int, help="port to bind (default: server.port)")
    serve.add_argument("--workers", type=int, help="worker processes (default: server.workers)")
    check = commands.add_parser("check-config", help="validate the config and print a summary")
    keys = commands.add_parser("config-reference", help="print the Markdown table of config keys (as in README.md)")
    keys.add_argument(
        "table",
        nargs="?",
        choices=nested_tables(Settings),
        help="a nested table's keys only (default: the keys directly in the sections)",
    )
    sign = commands.add_parser("sign", help="print signed versions of image URLs (security.signing_keys)")
    sign.add_argument("urls", nargs="+", metavar="URL", help="e.g. https://img.example.com/img/<id>?w=400")
    sign.add_argument("--key", help="signing key (default: the first of security.signing_keys)")
    serve.set_defaults(handler=_serve)
    check.set_defaults(handler=_check)
    sign.set_defaults(handler=_sign)
    for sub in (serve, check, sign, *cli.add_commands(commands)):
        sub.add_argument("--config", default="config.toml", help="path to config.toml (default: ./config.toml)")
    args = parser.parse_args(argv)
    if args.command == "config-reference":  # describes the declarations: reads no config
        print(reference(Settings, args.table), end="")
        return 0
    try:
        return int(args.handler(load_settings(Path(args.config), os.environ), args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
