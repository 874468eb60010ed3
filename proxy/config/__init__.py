"""Typed settings: read config.toml once at start-up, apply env overrides, validate.

Everything else in the package receives a frozen `Settings` and never reads the
environment or the file again. A bad value stops start-up with a `ConfigError` that
names the offending key (``limits.max_pixels: must be >= 1, got -5``), so an operator
fixes the right line instead of chasing a stack trace.

Each key is declared once, as a field: ``setting(default, doc, bounds...)``, in the section
modules (config.serving: listening, storage, auth, limits, caches, security; config.imaging:
rendering, variants, encoders, focus, sanitizing); proxy/configkeys.py derives the parsing,
defaults, error names and the README's table of keys from that. Rules between keys are each
section module's CHECKS. Environment overrides address one key each:
``PROXY_<SECTION>__<KEY>``, e.g. ``PROXY_LIMITS__MAX_UPLOAD_BYTES=1048576``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.config import imaging, serving
from proxy.config.imaging import (
    DEFAULT_PRESETS,
    FITS,
    EncoderSettings,
    FocusSettings,
    Preset,
    RenderSettings,
    SanitizeSettings,
    VariantSettings,
)
from proxy.config.serving import (
    MIN_TOKEN_LENGTH,
    AuthSettings,
    CacheSettings,
    FetchSettings,
    LimitSettings,
    LoggingSettings,
    RateLimitSettings,
    S3Settings,
    SecuritySettings,
    ServerSettings,
    StorageSettings,
)
from proxy.configkeys import ConfigError, build, overlay_env

__all__ = [
    "AuthSettings",
    "CacheSettings",
    "ConfigError",
    "DEFAULT_PRESETS",
    "EncoderSettings",
    "FITS",
    "FetchSettings",
    "FocusSettings",
    "LimitSettings",
    "LoggingSettings",
    "MIN_TOKEN_LENGTH",
    "Preset",
    "RateLimitSettings",
    "RenderSettings",
    "S3Settings",
    "SanitizeSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "VariantSettings",
    "CONFIG_ENV",
    "ENV_PREFIX",
    "METRICS_ENV",
    "load_settings",
    "parse_settings",
]

ENV_PREFIX = "PROXY_"
CONFIG_ENV = "PROXY_CONFIG"  # set by `serve` for its workers: which config to load
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client itself in every worker


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    render: RenderSettings = RenderSettings()
    cache: CacheSettings = CacheSettings()
    variants: VariantSettings = VariantSettings()
    encoders: EncoderSettings = EncoderSettings()
    focus: FocusSettings = FocusSettings()
    sanitize: SanitizeSettings = SanitizeSettings()
    security: SecuritySettings = SecuritySettings()
    fetch: FetchSettings = FetchSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def render_slots(self) -> int:
        """Concurrent renders allowed: the configured number, or one per core."""
        return self.render.max_concurrent or (os.cpu_count() or 1)


_SECTION_CHECKS = serving.CHECKS | imaging.CHECKS  # the rules between keys, per section


# ---------------------------------------------------------------------------
# Loading.


def parse_settings(raw: dict[str, Any], base_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a raw TOML mapping (plus env overrides) into frozen `Settings`."""
    overlay_env(Settings, raw, environ or {}, ENV_PREFIX)
    return build(Settings, raw, "", base_dir, _SECTION_CHECKS)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (TOML) and return validated settings; relative paths resolve next to it."""
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_settings(raw, path.parent, environ)
