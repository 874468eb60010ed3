"""proxy.credentials: the admin token a service without auth.tokens generates, keeps and reads back."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from proxy import credentials
from proxy.config import Settings, parse_settings
from proxy.configkeys import ConfigError

TOKEN = "configured-token-0123456789"


def settings(folder: Path, **sections: dict[str, object]) -> Settings:
    return parse_settings({"storage": {"path": "data"}} | sections, folder)


def test_first_start_makes_a_private_token_beside_the_data_and_later_starts_read_it(tmp_path: Path) -> None:
    base = settings(tmp_path)
    path = tmp_path / "data" / ".admin-token"
    assert credentials.token_path(base) == path and not path.exists()
    first, created = credentials.ensure(base)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = first.auth.tokens[credentials.ADMIN]
    assert first.auth.admins == (credentials.ADMIN,) and len(secret) >= 32
    assert path.read_text() == secret + "\n"
    again, created_again = credentials.ensure(base)
    assert not created_again and again.auth == first.auth
    assert credentials.known(base).auth == first.auth  # what the CLI sends
    assert sorted(p.name for p in path.parent.iterdir()) == [".admin-token"]  # no draft left behind


def test_configured_tokens_replace_the_generated_one(tmp_path: Path) -> None:
    base = settings(tmp_path, auth={"tokens": {"app": TOKEN}})
    assert credentials.token_path(base) is None
    assert credentials.ensure(base) == (base, False) and credentials.known(base) == base
    assert not (tmp_path / "data").exists()


def test_before_the_first_start_the_cli_has_no_token(tmp_path: Path) -> None:
    base = settings(tmp_path)
    assert credentials.known(base) == base and not (tmp_path / "data").exists()


def test_auth_token_file_names_the_place_also_for_s3(tmp_path: Path) -> None:
    s3 = {"backend": "s3", "s3": {"bucket": "images"}}
    assert credentials.token_path(settings(tmp_path, storage=s3)) is None
    with pytest.raises(ConfigError, match=r"^auth\.tokens: required with storage\.backend = \"s3\""):
        credentials.ensure(settings(tmp_path, storage=s3))
    placed = settings(tmp_path, storage=s3, auth={"token_file": "state/token"})
    made, created = credentials.ensure(placed)
    assert created and (tmp_path / "state" / "token").read_text().strip() == made.auth.tokens[credentials.ADMIN]


def test_a_token_file_others_may_read_is_refused(tmp_path: Path) -> None:
    base = settings(tmp_path)
    credentials.ensure(base)
    path = tmp_path / "data" / ".admin-token"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="open to other users .*chmod 600"):
        credentials.ensure(base)


def test_a_file_without_a_token_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "data" / ".admin-token"
    path.parent.mkdir()
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="holds no admin token"):
        credentials.ensure(settings(tmp_path))
    assert path.read_text() == "short\n"


def test_a_place_that_cannot_be_written_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="cannot (read|write) the admin token"):  # root may write anywhere else
        credentials.ensure(settings(tmp_path, auth={"token_file": "blocked/token"}))


def test_workers_starting_at_once_agree_on_one_token(tmp_path: Path) -> None:
    base = settings(tmp_path)
    results: list[tuple[Settings, bool]] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        results.append(credentials.ensure(base))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({made.auth.tokens[credentials.ADMIN] for made, _ in results}) == 1
    assert sum(created for _, created in results) == 1
