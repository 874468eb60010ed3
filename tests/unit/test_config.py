"""proxy.config: defaults, the shipped config.toml, the README's key tables, path resolution,
validation errors naming the dotted key, declared bounds and choices, environment overrides,
frozen settings and the render-slot fallback."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

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
from proxy.configkeys import Declared, declared, nested_tables, reference
from support.corpus import REPO

TOKEN = "a" * 16
KEYS = list(declared(Settings))


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


def written(key: Declared, value: Any) -> dict[str, Any]:
    """A raw config that writes `value` to the declared key, e.g. {"storage": {"s3": {"bucket": value}}}."""
    raw: dict[str, Any] = {key.name: value}
    for table in reversed(key.table.split(".")):
        raw = {table: raw}
    return raw


def value_of(settings: Settings, key: Declared) -> Any:
    """The parsed value of the declared key in `settings`."""
    section: Any = settings
    for table in key.table.split("."):
        section = getattr(section, table)
    return getattr(section, key.name)


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
        d.widths,
        d.heights,
        d.dprs,
        d.qualities,
        d.formats,
    )
    # Without [variants.presets] the built-in presets apply.
    assert dict(s.variants.presets) == {name: Preset(**p) for name, p in DEFAULT_PRESETS.items()}
    # So every section is its dataclass default; only the data folder is resolved.
    default = Settings()
    assert s == dataclasses.replace(default, storage=dataclasses.replace(default.storage, path=s.storage.path))


def test_repo_config_toml_loads_and_matches_the_defaults() -> None:
    """The shipped config.toml is valid, and (as its header says) lists the default values."""
    s = load_settings(REPO / "config.toml", {})
    empty = parse_settings({}, REPO)
    assert s.limits == empty.limits
    assert s.cache == empty.cache
    assert s.encoders == empty.encoders
    assert s.variants == empty.variants
    assert s.storage.path == REPO / "data"
    assert s.auth.tokens == {} and s.auth.admins == ()
    assert s == empty


def test_repo_config_toml_sets_every_key() -> None:
    """config.toml names every declared key: set, or for [storage.s3] in its commented example."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    for key in KEYS:
        if "." in key.table:
            assert re.search(rf"^# {key.name} = ", text, re.M), key.dotted
        else:
            assert key.name in raw[key.table], key.dotted


# --------------------------------------------------------------------------- the declarations


def test_readme_key_tables_are_the_declarations() -> None:
    """README.md's key tables are exactly what `config-reference` generates from the declarations
    (every key, its default as written in TOML, its doc and range), one per nested table too."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pattern = r"<!-- config-reference(?: (?P<table>[\w.]+))? -->\n(?P<body>.*?)<!-- end config-reference -->"
    blocks = {m["table"]: m["body"].strip("\n") + "\n" for m in re.finditer(pattern, readme, re.S)}
    assert set(blocks) == {None, *nested_tables(Settings)}
    for table, body in blocks.items():
        command = " ".join(["python -m proxy config-reference", *([table] if table else [])])
        assert body == reference(Settings, table), f"a README key table is stale; paste `{command}`"
    assert sum(body.count("\n| `") for body in blocks.values()) == len(KEYS)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.dotted)
def test_each_default_as_shown_parses_back_to_the_default(key: Declared) -> None:
    """The default the README shows, written into a config, gives what leaving the key out gives."""
    value = tomllib.loads(f"v = {key.shown}")["v"]
    assert parse_settings(written(key, value), Path("/srv")) == parse_settings({}, Path("/srv"))


def _bound_cases() -> list[Any]:
    """Per declared number: its lowest allowed value and just below it, and likewise at the top."""
    cases: list[tuple[Declared, float, bool]] = []
    for key in KEYS:
        if key.kind is int:
            cases += [(key, key.key.low, True), (key, key.key.low - 1, False)]
            if key.key.maximum is not None:
                cases += [(key, key.key.maximum, True), (key, key.key.maximum + 1, False)]
        elif key.kind is float:  # positive, unless a minimum is declared
            low = 0.0 if key.key.minimum is None else float(key.key.minimum)
            cases += [(key, low, key.key.minimum is not None), (key, low + 0.5, True), (key, low - 0.5, False)]
    return [pytest.param(key, value, ok, id=f"{key.dotted}={value}") for key, value, ok in cases]


@pytest.mark.parametrize(("key", "value", "allowed"), _bound_cases())
def test_declared_bounds_are_enforced(key: Declared, value: float, allowed: bool) -> None:
    """Each number's declared range holds at both ends (a rate takes 0, which disables it; a timeout does not)."""
    if allowed:
        parsed = value_of(parse_settings(written(key, value), Path("/srv")), key)
        assert parsed == value and type(parsed) is key.kind
    else:
        raises_naming(key.dotted, written(key, value))


@pytest.mark.parametrize("key", [k for k in KEYS if k.kind is str and k.key.choices], ids=lambda k: k.dotted)
def test_declared_choices_are_enforced(key: Declared) -> None:
    """A choice takes any of its values in any case (stored lowercase), and nothing else."""
    choice = key.key.choices[0]
    assert value_of(parse_settings(written(key, choice.upper()), Path("/srv")), key) == choice
    raises_naming(key.dotted, written(key, "nonsense"))


def test_relative_storage_path_resolves_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
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
    ],
)
def test_out_of_range_numbers_are_named(section: str, key: str, value: float) -> None:
    """Zero or negative sizes (and out-of-range ports) stop start-up, naming section.key."""
    raises_naming(f"{section}.{key}", {section: {key: value}})


def test_zero_width_in_the_allow_list_is_named_by_index() -> None:
    """A list entry is named with its index, so the operator finds the bad element."""
    raises_naming("variants.widths[1]", {"variants": {"widths": [320, 0]}})


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("limits", "max_pixels", "50000000"),
        ("limits", "max_pixels", 1.5),
        ("limits", "max_pixels", True),  # bool is an int subclass in Python; still refused
        ("limits", "render_timeout_s", "20"),
        ("server", "host", 8000),
        ("render", "background", 0xFFFFFF),
        ("variants", "widths", 320),
    ],
)
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
    """With snapping off a preset may only name a size the allow-list permits."""
    raw = {"variants": {"widths": [320, 640], "snap": "off", "presets": {"hero": {"w": 1000}}}}
    err = raises_naming("variants.presets.hero.w", raw)
    assert "variants.widths" in str(err)


def test_preset_unknown_key_is_named() -> None:
    """Preset tables are checked key by key like sections."""
    raises_naming("variants.presets.hero.width", {"variants": {"presets": {"hero": {"width": 320}}}})


def test_short_token_is_named_by_its_name() -> None:
    """Bearer tokens shorter than 16 characters are refused (naming which one)."""
    raises_naming("auth.tokens.blog", {"auth": {"tokens": {"shop": TOKEN, "blog": "short-token"}}})
    raises_naming("auth.tokens.shop", {"auth": {"tokens": {"shop": "a" * 15}}})


def test_token_of_exactly_16_characters_is_accepted() -> None:
    """16 characters is the documented minimum, so it is allowed."""
    s = parse_settings({"auth": {"tokens": {"shop": TOKEN}}}, Path("/srv"))
    assert s.auth.tokens == {"shop": TOKEN}


def test_token_names_secrets_and_admins_are_checked() -> None:
    """A name is an identity: sane characters; one secret per name; admins must be token names."""
    raises_naming("auth.tokens.sh op", {"auth": {"tokens": {"sh op": TOKEN}}})
    for folder_name in ("..", ".", ".tmp-x", "-shop"):  # a name is a folder in the store (refs/<id>/<name>/)
        raises_naming(f"auth.tokens.{folder_name}", {"auth": {"tokens": {folder_name: TOKEN}}})
    assert "auth.tokens.shop" in str(
        raises_naming("auth.tokens.blog", {"auth": {"tokens": {"shop": TOKEN, "blog": TOKEN}}})
    )
    raises_naming("auth.tokens", {"auth": {"tokens": [TOKEN]}})
    raises_naming("auth.admins", {"auth": {"tokens": {"shop": TOKEN}, "admins": ["ops"]}})
    s = parse_settings({"auth": {"tokens": {"shop": TOKEN, "ops": "b" * 20}, "admins": ["ops"]}}, Path("/srv"))
    assert s.auth.admins == ("ops",)


def test_the_old_unnamed_token_list_stops_start_up_saying_how_to_migrate() -> None:
    err = raises_naming("auth.upload_tokens", {"auth": {"upload_tokens": [TOKEN]}})
    assert "auth.tokens = { app =" in str(err) and TOKEN not in str(err)  # no secret in the message
    assert parse_settings({"auth": {"upload_tokens": []}}, Path("/srv")).auth.tokens == {}


def test_dprs_must_include_one() -> None:
    """dpr=1 is the base density and cannot be left out."""
    raises_naming("variants.dprs", {"variants": {"dprs": [2, 3]}})


def test_builtin_presets_off_the_lists_are_left_out_but_written_ones_refused() -> None:
    """With snapping off, without a presets table the built-in presets that fit the size lists apply;
    a written preset asking for a width, format or quality off the lists stops start-up."""
    s = parse_settings({"variants": {"widths": [320, 800], "snap": "off"}}, Path("/srv"))
    assert sorted(s.variants.presets) == ["medium", "small"]
    raw = {"variants": {"formats": ["jpeg"], "presets": {"hero": {"w": 320, "fmt": "webp"}}}}
    assert "variants.formats" in str(raises_naming("variants.presets.hero.fmt", raw))
    raw = {"variants": {"qualities": [80], "snap": "off", "presets": {"hero": {"w": 320, "q": 90}}}}
    assert "variants.qualities" in str(raises_naming("variants.presets.hero.q", raw))
    raises_naming("variants.presets.hero", {"variants": {"presets": {"hero": {"fit": "cover"}}}})


NEXT_WIDTHS = [640, 750, 828, 1080, 1200, 1920, 2048, 3840]  # Next.js 16's deviceSizes


def test_snapping_keeps_every_preset_when_the_widths_are_a_frameworks_list() -> None:
    """With snap = "up" (the default) presets off the lists start (they snap like requests, see
    test_variants), built-in and written alike; only a format off its list still stops start-up."""
    s = parse_settings({"variants": {"widths": NEXT_WIDTHS}}, Path("/srv"))
    assert s.variants.snap == "up"
    assert sorted(s.variants.presets) == ["large", "medium", "small", "thumb"]
    raw = {"variants": {"widths": NEXT_WIDTHS, "qualities": [75], "presets": {"hero": {"w": 1000, "q": 90}}}}
    assert parse_settings(raw, Path("/srv")).variants.presets["hero"].w == 1000
    raw = {"variants": {"formats": ["jpeg"], "presets": {"hero": {"w": 1000, "fmt": "webp"}}}}
    raises_naming("variants.presets.hero.fmt", raw)
    raises_naming("variants.snap", {"variants": {"snap": "down"}})


def test_working_sizes_may_be_empty_but_allow_lists_may_not() -> None:
    """render.working_sizes = [] turns working copies off; an empty allow-list would allow nothing."""
    assert parse_settings({"render": {"working_sizes": []}}, Path("/srv")).render.working_sizes == ()
    raises_naming("variants.widths", {"variants": {"widths": []}})
    raises_naming("sanitize.formats", {"sanitize": {"formats": []}})


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


def test_env_table_override_sets_the_tokens(tmp_path: Path) -> None:
    """A TOML inline table in an env var becomes the named tokens."""
    s = load_settings(write(tmp_path, ""), {"PROXY_AUTH__TOKENS": f'{{ shop = "{TOKEN}", blog = "{"b" * 20}" }}'})
    assert s.auth.tokens == {"shop": TOKEN, "blog": "b" * 20}


def test_env_value_that_is_not_toml_is_taken_as_a_string(tmp_path: Path) -> None:
    """PROXY_SERVER__HOST=0.0.0.0 is not a TOML value, so it is used as the plain string."""
    s = load_settings(write(tmp_path, ""), {"PROXY_SERVER__HOST": "0.0.0.0"})
    assert s.server.host == "0.0.0.0"


def test_env_override_is_validated_like_the_file(tmp_path: Path) -> None:
    """A bad value from the environment is refused with the dotted key, like a bad file value."""
    with pytest.raises(ConfigError, match=r"^limits\.max_pixels:"):
        load_settings(write(tmp_path, ""), {"PROXY_LIMITS__MAX_PIXELS": "-5"})
    with pytest.raises(ConfigError, match=r"^auth\.tokens\.shop:"):
        load_settings(write(tmp_path, ""), {"PROXY_AUTH__TOKENS": '{ shop = "tiny" }'})


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
