"""The admin token a service without `auth.tokens` generates at its first start.

Every write needs a bearer token, on every deployment (README: Security): an exception
for loopback clients was open to the whole internet as soon as a reverse proxy on the
same host forwarded requests, since every client then arrives from 127.0.0.1. A proxy can
make any client look local; it cannot make one know a secret. So that the first upload on
a new machine stays one step rather than a config edit, a service started without tokens
makes a random one once (like Jupyter), keeps it in a file only its own user may read
(mode 0600, `<storage.path>/.admin-token` unless `auth.token_file` names another place),
and `serve` prints it when it makes it. Later starts, every worker and the CLI read the same
file, so the token outlives restarts and `python -m proxy upload` finds it by itself. It
acts as the admin named `admin`. Configured `auth.tokens` replace it; the file is then ignored.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from proxy.config import MIN_TOKEN_LENGTH, Settings
from proxy.configkeys import ConfigError

ADMIN = "admin"  # the identity the generated token acts as
FILE_NAME = ".admin-token"
PRIVATE = 0o600


def token_path(settings: Settings) -> Path | None:
    """Where the generated token is kept: None with `auth.tokens` configured (there is none), and on
    S3 without `auth.token_file` (there is no folder of ours to keep it in)."""
    auth = settings.auth
    if auth.tokens:
        return None
    if auth.token_file is not None:
        return auth.token_file
    return settings.storage.path / FILE_NAME if settings.storage.backend == "local" else None


def required_path(settings: Settings) -> Path | None:
    """`token_path`, refusing a service that has no tokens and no place to keep a generated one."""
    path = token_path(settings)
    if path is None and not settings.auth.tokens:
        raise ConfigError(
            'auth.tokens: required with storage.backend = "s3" (writes always need a token), or '
            "set auth.token_file to keep a generated admin token on this machine"
        )
    return path


def read_token(path: Path) -> str | None:
    """The token kept in `path`, None while there is no file; a file others may read is refused."""
    try:
        mode = path.stat().st_mode
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the admin token: {exc}") from None
    if mode & 0o077:
        raise ConfigError(f"{path}: the admin token file is open to other users (mode {mode & 0o777:o}); chmod 600 it")
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{path}: holds no admin token; delete it to have a new one generated")
    return secret


def _create(path: Path) -> str | None:
    """Make a token in `path`; None if another process made one first.

    Written whole into a private file of its own, then linked to the final name: a link never
    replaces an existing name, so workers starting at once agree on one token, and no reader
    ever sees half of one.
    """
    secret = secrets.token_urlsafe(32)
    draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(draft, path)
    except FileExistsError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write the admin token: {exc} (set auth.tokens, or auth.token_file to a writable place)"
        ) from None
    finally:
        draft.unlink(missing_ok=True)
    return secret


def with_admin(settings: Settings, secret: str) -> Settings:
    """`settings` whose only token is `secret`, held by the admin `admin`."""
    auth = dataclasses.replace(settings.auth, tokens={ADMIN: secret}, admins=(ADMIN,))
    return dataclasses.replace(settings, auth=auth)


def ensure(settings: Settings) -> tuple[Settings, bool]:
    """The settings a service runs with: as configured when tokens are, else with the generated token,
    made now if there is none yet. Returns (settings, whether the token was made by this call)."""
    path = required_path(settings)
    if path is None:
        return settings, False
    secret = read_token(path)
    if secret is not None:
        return with_admin(settings, secret), False
    made = _create(path)
    secret = made if made is not None else read_token(path)  # None made: another worker linked one first
    if secret is None:
        raise ConfigError(f"{path}: the admin token was removed while the service started")
    return with_admin(settings, secret), made is not None


def known(settings: Settings) -> Settings:
    """For clients of a service (the CLI): its generated token when one was made, else `settings`."""
    path = token_path(settings)
    secret = read_token(path) if path is not None else None
    return with_admin(settings, secret) if secret is not None else settings
