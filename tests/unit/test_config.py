"""proxy.config: defaults, the shipped config.toml, path resolution, validation errors naming the
dotted key, environment overrides, frozen settings and the render-slot fallback."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from support.corpus import REPO
from proxy.config import (
    DEFAULT_PRESETS,
    AuthSettings,
    CacheSettings,
    ConfigError,
    EncoderSettings,
    LimitSettings,
    Preset,
    RenderSettings,
    SanitizeSettings,
    ServerSettings,
    Settings,
    VariantSettings,
    load_settings,
    parse_settings,
)

TOKEN = "a" * 16


def write(folder: Path, text: str) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def raises_naming(key: str, raw: dict[str, Any], environ: dict[str, str] | None = None) -> ConfigError:
    """Parse `raw` expecting a ConfigError whose message starts with the dotted `key`."""
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, Path("/srv/proxy"), environ)
    assert str(info.value).startswith(key + ":"), str(info.value)
    return info.value


# --------------------------------------------------------------------------- loading


def test_empty_file_gives_the_dataclass_defaults(tmp_path: Path) -> None:
    """An empty config.toml is valid and every section equals its documented default."""
    s = load_settings(write(tmp_path, ""), {})
    assert s.server == ServerSettings()
    assert s.auth == AuthSettings()
    assert s.limits == LimitSettings()
    assert s.render == RenderSettings()
    assert s.cache == CacheSettings()
    assert s.encoders == EncoderSettings()
    assert s.sanitize == SanitizeSettings()
    assert s.storage.backend == "local"
    assert s.storage.path == tmp_path.resolve() / "data"
    d = VariantSettings()
    assert (s.variants.widths, s.variants.heights, s.variants.dprs, s.variants.qualities, s.variants.formats) == (
        d.widths, d.heights, d.dprs, d.qualities, d.formats)
    # Without [variants.presets] the built-in presets apply.
    assert dict(s.variants.presets) == {name: Preset(**p) for name, p in DEFAULT_PRESETS.items()}


def test_repo_config_toml_loads_and_matches_the_defaults() -> None:
    """The shipped config.toml is valid, and (as its header says) lists the default values."""
    s = load_settings(REPO / "config.toml", {})
    empty = parse_settings({}, REPO)
    assert s.limits == empty.limits
    assert s.cache == empty.cache
    assert s.encoders == empty.encoders
    assert s.variants == empty.variants
    assert s.storage.path == REPO / "data"
    assert s.auth.upload_tokens == ()


def test_relative_storage_path_resolves_next_to_the_config_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """storage.path = "images" means <config folder>/images, whatever the working directory is."""
    conf_dir = tmp_path / "etc" / "proxy"
    conf_dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(Path(os.path.relpath(write(conf_dir, '[storage]\npath = "images"\n'), elsewhere)), {})
    assert s.storage.path == conf_dir.resolve() / "images"
    assert s.storage.path.is_absolute()


def test_absolute_storage_path_is_kept(tmp_path: Path) -> None:
    """An absolute storage.path is used as is, not joined to the config folder."""
    target = tmp_path / "absolute-data"
    s = load_settings(write(tmp_path, f'[storage]\npath = "{target.as_posix()}"\n'), {})
    assert s.storage.path == target


def test_missing_file_and_invalid_toml_are_config_errors(tmp_path: Path) -> None:
    """Start-up problems with the file itself are ConfigErrors too, not raw tracebacks."""
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[limits\n"), {})


# --------------------------------------------------------------------------- validation


def test_unknown_section_is_named() -> None:
    """A typo in a section name is refused, naming the section."""
    raises_naming("limitz", {"limitz": {"max_pixels": 5}})


def test_unknown_key_is_named_with_its_section() -> None:
    """A typo in a key is refused as section.key, and the message lists the known keys."""
    err = raises_naming("limits.max_pixel", {"limits": {"max_pixel": 5}})
    assert "max_pixels" in str(err)


@pytest.mark.parametrize(("section", "key", "value"), [
    ("limits", "max_pixels", 0),
    ("limits", "max_pixels", -1),
    ("limits", "max_upload_bytes", 0),
    ("limits", "max_frames", -3),
    ("limits", "render_timeout_s", 0),
    ("limits", "render_timeout_s", -1.5),
    ("cache", "memory_bytes", -1),
    ("cache", "meta_entries", 0),
    ("render", "max_queue", -1),
    ("server", "port", 70000),
])
def test_out_of_range_numbers_are_named(section: str, key: str, value: float) -> None:
    """Zero or negative sizes (and out-of-range ports) stop start-up, naming section.key."""
    raises_naming(f"{section}.{key}", {section: {key: value}})


def test_zero_width_in_the_allow_list_is_named_by_index() -> None:
    """A list entry is named with its index, so the operator finds the bad element."""
    raises_naming("variants.widths[1]", {"variants": {"widths": [320, 0]}})


@pytest.mark.parametrize(("section", "key", "value"), [
    ("limits", "max_pixels", "50000000"),
    ("limits", "max_pixels", 1.5),
    ("limits", "max_pixels", True),  # bool is an int subclass in Python; still refused
    ("limits", "render_timeout_s", "20"),
    ("server", "host", 8000),
    ("render", "background", 0xFFFFFF),
    ("variants", "widths", 320),
])
def test_wrong_types_are_named(section: str, key: str, value: Any) -> None:
    """A value of the wrong type stops start-up, naming section.key."""
    raises_naming(f"{section}.{key}", {section: {key: value}})


def test_bad_colour_is_named() -> None:
    """render.background must be a #rrggbb colour."""
    raises_naming("render.background", {"render": {"background": "#fff"}})
    raises_naming("render.background", {"render": {"background": "#gggggg"}})


def test_unknown_output_format_is_named() -> None:
    """variants.formats only takes output formats the renderer writes."""
    raises_naming("variants.formats[1]", {"variants": {"formats": ["jpeg", "bmp"]}})


def test_output_formats_must_include_jpeg() -> None:
    """JPEG is the fallback every browser reads, so it cannot be left out."""
    raises_naming("variants.formats", {"variants": {"formats": ["webp"]}})


def test_preset_width_must_be_an_allowed_width() -> None:
    """A preset may only name a size the allow-list permits."""
    raw = {"variants": {"widths": [320, 640], "presets": {"hero": {"w": 1000}}}}
    err = raises_naming("variants.presets.hero.w", raw)
    assert "variants.widths" in str(err)


def test_preset_unknown_key_is_named() -> None:
    """Preset tables are checked key by key like sections."""
    raises_naming("variants.presets.hero.width", {"variants": {"presets": {"hero": {"width": 320}}}})


def test_short_upload_token_is_named_by_index() -> None:
    """Bearer tokens shorter than 16 characters are refused (naming which one)."""
    raises_naming("auth.upload_tokens[1]", {"auth": {"upload_tokens": [TOKEN, "short-token"]}})
    raises_naming("auth.upload_tokens[0]", {"auth": {"upload_tokens": ["a" * 15]}})


def test_token_of_exactly_16_characters_is_accepted() -> None:
    """16 characters is the documented minimum, so it is allowed."""
    s = parse_settings({"auth": {"upload_tokens": [TOKEN]}}, Path("/srv"))
    assert s.auth.upload_tokens == (TOKEN,)


def test_dprs_must_include_one() -> None:
    """dpr=1 is the base density and cannot be left out."""
    raises_naming("variants.dprs", {"variants": {"dprs": [2, 3]}})


def test_allow_lists_are_sorted_and_deduplicated() -> None:
    """Operators may list sizes in any order and twice; the parsed tuples are sorted and unique."""
    raw = {"variants": {"widths": [640, 320, 640], "qualities": [90, 40, 90], "presets": {}}}
    s = parse_settings(raw, Path("/srv"))
    assert s.variants.widths == (320, 640)
    assert s.variants.qualities == (40, 90)


# --------------------------------------------------------------------------- environment


def test_env_override_is_applied_and_parsed_as_int(tmp_path: Path) -> None:
    """PROXY_LIMITS__MAX_PIXELS=1000 overrides the file's value and arrives as an int."""
    path = write(tmp_path, "[limits]\nmax_pixels = 5000\n")
    s = load_settings(path, {"PROXY_LIMITS__MAX_PIXELS": "1000"})
    assert s.limits.max_pixels == 1000
    assert type(s.limits.max_pixels) is int


def test_env_list_override_sets_upload_tokens(tmp_path: Path) -> None:
    """A TOML list in an env var becomes the tuple of tokens."""
    s = load_settings(write(tmp_path, ""), {"PROXY_AUTH__UPLOAD_TOKENS": f'["{TOKEN}", "{"b" * 20}"]'})
    assert s.auth.upload_tokens == (TOKEN, "b" * 20)


def test_env_value_that_is_not_toml_is_taken_as_a_string(tmp_path: Path) -> None:
    """PROXY_SERVER__HOST=0.0.0.0 is not a TOML value, so it is used as the plain string."""
    s = load_settings(write(tmp_path, ""), {"PROXY_SERVER__HOST": "0.0.0.0",
                                           "PROXY_AUTH__UPLOAD_TOKENS": TOKEN})
    assert s.server.host == "0.0.0.0"
    assert s.auth.upload_tokens == (TOKEN,)


def test_env_override_is_validated_like_the_file(tmp_path: Path) -> None:
    """A bad value from the environment is refused with the dotted key, like a bad file value."""
    with pytest.raises(ConfigError, match=r"^limits\.max_pixels:"):
        load_settings(write(tmp_path, ""), {"PROXY_LIMITS__MAX_PIXELS": "-5"})
    with pytest.raises(ConfigError, match=r"^auth\.upload_tokens\[0\]:"):
        load_settings(write(tmp_path, ""), {"PROXY_AUTH__UPLOAD_TOKENS": '["tiny"]'})


def test_env_unknown_section_names_the_variable(tmp_path: Path) -> None:
    """A misspelt env section stops start-up, naming the variable itself."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, ""), {"PROXY_LIMITZ__MAX_PIXELS": "1000"})
    assert str(info.value).startswith("PROXY_LIMITZ__MAX_PIXELS:")


def test_unrelated_env_variables_are_ignored(tmp_path: Path) -> None:
    """Only PROXY_<SECTION>__<KEY> names are read; PATH, HOME or PROXY_FOO are not."""
    s = load_settings(write(tmp_path, ""), {"PATH": "/usr/bin", "PROXY_FOO": "1", "HTTP_PROXY": "x"})
    assert s.limits == LimitSettings()


def test_no_environ_means_no_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment is only used when passed in explicitly."""
    monkeypatch.setenv("PROXY_LIMITS__MAX_PIXELS", "1000")
    assert load_settings(write(tmp_path, "")).limits.max_pixels == LimitSettings().max_pixels


def test_nan_timeout_is_refused(tmp_path: Path) -> None:
    """A timeout must be a positive number; NaN is not one."""
    with pytest.raises(ConfigError, match=r"^limits\.render_timeout_s:"):
        load_settings(write(tmp_path, ""), {"PROXY_LIMITS__RENDER_TIMEOUT_S": "nan"})


# --------------------------------------------------------------------------- the result


def test_settings_are_frozen() -> None:
    """Nothing can change the settings after start-up."""
    s = parse_settings({}, Path("/srv"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.limits.max_pixels = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.limits = LimitSettings()  # type: ignore[misc]


def test_render_slots_fall_back_to_cpu_count() -> None:
    """max_concurrent = 0 means one render slot per CPU core; a positive value is used as is."""
    auto = parse_settings({"render": {"max_concurrent": 0}}, Path("/srv"))
    assert auto.render_slots == (os.cpu_count() or 1)
    assert auto.render_slots >= 1
    assert parse_settings({"render": {"max_concurrent": 3}}, Path("/srv")).render_slots == 3
    assert Settings().render_slots == (os.cpu_count() or 1)
