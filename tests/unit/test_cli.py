"""The command line: a bad config stops start-up with a message naming the key; the key reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from proxy.config import Settings
from proxy.configkeys import nested_tables, reference
from support.corpus import REPO


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | (env or {}),
    )


def test_check_config_accepts_the_shipped_config() -> None:
    result = run("check-config", "--config", str(REPO / "config.toml"))
    assert result.returncode == 0, result.stderr
    assert "config ok" in result.stdout and "storage: local" in result.stdout


def test_bad_values_stop_serve_naming_the_key(tmp_path: Path) -> None:
    cases = {
        "[limits]\nmax_pixels = -5\n": "limits.max_pixels",
        "[limits]\nmax_pixel = 5\n": "limits.max_pixel",
        '[variants]\nformats = ["jpeg", "bmp"]\n': "variants.formats[1]",
        '[cache]\nmemory_bytes = "lots"\n': "cache.memory_bytes",
        "[nonsense]\n": "nonsense",
    }
    for text, key in cases.items():
        config = tmp_path / "config.toml"
        config.write_text(text)
        result = run("serve", "--config", str(config), "--port", "0")
        assert result.returncode == 2, (text, result.stdout, result.stderr)
        assert key in result.stderr, (text, result.stderr)


def test_env_override_is_validated_too(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    result = run("serve", "--config", str(config), env={"PROXY_LIMITS__MAX_FRAMES": "0"})
    assert result.returncode == 2 and "limits.max_frames" in result.stderr


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    result = run("check-config", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2 and "not found" in result.stderr


def test_config_reference_prints_the_generated_key_tables() -> None:
    """`config-reference` needs no config file and prints the tables README.md carries (the README
    side is checked in test_config); `config-reference storage.s3` the nested table's."""
    for table in (None, *nested_tables(Settings)):
        result = run("config-reference", *([table] if table else []), env={"PROXY_LIMITS__MAX_PIXELS": "-5"})
        assert result.returncode == 0, result.stderr
        assert result.stdout == reference(Settings, table)
    assert "| `server.port` | `8000` |" in run("config-reference").stdout


def test_config_reference_refuses_an_unknown_table() -> None:
    result = run("config-reference", "storage.s4")
    assert result.returncode == 2 and "storage.s4" in result.stderr
