"""Typed settings: read config.toml once at start-up, apply env overrides, validate.

Everything else in the package receives a frozen `Settings` and never reads the
environment or the file again. A bad value stops start-up with a `ConfigError`
that names the offending key (``limits.max_pixels: must be a positive integer``),
so an operator fixes the right line instead of chasing a stack trace.

Environment overrides address one key each: ``PROXY_<SECTION>__<KEY>``, e.g.
``PROXY_LIMITS__MAX_UPLOAD_BYTES=1048576`` or ``PROXY_AUTH__UPLOAD_TOKENS='["a","b"]'``.
The value is parsed as a TOML value when it is one, otherwise taken as a string.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from proxy.formats import INPUT_FORMATS, OUTPUT_FORMATS

ENV_PREFIX = "PROXY_"
CONFIG_ENV = "PROXY_CONFIG"  # set by `serve` for its workers: which config to load
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client itself in every worker
FITS = ("inside", "cover")
# The presets a config without [variants.presets] gets (the shipped config.toml lists the same).
DEFAULT_PRESETS: dict[str, dict[str, Any]] = {
    "thumb": {"w": 160, "h": 160, "fit": "cover"},
    "small": {"w": 320},
    "medium": {"w": 800},
    "large": {"w": 1600},
}


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str = ""  # base for URLs in JSON answers; empty: taken from the request


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach an S3-compatible bucket. Credentials are deliberately absent:
    they come from the standard AWS chain (env, shared files, instance role), never from a
    config file that gets copied around and committed."""

    bucket: str = ""
    prefix: str = ""  # "" or ends with "/": every key is stored under it
    region: str = "us-east-1"
    endpoint_url: str = ""  # empty: AWS itself; else e.g. "http://minio:9000"
    addressing_style: str = "auto"  # auto | path | virtual
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    max_attempts: int = 2  # total tries per call, the first included
    max_pool_connections: int = 0  # 0: derived from the render concurrency


@dataclass(frozen=True)
class StorageSettings:
    backend: str = "local"
    path: Path = Path("data")
    s3: S3Settings = S3Settings()


@dataclass(frozen=True)
class AuthSettings:
    upload_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitSettings:
    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_frames: int = 300
    render_timeout_s: float = 20.0


@dataclass(frozen=True)
class RenderSettings:
    max_concurrent: int = 0  # 0: one per CPU core
    max_queue: int = 64
    background: tuple[int, int, int] = (255, 255, 255)
    animation: bool = True  # animated originals give animated WebP/GIF variants
    max_animation_frames: int = 150  # more frames than this: first frame only
    working_sizes: tuple[int, ...] = (480, 800, 1280)  # long sides of the working copies made at upload
    large_image_pixels: int = 16_000_000  # decodes above this run one at a time per worker (memory bound)


@dataclass(frozen=True)
class CacheSettings:
    memory_bytes: int = 256 * 1024 * 1024
    meta_entries: int = 10_000
    meta_ttl_s: float = 60.0  # how long another instance's delete may go unnoticed here


@dataclass(frozen=True)
class Preset:
    w: int | None = None
    h: int | None = None
    fit: str = "inside"
    fmt: str | None = None
    q: int | None = None


@dataclass(frozen=True)
class VariantSettings:
    widths: tuple[int, ...] = (64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720,
                               800, 960, 1080, 1200, 1280, 1440, 1600, 1920, 2048)
    heights: tuple[int, ...] = (64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720,
                                800, 960, 1080, 1200, 1280, 1440, 1600, 1920, 2048)
    dprs: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    qualities: tuple[int, ...] = (40, 50, 60, 70, 75, 80, 85, 90)
    formats: tuple[str, ...] = OUTPUT_FORMATS
    presets: Mapping[str, Preset] = field(default_factory=dict)


@dataclass(frozen=True)
class EncoderSettings:
    """Default quality and speed knobs per output format (see README: encoder settings)."""

    jpeg_quality: int = 80
    webp_quality: int = 80
    webp_method: int = 2  # measured: 2.4x faster than 4 for files 0.5% larger
    avif_quality: int = 60
    avif_speed: int = 9  # measured: 2.5x faster than 8 for files 1% larger
    png_compress_level: int = 6


@dataclass(frozen=True)
class SanitizeSettings:
    formats: tuple[str, ...] = INPUT_FORMATS
    jpeg_quality: int = 95
    webp_quality: int = 95
    avif_quality: int = 90


@dataclass(frozen=True)
class SecuritySettings:
    """Signed URLs: with keys set, every image request needs a valid signature (`s=`)."""

    signing_keys: tuple[str, ...] = ()  # the first signs; all verify (rotation)
    max_width: int = 4096  # hard caps for signed requests, which may leave the allow-list
    max_height: int = 4096
    max_pixels: int = 16_777_216

    @property
    def signing(self) -> bool:
        return bool(self.signing_keys)


@dataclass(frozen=True)
class FetchSettings:
    """Import from a URL (POST /img {"url": ...}): off until hosts are listed."""

    allowed_hosts: tuple[str, ...] = ()  # exact host names (or IP literals) that may be fetched
    allowed_networks: tuple[str, ...] = ()  # private/loopback CIDRs explicitly allowed (default: none)
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 20.0
    max_redirects: int = 3  # followed only to the same host, each re-checked


@dataclass(frozen=True)
class RateLimitSettings:
    """Per-client token buckets (per worker process). 0 disables a limit. Cached hits are never limited."""

    uploads_per_minute: float = 60.0
    upload_burst: int = 20
    misses_per_minute: float = 600.0  # renders of variants not yet in any cache tier
    miss_burst: int = 100


@dataclass(frozen=True)
class LoggingSettings:
    access_log: bool = True  # one JSON line per request on stdout
    level: str = "info"


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
    sanitize: SanitizeSettings = SanitizeSettings()
    security: SecuritySettings = SecuritySettings()
    fetch: FetchSettings = FetchSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def render_slots(self) -> int:
        """Concurrent renders allowed: the configured number, or one per core."""
        return self.render.max_concurrent or (os.cpu_count() or 1)


# ---------------------------------------------------------------------------
# Parsing helpers: each takes the dotted key so its error can name it.


def _int(key: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{key}: must be {bound}, got {value}")
    return value


def _float(key: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    if not math.isfinite(value) or value <= minimum:
        raise ConfigError(f"{key}: must be > {minimum}, got {value}")
    return float(value)


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a string, got {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    value = _str(key, value).lower()
    if value not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def _list(key: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: must be a non-empty list, got {value!r}")
    return value


def _sorted_ints(key: str, value: Any, maximum: int | None = None) -> tuple[int, ...]:
    items = [_int(f"{key}[{i}]", v, maximum=maximum) for i, v in enumerate(_list(key, value))]
    return tuple(sorted(set(items)))


def _colour(key: str, value: Any) -> tuple[int, int, int]:
    text = _str(key, value).lstrip("#")
    if len(text) != 6:
        raise ConfigError(f"{key}: must be a colour like '#ffffff', got {value!r}")
    try:
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    except ValueError:
        raise ConfigError(f"{key}: must be a colour like '#ffffff', got {value!r}") from None


def _section(raw: Mapping[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    section = raw.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: must be a table")
    for key in section:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
    return section


# ---------------------------------------------------------------------------
# Section builders.


def _server(raw: Mapping[str, Any]) -> ServerSettings:
    s = _section(raw, "server", {"host", "port", "workers", "public_url"})
    d = ServerSettings()
    return ServerSettings(
        host=_str("server.host", s.get("host", d.host)),
        port=_int("server.port", s.get("port", d.port), minimum=0, maximum=65535),
        workers=_int("server.workers", s.get("workers", d.workers), maximum=64),
        public_url=_str("server.public_url", s.get("public_url", d.public_url)).rstrip("/"),
    )


def _s3_prefix(value: Any) -> str:
    """Empty, or "a/b/" form: the trailing "/" keeps prefix "img" from also matching keys under
    "img2/", and a leading "/" is dropped because S3 would keep it as an empty path segment."""
    prefix = _str("storage.s3.prefix", value).strip("/")
    return prefix + "/" if prefix else ""


def _s3(storage: Mapping[str, Any], required: bool) -> S3Settings:
    # Keyed by its dotted name so _section's messages read "storage.s3.<key>".
    s = _section({"storage.s3": storage.get("s3", {})}, "storage.s3",
                 {"bucket", "prefix", "region", "endpoint_url", "addressing_style", "connect_timeout_s",
                  "read_timeout_s", "max_attempts", "max_pool_connections"})
    d = S3Settings()
    bucket = _str("storage.s3.bucket", s.get("bucket", d.bucket))
    if required and not bucket:
        raise ConfigError('storage.s3.bucket: required when storage.backend = "s3"')
    endpoint_url = _str("storage.s3.endpoint_url", s.get("endpoint_url", d.endpoint_url)).rstrip("/")
    if endpoint_url and not endpoint_url.startswith(("http://", "https://")):
        raise ConfigError(f"storage.s3.endpoint_url: must start with http:// or https://, got {endpoint_url!r}")
    return S3Settings(
        bucket=bucket,
        prefix=_s3_prefix(s.get("prefix", d.prefix)),
        region=_str("storage.s3.region", s.get("region", d.region)),
        endpoint_url=endpoint_url,
        addressing_style=_choice("storage.s3.addressing_style", s.get("addressing_style", d.addressing_style),
                                 ("auto", "path", "virtual")),
        connect_timeout_s=_float("storage.s3.connect_timeout_s", s.get("connect_timeout_s", d.connect_timeout_s)),
        read_timeout_s=_float("storage.s3.read_timeout_s", s.get("read_timeout_s", d.read_timeout_s)),
        max_attempts=_int("storage.s3.max_attempts", s.get("max_attempts", d.max_attempts), maximum=10),
        max_pool_connections=_int("storage.s3.max_pool_connections",
                                  s.get("max_pool_connections", d.max_pool_connections), minimum=0),
    )


def _storage(raw: Mapping[str, Any], base_dir: Path) -> StorageSettings:
    s = _section(raw, "storage", {"backend", "path", "s3"})
    backend = _choice("storage.backend", s.get("backend", "local"), ("local", "s3"))
    path = Path(_str("storage.path", s.get("path", "data"))).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return StorageSettings(backend=backend, path=path, s3=_s3(s, required=backend == "s3"))


def _auth(raw: Mapping[str, Any]) -> AuthSettings:
    s = _section(raw, "auth", {"upload_tokens"})
    return AuthSettings(upload_tokens=_strings("auth.upload_tokens", s.get("upload_tokens", []), min_length=16))


def _limits(raw: Mapping[str, Any]) -> LimitSettings:
    s = _section(raw, "limits", {"max_upload_bytes", "max_pixels", "max_frames", "render_timeout_s"})
    d = LimitSettings()
    return LimitSettings(
        max_upload_bytes=_int("limits.max_upload_bytes", s.get("max_upload_bytes", d.max_upload_bytes)),
        max_pixels=_int("limits.max_pixels", s.get("max_pixels", d.max_pixels)),
        max_frames=_int("limits.max_frames", s.get("max_frames", d.max_frames)),
        render_timeout_s=_float("limits.render_timeout_s", s.get("render_timeout_s", d.render_timeout_s)),
    )


def _working_sizes(value: Any) -> tuple[int, ...]:
    """Sorted long sides, each 64..8192; an empty list turns working copies off."""
    if value == []:
        return ()
    return _sorted_ints("render.working_sizes", value, maximum=8192)


def _render(raw: Mapping[str, Any]) -> RenderSettings:
    s = _section(raw, "render", {"max_concurrent", "max_queue", "background", "animation", "max_animation_frames",
                                 "working_sizes", "large_image_pixels"})
    d = RenderSettings()
    animation = s.get("animation", d.animation)
    if not isinstance(animation, bool):
        raise ConfigError(f"render.animation: must be true or false, got {animation!r}")
    return RenderSettings(
        max_concurrent=_int("render.max_concurrent", s.get("max_concurrent", d.max_concurrent), minimum=0),
        max_queue=_int("render.max_queue", s.get("max_queue", d.max_queue), minimum=0),
        background=_colour("render.background", s.get("background", "#ffffff")),
        animation=animation,
        max_animation_frames=_int("render.max_animation_frames",
                                  s.get("max_animation_frames", d.max_animation_frames)),
        working_sizes=_working_sizes(s.get("working_sizes", list(d.working_sizes))),
        large_image_pixels=_int("render.large_image_pixels", s.get("large_image_pixels", d.large_image_pixels)),
    )


def _cache(raw: Mapping[str, Any]) -> CacheSettings:
    s = _section(raw, "cache", {"memory_bytes", "meta_entries", "meta_ttl_s"})
    d = CacheSettings()
    return CacheSettings(
        memory_bytes=_int("cache.memory_bytes", s.get("memory_bytes", d.memory_bytes), minimum=0),
        meta_entries=_int("cache.meta_entries", s.get("meta_entries", d.meta_entries)),
        meta_ttl_s=_float("cache.meta_ttl_s", s.get("meta_ttl_s", d.meta_ttl_s)),
    )


def _preset(key: str, value: Any, v: VariantSettings) -> Preset:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a table like {{ w = 320 }}")
    for k in value:
        if k not in {"w", "h", "fit", "fmt", "q"}:
            raise ConfigError(f"{key}.{k}: unknown key (known: fit, fmt, h, q, w)")
    w = _int(f"{key}.w", value["w"]) if "w" in value else None
    h = _int(f"{key}.h", value["h"]) if "h" in value else None
    if w is None and h is None:
        raise ConfigError(f"{key}: needs w or h")
    if w is not None and w not in v.widths:
        raise ConfigError(f"{key}.w: {w} is not in variants.widths")
    if h is not None and h not in v.heights:
        raise ConfigError(f"{key}.h: {h} is not in variants.heights")
    fmt = _choice(f"{key}.fmt", value["fmt"], v.formats + ("auto",)) if "fmt" in value else None
    q = _int(f"{key}.q", value["q"]) if "q" in value else None
    if q is not None and q not in v.qualities:
        raise ConfigError(f"{key}.q: {q} is not in variants.qualities")
    return Preset(w=w, h=h, fit=_choice(f"{key}.fit", value.get("fit", "inside"), FITS),
                  fmt=None if fmt == "auto" else fmt, q=q)


def _variants(raw: Mapping[str, Any]) -> VariantSettings:
    s = _section(raw, "variants", {"widths", "heights", "dprs", "qualities", "formats", "presets"})
    d = VariantSettings()
    dprs_raw = _list("variants.dprs", s.get("dprs", list(d.dprs)))
    dprs = tuple(sorted({_float(f"variants.dprs[{i}]", x) for i, x in enumerate(dprs_raw)}))
    if 1.0 not in dprs:
        raise ConfigError("variants.dprs: must include 1")
    formats = tuple(_choice(f"variants.formats[{i}]", f, OUTPUT_FORMATS)
                    for i, f in enumerate(_list("variants.formats", s.get("formats", list(d.formats)))))
    if "jpeg" not in formats:
        raise ConfigError("variants.formats: must include jpeg (the fallback every browser reads)")
    v = VariantSettings(
        widths=_sorted_ints("variants.widths", s.get("widths", list(d.widths)), maximum=16384),
        heights=_sorted_ints("variants.heights", s.get("heights", list(d.heights)), maximum=16384),
        dprs=dprs,
        qualities=_sorted_ints("variants.qualities", s.get("qualities", list(d.qualities)), maximum=100),
        formats=tuple(dict.fromkeys(formats)),
    )
    presets_raw = s.get("presets")
    if presets_raw is None:  # the built-in presets that fit this config's size lists
        presets_raw = {name: p for name, p in DEFAULT_PRESETS.items()
                       if p.get("w", v.widths[0]) in v.widths and p.get("h", v.heights[0]) in v.heights}
    if not isinstance(presets_raw, dict):
        raise ConfigError("variants.presets: must be a table of presets")
    presets = {name: _preset(f"variants.presets.{name}", p, v) for name, p in presets_raw.items()}
    return VariantSettings(widths=v.widths, heights=v.heights, dprs=v.dprs, qualities=v.qualities,
                           formats=v.formats, presets=presets)


def _encoders(raw: Mapping[str, Any]) -> EncoderSettings:
    s = _section(raw, "encoders", {"jpeg_quality", "webp_quality", "webp_method", "avif_quality",
                                   "avif_speed", "png_compress_level"})
    d = EncoderSettings()
    return EncoderSettings(
        jpeg_quality=_int("encoders.jpeg_quality", s.get("jpeg_quality", d.jpeg_quality), maximum=100),
        webp_quality=_int("encoders.webp_quality", s.get("webp_quality", d.webp_quality), maximum=100),
        webp_method=_int("encoders.webp_method", s.get("webp_method", d.webp_method), minimum=0, maximum=6),
        avif_quality=_int("encoders.avif_quality", s.get("avif_quality", d.avif_quality), maximum=100),
        avif_speed=_int("encoders.avif_speed", s.get("avif_speed", d.avif_speed), minimum=0, maximum=10),
        png_compress_level=_int("encoders.png_compress_level",
                                s.get("png_compress_level", d.png_compress_level), minimum=0, maximum=9),
    )


def _sanitize(raw: Mapping[str, Any]) -> SanitizeSettings:
    s = _section(raw, "sanitize", {"formats", "jpeg_quality", "webp_quality", "avif_quality"})
    d = SanitizeSettings()
    formats = tuple(_choice(f"sanitize.formats[{i}]", f, INPUT_FORMATS)
                    for i, f in enumerate(_list("sanitize.formats", s.get("formats", list(d.formats)))))
    return SanitizeSettings(
        formats=tuple(dict.fromkeys(formats)),
        jpeg_quality=_int("sanitize.jpeg_quality", s.get("jpeg_quality", d.jpeg_quality), maximum=100),
        webp_quality=_int("sanitize.webp_quality", s.get("webp_quality", d.webp_quality), maximum=100),
        avif_quality=_int("sanitize.avif_quality", s.get("avif_quality", d.avif_quality), maximum=100),
    )


_SECTIONS = ("server", "storage", "auth", "limits", "render", "cache", "variants", "encoders", "sanitize", "security",
             "fetch", "rate_limits", "logging")


def _logging(raw: Mapping[str, Any]) -> LoggingSettings:
    s = _section(raw, "logging", {"access_log", "level"})
    access = s.get("access_log", True)
    if not isinstance(access, bool):
        raise ConfigError(f"logging.access_log: must be true or false, got {access!r}")
    return LoggingSettings(access_log=access,
                           level=_choice("logging.level", s.get("level", "info"), ("debug", "info", "warning", "error")))


def _strings(key: str, value: Any, min_length: int = 1) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value] if value else []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list of strings")
    items = tuple(_str(f"{key}[{i}]", v) for i, v in enumerate(value))
    for i, item in enumerate(items):
        if len(item) < min_length:
            raise ConfigError(f"{key}[{i}]: must be at least {min_length} characters")
    return items


def _security(raw: Mapping[str, Any]) -> SecuritySettings:
    s = _section(raw, "security", {"signing_keys", "max_width", "max_height", "max_pixels"})
    d = SecuritySettings()
    return SecuritySettings(
        signing_keys=_strings("security.signing_keys", s.get("signing_keys", []), min_length=32),
        max_width=_int("security.max_width", s.get("max_width", d.max_width), maximum=65535),
        max_height=_int("security.max_height", s.get("max_height", d.max_height), maximum=65535),
        max_pixels=_int("security.max_pixels", s.get("max_pixels", d.max_pixels)),
    )


def _fetch(raw: Mapping[str, Any]) -> FetchSettings:
    s = _section(raw, "fetch", {"allowed_hosts", "allowed_networks", "connect_timeout_s", "read_timeout_s",
                                "total_timeout_s", "max_redirects"})
    d = FetchSettings()
    networks = _strings("fetch.allowed_networks", s.get("allowed_networks", []))
    for i, net in enumerate(networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"fetch.allowed_networks[{i}]: not a network, got {net!r}") from None
    return FetchSettings(
        allowed_hosts=tuple(h.lower().strip("[]") for h in _strings("fetch.allowed_hosts", s.get("allowed_hosts", []))),
        allowed_networks=networks,
        connect_timeout_s=_float("fetch.connect_timeout_s", s.get("connect_timeout_s", d.connect_timeout_s)),
        read_timeout_s=_float("fetch.read_timeout_s", s.get("read_timeout_s", d.read_timeout_s)),
        total_timeout_s=_float("fetch.total_timeout_s", s.get("total_timeout_s", d.total_timeout_s)),
        max_redirects=_int("fetch.max_redirects", s.get("max_redirects", d.max_redirects), minimum=0, maximum=10),
    )


def _rate_limits(raw: Mapping[str, Any]) -> RateLimitSettings:
    s = _section(raw, "rate_limits", {"uploads_per_minute", "upload_burst", "misses_per_minute", "miss_burst"})
    d = RateLimitSettings()

    def rate(key: str, default: float) -> float:
        value = s.get(key, default)
        return 0.0 if value == 0 else _float(f"rate_limits.{key}", value)

    return RateLimitSettings(
        uploads_per_minute=rate("uploads_per_minute", d.uploads_per_minute),
        upload_burst=_int("rate_limits.upload_burst", s.get("upload_burst", d.upload_burst)),
        misses_per_minute=rate("misses_per_minute", d.misses_per_minute),
        miss_burst=_int("rate_limits.miss_burst", s.get("miss_burst", d.miss_burst)),
    )


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Overlay ``PROXY_SECTION__KEY`` variables onto the parsed TOML, in place."""
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in _SECTIONS:
            raise ConfigError(f"{name}: unknown section {section!r} (known: {', '.join(_SECTIONS)})")
        try:
            value: Any = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table")
        table[key] = value


def parse_settings(raw: dict[str, Any], base_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a raw TOML mapping (plus env overrides) into frozen `Settings`."""
    _apply_env(raw, environ or {})
    for name in raw:
        if name not in _SECTIONS:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(_SECTIONS)})")
    return Settings(
        server=_server(raw),
        storage=_storage(raw, base_dir),
        auth=_auth(raw),
        limits=_limits(raw),
        render=_render(raw),
        cache=_cache(raw),
        variants=_variants(raw),
        encoders=_encoders(raw),
        sanitize=_sanitize(raw),
        security=_security(raw),
        fetch=_fetch(raw),
        rate_limits=_rate_limits(raw),
        logging=_logging(raw),
    )


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
