"""The sections about serving: where the service listens and stores, who may write, and its
limits, caches, URL signing, imports, rate limits and logs (see proxy.config)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.configkeys import ConfigError, SectionCheck, http_url, setting, text, trimmed

# ---------------------------------------------------------------------------
# Rules of one key, run on a written value (Key.check); the generic ones are in configkeys.


def _s3_prefix(name: str, value: str) -> str:
    """Empty, or "a/b/" form: the trailing "/" keeps prefix "img" from also matching keys under
    "img2/", and a leading "/" is dropped because S3 would keep it as an empty path segment."""
    prefix = value.strip("/")
    return prefix + "/" if prefix else ""


def _host_names(name: str, hosts: tuple[str, ...]) -> tuple[str, ...]:
    """As URLs carry them: lowercase, IPv6 literals without brackets."""
    return tuple(h.lower().strip("[]") for h in hosts)


def _networks(name: str, networks: tuple[str, ...]) -> tuple[str, ...]:
    for i, net in enumerate(networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"{name}[{i}]: not a network, got {net!r}") from None
    return networks


# ---------------------------------------------------------------------------
# The sections and their keys.


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("127.0.0.1", "bind address (`--host` overrides)")
    port: int = setting(8000, "bind port (`--port` overrides)", minimum=0, maximum=65535)
    workers: int = setting(1, "uvicorn worker processes (`--workers` overrides)", maximum=64)
    public_url: str = setting(
        "", "base of URLs in JSON answers (set it behind a CDN); empty: the request's", check=trimmed
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "addresses/CIDRs of the proxies and CDNs in front, whose "
        "`server.forwarded_header` names the client; empty: the peer is "
        "the client, forwarding headers are ignored",
        check=_networks,
    )
    forwarded_header: str = setting(
        "x-forwarded-for",
        "the header trusted proxies name the client in (the other is ignored)",
        choices=("x-forwarded-for", "forwarded"),
    )


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach an S3-compatible bucket. Credentials are deliberately absent:
    they come from the standard AWS chain (env, shared files, instance role), never from a
    config file that gets copied around and committed."""

    bucket: str = setting("", 'bucket name; required when `storage.backend = "s3"`')
    prefix: str = setting("", "key prefix, normalised to `prefix/`: every key is stored under it", check=_s3_prefix)
    region: str = setting("us-east-1", "region")
    endpoint_url: str = setting("", "any S3-compatible endpoint, `http://` or `https://`; empty: AWS", check=http_url)
    addressing_style: str = setting("auto", "bucket in the host name or the path", choices=("auto", "path", "virtual"))
    connect_timeout_s: float = setting(2.0, "seconds, per attempt")
    read_timeout_s: float = setting(5.0, "seconds, per attempt")
    max_attempts: int = setting(2, "total tries per call, the first included", maximum=10)
    max_pool_connections: int = setting(0, "`0`: `max(10, 2 × render slots + 4)`", minimum=0)


@dataclass(frozen=True)
class StorageSettings:
    backend: str = setting("local", "where originals and variants live (`s3`: see S3 storage)", choices=("local", "s3"))
    path: Path = setting(Path("data"), "local backend: folder for `originals/` and `variants/`")
    s3: S3Settings = S3Settings()


# A name is a folder in the store (refs/<id>/<name>/, see proxy.keys): it starts with a letter or
# digit, so "." and ".." (and the local store's ".tmp-" files) can never be one.
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_TOKEN_LENGTH = 16


def _tokens(name: str, value: Any) -> dict[str, str]:
    """`{ <name> = "<secret>" }`: the name is the identity that owns what the token uploads."""
    if not isinstance(value, dict):
        raise ConfigError(f'{name}: must be a table of named tokens like {{ app = "<secret>" }}')
    seen: dict[str, str] = {}
    for holder, secret in value.items():
        if not _TOKEN_NAME.fullmatch(holder):
            raise ConfigError(
                f"{name}.{holder}: a token name is 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        secret = text(f"{name}.{holder}", secret)
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"{name}.{holder}: must be at least {MIN_TOKEN_LENGTH} characters")
        if secret in seen:
            raise ConfigError(f"{name}.{holder}: the same secret as {name}.{seen[secret]}; each name needs its own")
        seen[secret] = holder
    return dict(value)


def _optional_path(name: str, value: Any) -> Path | None:
    """A path, or "" for none."""
    written = text(name, value)
    return Path(written).expanduser() if written else None


def _removed_upload_tokens(name: str, tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The unnamed token list of earlier versions: a token must now say whose uploads it makes."""
    if tokens:
        raise ConfigError(
            f"{name}: replaced by auth.tokens, a table of named tokens (the name owns what the token "
            'uploads), e.g. auth.tokens = { app = "<the token>" }, and auth.admins = ["app"] for a '
            "token that may purge any image"
        )
    return tokens


@dataclass(frozen=True)
class AuthSettings:
    tokens: Mapping[str, str] = setting(
        {},
        'named bearer tokens `{ <name> = "<secret>" }` (secrets >= 16 chars) '
        "for `POST`/`DELETE`; empty: `serve` generates an admin token "
        "(see `auth.token_file`)",
        parse=_tokens,
    )
    admins: tuple[str, ...] = setting((), "names from `auth.tokens` that may purge any image outright")
    token_file: Path | None = setting(
        None,
        "with no `auth.tokens`: where the generated admin token is kept (mode "
        "0600); empty: `<storage.path>/.admin-token` (local backend; s3 needs "
        "tokens or this)",
        parse=_optional_path,
    )
    upload_tokens: tuple[str, ...] = setting(
        (),
        "removed: a non-empty list stops start-up, saying how to move it to `auth.tokens`",
        check=_removed_upload_tokens,
    )


@dataclass(frozen=True)
class LimitSettings:
    max_upload_bytes: int = setting(25 * 1024 * 1024, "larger bodies get 413 (26214400 = 25 MiB)")
    max_pixels: int = setting(50_000_000, "per image, and for all frames of an animation together")
    max_frames: int = setting(300, "animation frames")
    render_timeout_s: float = setting(20.0, "a render or upload sanitize slower than this answers 503")


@dataclass(frozen=True)
class CacheSettings:
    memory_bytes: int = setting(
        256 * 1024 * 1024, "memory LRU budget in variant bytes (256 MiB); `0` disables", minimum=0
    )
    meta_entries: int = setting(10_000, "image metadata records kept in memory")
    meta_ttl_s: float = setting(60.0, "seconds a metadata record is trusted (another instance's delete shows within)")


@dataclass(frozen=True)
class SecuritySettings:
    """Signed URLs: with keys set, every image request needs a valid signature (`s=`)."""

    signing_keys: tuple[str, ...] = setting(
        (), "HMAC keys; set: every image URL must be signed; the first signs, all verify (rotation)", min_length=32
    )
    max_width: int = setting(4096, "hard cap on `w` for signed URLs, which may leave the allow-list", maximum=65535)
    max_height: int = setting(4096, "hard cap on `h` for signed URLs", maximum=65535)
    max_pixels: int = setting(16_777_216, "hard cap on output pixels for signed URLs")

    @property
    def signing(self) -> bool:
        return bool(self.signing_keys)


@dataclass(frozen=True)
class FetchSettings:
    """Import from a URL (POST /img {"url": ...}): off until hosts are listed."""

    allowed_hosts: tuple[str, ...] = setting(
        (), 'exact host names (or IP literals) `POST /img {"url"}` may fetch from; empty: import off', check=_host_names
    )
    allowed_networks: tuple[str, ...] = setting(
        (), "private/loopback CIDRs allowed as fetch targets (normally none)", check=_networks
    )
    connect_timeout_s: float = setting(3.0, "seconds to connect")
    read_timeout_s: float = setting(10.0, "seconds between bytes")
    total_timeout_s: float = setting(20.0, "seconds for the whole fetch")
    max_redirects: int = setting(3, "followed only to the same host, each re-checked", minimum=0, maximum=10)


@dataclass(frozen=True)
class RateLimitSettings:
    """Token buckets per worker process (README: the rate-limit model). 0 disables a limit. Cached hits are
    never limited."""

    uploads_per_minute: float = setting(
        60.0,
        "uploads and deletes per token; per client address for writes without a valid token; `0` disables",
        minimum=0,
    )
    upload_burst: int = setting(20, "such writes a token (or address) may make at once")
    misses_per_minute: float = setting(
        600.0, "renders of variants in no cache tier yet, per client address; `0` disables", minimum=0
    )
    miss_burst: int = setting(100, "such renders a client may start at once")


@dataclass(frozen=True)
class LoggingSettings:
    access_log: bool = setting(True, "one JSON line per request on stdout")
    level: str = setting("info", "service log level", choices=("debug", "info", "warning", "error"))


# ---------------------------------------------------------------------------
# Rules between keys, run after their section is built.


def _admins_are_tokens(auth: AuthSettings, given: Mapping[str, Any], name: str) -> AuthSettings:
    unknown = [admin for admin in auth.admins if admin not in auth.tokens]
    if unknown:
        raise ConfigError(f"{name}.admins: {unknown[0]!r} is not a name in {name}.tokens")
    return auth


def _bucket_for_s3(storage: StorageSettings, given: Mapping[str, Any], name: str) -> StorageSettings:
    if storage.backend == "s3" and not storage.s3.bucket:
        raise ConfigError(f'{name}.s3.bucket: required when {name}.backend = "s3"')
    return storage


CHECKS: dict[type, SectionCheck] = {StorageSettings: _bucket_for_s3, AuthSettings: _admins_are_tokens}
