"""Typed settings: read config.toml once at start-up, apply env overrides, validate.

Everything else in the package receives a frozen `Settings` and never reads the
environment or the file again. A bad value stops start-up with a `ConfigError` that
names the offending key (``limits.max_pixels: must be >= 1, got -5``), so an operator
fixes the right line instead of chasing a stack trace.

Each key is declared once, as a field: ``setting(default, doc, bounds...)``; proxy/configkeys.py
derives the parsing, defaults, error names and the README's table of keys from that. Rules
between keys are the section checks at the end. Environment overrides address one key each:
``PROXY_<SECTION>__<KEY>``, e.g. ``PROXY_LIMITS__MAX_UPLOAD_BYTES=1048576``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from proxy import crops
from proxy.configkeys import (Colour, ConfigError, SectionCheck, build, choice, http_url, includes, integer,
                              overlay_env, refuse_unknown, setting, text, trimmed)
from proxy.formats import INPUT_FORMATS, OUTPUT_FORMATS

ENV_PREFIX = "PROXY_"
CONFIG_ENV = "PROXY_CONFIG"  # set by `serve` for its workers: which config to load
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client itself in every worker
FITS = ("inside", "cover", "pad")
# The presets a config without [variants.presets] gets (the shipped config.toml lists the same).
DEFAULT_PRESETS: dict[str, dict[str, Any]] = {"thumb": {"w": 160, "h": 160, "fit": "cover"}, "small": {"w": 320},
                                              "medium": {"w": 800}, "large": {"w": 1600}}
_SIZES = (64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720, 800, 960, 1080, 1200, 1280, 1440, 1600,
          1920, 2048)


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
    public_url: str = setting("", "base of URLs in JSON answers (set it behind a CDN); empty: the request's",
                              check=trimmed)
    trusted_proxies: tuple[str, ...] = setting((), "addresses/CIDRs of the proxies and CDNs in front, whose "
                                               "`server.forwarded_header` names the client; empty: the peer is "
                                               "the client, forwarding headers are ignored", check=_networks)
    forwarded_header: str = setting("x-forwarded-for", "the header trusted proxies name the client in (the other is "
                                    "ignored)", choices=("x-forwarded-for", "forwarded"))


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
            raise ConfigError(f"{name}.{holder}: a token name is 1-64 letters, digits, '.', '_' or '-', "
                              "starting with a letter or digit")
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
        raise ConfigError(f"{name}: replaced by auth.tokens, a table of named tokens (the name owns what the token "
                          'uploads), e.g. auth.tokens = { app = "<the token>" }, and auth.admins = ["app"] for a '
                          "token that may purge any image")
    return tokens


@dataclass(frozen=True)
class AuthSettings:
    tokens: Mapping[str, str] = setting({}, "named bearer tokens `{ <name> = \"<secret>\" }` (secrets >= 16 chars) "
                                        "for `POST`/`DELETE`; empty: `serve` generates an admin token "
                                        "(see `auth.token_file`)", parse=_tokens)
    admins: tuple[str, ...] = setting((), "names from `auth.tokens` that may purge any image outright")
    token_file: Path | None = setting(None, "with no `auth.tokens`: where the generated admin token is kept (mode "
                                      "0600); empty: `<storage.path>/.admin-token` (local backend; s3 needs "
                                      "tokens or this)", parse=_optional_path)
    upload_tokens: tuple[str, ...] = setting((), "removed: a non-empty list stops start-up, saying how to move it to "
                                             "`auth.tokens`", check=_removed_upload_tokens)


@dataclass(frozen=True)
class LimitSettings:
    max_upload_bytes: int = setting(25 * 1024 * 1024, "larger bodies get 413 (26214400 = 25 MiB)")
    max_pixels: int = setting(50_000_000, "per image, and for all frames of an animation together")
    max_frames: int = setting(300, "animation frames")
    render_timeout_s: float = setting(20.0, "a render or upload sanitize slower than this answers 503")


@dataclass(frozen=True)
class RenderSettings:
    max_concurrent: int = setting(0, "renders at once; `0`: one per CPU core", minimum=0)
    max_queue: int = setting(64, "renders that may wait for a slot; past it: 503 + `Retry-After` at once", minimum=0)
    background: Colour = setting((255, 255, 255), "behind transparent pixels in JPEG output, and the canvas of "
                                 "`fit=pad` without `bg`")
    animation: bool = setting(True, "animated originals give animated WebP/GIF variants")
    max_animation_frames: int = setting(150, "more frames than this: the first frame only")
    working_sizes: tuple[int, ...] = setting((480, 800, 1280), "long sides of the working copies made at upload "
                                             "(a render starts from the smallest that holds its output); `[]`: none",
                                             maximum=8192, allow_empty=True)
    large_image_pixels: int = setting(16_000_000, "decodes larger than this (after JPEG draft scaling) run one at a "
                                      "time per worker, bounding memory; smaller ones never wait")


@dataclass(frozen=True)
class CacheSettings:
    memory_bytes: int = setting(256 * 1024 * 1024, "memory LRU budget in variant bytes (256 MiB); `0` disables",
                                minimum=0)
    meta_entries: int = setting(10_000, "image metadata records kept in memory")
    meta_ttl_s: float = setting(60.0, "seconds a metadata record is trusted (another instance's delete shows within)")


@dataclass(frozen=True)
class Preset:
    w: int | None = None
    h: int | None = None
    fit: str = "inside"
    fmt: str | None = None
    q: int | None = None
    g: str = "center"  # see proxy.crops for these four
    fp: str | None = None  # "x,y" as written; checked against variants.crop_steps with the other keys
    crop: str | None = None  # "x,y,w,h", likewise
    bg: str | None = None  # canonical label; None: render.background


def _crop_word(name: str, value: Any, parse: Callable[[str], Any]) -> Any:
    """A preset's value parsed by one of proxy.crops' parsers, its complaint naming the key."""
    try:
        return parse(text(name, value))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}, got {value!r}") from None


def _preset(name: str, value: Any) -> Preset:
    """One `[variants.presets]` entry, e.g. ``{ w = 256, h = 256, fit = "cover", g = "auto" }``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table like {{ w = 320 }}")
    refuse_unknown(name, value, (f.name for f in dataclasses.fields(Preset)))
    sizes = {k: integer(f"{name}.{k}", value[k]) for k in ("w", "h", "q") if k in value}
    if "w" not in sizes and "h" not in sizes:
        raise ConfigError(f"{name}: needs w or h")
    fmt = choice(f"{name}.fmt", value.get("fmt", "auto"), OUTPUT_FORMATS + ("auto",))
    fit = choice(f"{name}.fit", value.get("fit", Preset.fit), FITS)
    words = {k: _crop_word(f"{name}.{k}", value[k], parse) for k, parse in (
        ("g", crops.gravity), ("bg", crops.background), ("fp", str.strip), ("crop", str.strip)) if k in value}
    if fit != "cover" and ("g" in words or "fp" in words):
        raise ConfigError(f'{name}: g and fp place a cover crop; they need fit = "cover"')
    if fit != "pad" and "bg" in words:
        raise ConfigError(f'{name}.bg: the colour of a pad; it needs fit = "pad"')
    if fit == "pad" and not ("w" in sizes and "h" in sizes):
        raise ConfigError(f'{name}: fit = "pad" needs both w and h')
    return Preset(**sizes, fit=fit, fmt=None if fmt == "auto" else fmt, **words)


def _backgrounds(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """Canonical labels (`ffffff`, `transparent`), as URLs write them."""
    return tuple(dict.fromkeys(_crop_word(f"{name}[{i}]", v, crops.background) for i, v in enumerate(values)))


def _presets(name: str, value: Any) -> dict[str, Preset]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table of presets")
    return {preset: _preset(f"{name}.{preset}", p) for preset, p in value.items()}


@dataclass(frozen=True)
class VariantSettings:
    widths: tuple[int, ...] = setting(_SIZES, "allowed `w`", maximum=16384)
    heights: tuple[int, ...] = setting(_SIZES, "allowed `h`", maximum=16384)
    dprs: tuple[float, ...] = setting((1.0, 1.5, 2.0, 3.0), "allowed `dpr`; must include 1", check=includes(1.0, "1"))
    qualities: tuple[int, ...] = setting((40, 50, 60, 70, 75, 80, 85, 90), "allowed `q`", maximum=100)
    formats: tuple[str, ...] = setting(OUTPUT_FORMATS, "allowed output formats; must include jpeg",
                                       choices=OUTPUT_FORMATS,
                                       check=includes("jpeg", "jpeg (the fallback every browser reads)"))
    presets: Mapping[str, Preset] = setting({name: Preset(**p) for name, p in DEFAULT_PRESETS.items()},
                                            "`p=<name>` shortcuts `{ w, h, fit, g, fp, crop, bg, fmt, q }` on the "
                                            "lists above (no table: the built-in ones that are); with `snap = \"up\"` "
                                            "their w, h and q snap like a request's", parse=_presets)
    snap: str = setting("up", "a `w`/`h` not on the lists is served as the next allowed size up (capped at the "
                        "largest) and a `q` as the nearest allowed; `off`: 400", choices=("up", "off"))
    crop_steps: int = setting(100, "`fp` and `crop` are multiples of 1/N of the original's width and height "
                              "(100: two decimals); bounds the crops a URL can ask for (see Crops)", maximum=1000)
    backgrounds: tuple[str, ...] = setting((crops.TRANSPARENT, "ffffff", "000000"),
                                           "allowed `bg` of `fit=pad`: `rrggbb` colours (`#` optional) or `transparent` "
                                           "(without `bg`: `render.background`)", check=_backgrounds)


@dataclass(frozen=True)
class EncoderSettings:
    """Default quality and speed knobs per output format (see README: encoder settings)."""

    jpeg_quality: int = setting(80, "JPEG `q` when none is asked", maximum=100)
    jpeg_progressive: bool = setting(True, "progressive JPEG (with optimized Huffman tables either way)")
    webp_quality: int = setting(80, "WebP `q` when none is asked", maximum=100)
    webp_method: int = setting(4, "libwebp effort, fast to small (4: 8% fewer bytes than 2 at equal SSIM for about "
                               "1.5x the encode time; 6: 0.4% fewer than 4 at twice its time)", minimum=0, maximum=6)
    avif_quality: int = setting(60, "AVIF `q` when none is asked", maximum=100)
    avif_speed: int = setting(6, "libavif (aom) speed, small to fast (6 with 4:4:4: 0.96x IPX's bytes at equal "
                              "SSIM; 9 with 4:2:0 was 1.22x)", minimum=0, maximum=10)
    avif_subsampling: str = setting("4:4:4", "AVIF chroma subsampling (4:4:4: as sharp/IPX; full colour at edges)",
                                    choices=("4:2:0", "4:4:4"))
    png_compress_level: int = setting(6, "zlib level", minimum=0, maximum=9)
    auto_quality: bool = setting(False, "`q=auto` for requests without `q`: per variant, the lowest quality that "
                                 "keeps `auto_target` (see q=auto)")
    auto_target: int = setting(960, "`q=auto`'s SSIM on luma against the pixels it encodes, in thousandths "
                               "(960: 0.960, about what q80 gives a photo; the variant key names it)",
                               minimum=900, maximum=999)


@dataclass(frozen=True)
class FocusSettings:
    """Where `g=auto` crops: faces, else the most salient area, found once per image at upload."""

    detect_size: int = setting(384, "faces and saliency are looked for in a copy of about this many px squared "
                               "(any aspect)", minimum=64, maximum=2048)
    min_face: int = setting(20, "smallest face found, in px of that copy", minimum=12, maximum=512)
    face_neighbors: int = setting(5, "overlapping detections a face needs (higher: fewer false faces, more "
                                  "missed)", maximum=20)


@dataclass(frozen=True)
class SanitizeSettings:
    formats: tuple[str, ...] = setting(INPUT_FORMATS, "accepted uploads", choices=INPUT_FORMATS)
    jpeg_quality: int = setting(95, "JPEG quality when a re-encode at upload is unavoidable", maximum=100)
    webp_quality: int = setting(95, "WebP quality, likewise", maximum=100)
    avif_quality: int = setting(90, "AVIF quality, likewise", maximum=100)
    avif_speed: int = setting(9, "libavif speed of that AVIF re-encode, small to fast (9: 8x faster than Pillow's "
                              "default 6 on a 12 MP photo, file 5% larger, PSNR 0.2 dB lower)", minimum=0, maximum=10)


@dataclass(frozen=True)
class SecuritySettings:
    """Signed URLs: with keys set, every image request needs a valid signature (`s=`)."""

    signing_keys: tuple[str, ...] = setting((), "HMAC keys; set: every image URL must be signed; the first signs, "
                                            "all verify (rotation)", min_length=32)
    max_width: int = setting(4096, "hard cap on `w` for signed URLs, which may leave the allow-list", maximum=65535)
    max_height: int = setting(4096, "hard cap on `h` for signed URLs", maximum=65535)
    max_pixels: int = setting(16_777_216, "hard cap on output pixels for signed URLs")

    @property
    def signing(self) -> bool:
        return bool(self.signing_keys)


@dataclass(frozen=True)
class FetchSettings:
    """Import from a URL (POST /img {"url": ...}): off until hosts are listed."""

    allowed_hosts: tuple[str, ...] = setting((), 'exact host names (or IP literals) `POST /img {"url"}` may fetch '
                                             "from; empty: import off", check=_host_names)
    allowed_networks: tuple[str, ...] = setting((), "private/loopback CIDRs allowed as fetch targets (normally none)",
                                                check=_networks)
    connect_timeout_s: float = setting(3.0, "seconds to connect")
    read_timeout_s: float = setting(10.0, "seconds between bytes")
    total_timeout_s: float = setting(20.0, "seconds for the whole fetch")
    max_redirects: int = setting(3, "followed only to the same host, each re-checked", minimum=0, maximum=10)


@dataclass(frozen=True)
class RateLimitSettings:
    """Token buckets per worker process (README: the rate-limit model). 0 disables a limit. Cached hits are
    never limited."""

    uploads_per_minute: float = setting(60.0, "uploads and deletes per token; per client address for writes "
                                        "without a valid token; `0` disables", minimum=0)
    upload_burst: int = setting(20, "such writes a token (or address) may make at once")
    misses_per_minute: float = setting(600.0, "renders of variants in no cache tier yet, per client address; "
                                       "`0` disables", minimum=0)
    miss_burst: int = setting(100, "such renders a client may start at once")


@dataclass(frozen=True)
class LoggingSettings:
    access_log: bool = setting(True, "one JSON line per request on stdout")
    level: str = setting("info", "service log level", choices=("debug", "info", "warning", "error"))


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


def _presets_on_the_lists(v: VariantSettings, given: Mapping[str, Any], name: str) -> VariantSettings:
    """A preset may only ask for what the lists allow. Written presets that do not are refused;
    built-in ones (no presets table written) that do not are left out. With `snap = "up"` a
    preset's w, h and q snap onto the lists like a request's (proxy.variants), so only its
    format must be listed: widths set to a framework's list (Next.js: 640, 750, 828, ...) then
    keep every preset working instead of stopping start-up."""
    snapped = ("w", "h", "q") if v.snap == "up" else ()
    kept = {}
    for preset, p in v.presets.items():
        misfits = [f"{k}: {value!r} is not in {name}.{listed}" for k, value, allowed, listed in (
            ("w", p.w, v.widths, "widths"), ("h", p.h, v.heights, "heights"),
            ("fmt", p.fmt, v.formats, "formats"), ("q", p.q, v.qualities, "qualities"),
            ("bg", p.bg, v.backgrounds, "backgrounds"))
            if value is not None and value not in allowed and k not in snapped]
        for k, parse in (("fp", lambda t: crops.fractions(t, 2, v.crop_steps)),
                         ("crop", lambda t: crops.crop_box(t, v.crop_steps))):
            written = getattr(p, k)
            if written is not None:
                _crop_word(f"{name}.presets.{preset}.{k}", written, parse)
        if not misfits:
            kept[preset] = p
        elif "presets" in given:
            raise ConfigError(f"{name}.presets.{preset}.{misfits[0]}")
    return dataclasses.replace(v, presets=kept)


_SECTION_CHECKS: dict[type, SectionCheck] = {StorageSettings: _bucket_for_s3, VariantSettings: _presets_on_the_lists,
                                              AuthSettings: _admins_are_tokens}


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
