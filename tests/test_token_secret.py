"""The development token secret (issue 12, item 2): one random secret per warehouse directory, 0600,
shared by the API and ``oddsforge token``; no constant secret; tokens live at most the maximum."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest

from api.app import create_app
from api.auth import mint_token
from api.settings import ApiSettings
from cli.main import main
from stores.lake import Lake
from stores.layout import JWT_SECRET_FILE
from stores.secrets import SecretFileError, dev_jwt_secret
from tests.test_api import serve

OLD_PUBLIC_SECRET = "oddsforge-development-secret-do-not-use-in-production"
"""The constant ``api/settings.py`` signed development tokens with before issue 12."""


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh warehouse directory as the environment's, in development, without a configured secret."""
    monkeypatch.delenv("ODDSFORGE_JWT_SECRET", raising=False)
    monkeypatch.delenv("ODDSFORGE_ENV", raising=False)
    monkeypatch.delenv("ODDSFORGE_TOKEN_MAX_HOURS", raising=False)
    monkeypatch.setenv("ODDSFORGE_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    return tmp_path / "warehouse"


@pytest.fixture
def api_url(data_dir: Path) -> Iterator[str]:
    """The API as ``oddsforge api`` builds it from the environment (over an empty lake)."""
    app = create_app(ApiSettings.from_env(), lake=Lake(root=str(data_dir.parent / "lake")))
    with serve(app) as url:
        yield url


def _status(url: str, token: str) -> int:
    return httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def _cli_token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["token", *args])
    out, err = capsys.readouterr()
    return code, out.strip(), err


def test_a_token_signed_with_the_old_constant_is_refused(api_url: str) -> None:
    assert _status(api_url, mint_token("alice", OLD_PUBLIC_SECRET)) == 401


def test_a_token_from_oddsforge_token_is_accepted_over_the_same_data_dir(
    data_dir: Path, api_url: str, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, token, _ = _cli_token(capsys, "alice")
    assert code == 0
    assert _status(api_url, token) == 200
    # Another data directory has a secret of its own: its tokens mean nothing here.
    other = ApiSettings.from_env({"ODDSFORGE_WAREHOUSE_DIR": str(tmp_path_factory.mktemp("other"))})
    assert other.jwt_secret != ApiSettings.from_env().jwt_secret
    assert _status(api_url, mint_token("alice", other.jwt_secret)) == 401


def test_the_secret_is_random_private_and_made_once(data_dir: Path) -> None:
    settings = ApiSettings.from_env()
    path = data_dir / JWT_SECRET_FILE
    assert settings.jwt_secret_file == path and settings.uses_dev_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(settings.jwt_secret) >= 64
    assert ApiSettings.from_env().jwt_secret == settings.jwt_secret  # read back, not regenerated
    assert sorted(p.name for p in data_dir.iterdir()) == [JWT_SECRET_FILE]  # no temporary file left


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    """API workers and a CLI racing to create the file all read the one that won."""
    path = tmp_path / "warehouse" / JWT_SECRET_FILE
    start = threading.Barrier(8)

    def racer(_: int) -> str:
        start.wait()
        return dev_jwt_secret(path)

    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(racer, range(8)))
    assert seen == {path.read_text().strip()}
    assert [p.name for p in path.parent.iterdir()] == [JWT_SECRET_FILE]


def test_a_secret_readable_by_others_is_refused(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ApiSettings.from_env()
    (data_dir / JWT_SECRET_FILE).chmod(0o644)
    with pytest.raises(SecretFileError, match="mode 0644"):
        ApiSettings.from_env()
    code, out, err = _cli_token(capsys, "alice")
    assert (code, out) == (2, "") and "chmod 600" in err and "Traceback" not in err


def test_production_without_a_secret_refuses_the_cli_too(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ODDSFORGE_ENV", "production")
    code, out, err = _cli_token(capsys, "alice")
    assert (code, out) == (2, "") and "ODDSFORGE_JWT_SECRET must be set" in err
    assert not data_dir.exists()


def test_the_cli_mints_within_the_maximum(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def lifetime(token: str) -> int:
        claims = jwt.decode(token, options={"verify_signature": False})
        return claims["exp"] - claims["iat"]

    assert lifetime(_cli_token(capsys, "alice")[1]) == 24 * 3600  # the maximum by default
    assert lifetime(_cli_token(capsys, "alice", "--ttl", "90m")[1]) == 5400
    assert lifetime(_cli_token(capsys, "alice", "--ttl", "600")[1]) == 600
    code, out, err = _cli_token(capsys, "alice", "--ttl", "25h")
    assert (code, out) == (2, "") and "at most 86400 s" in err
    monkeypatch.setenv("ODDSFORGE_TOKEN_MAX_HOURS", "1")
    assert lifetime(_cli_token(capsys, "alice")[1]) == 3600
    assert _cli_token(capsys, "alice", "--ttl", "2h")[0] == 2
    with pytest.raises(SystemExit):
        main(["token", "alice", "--ttl", "-5m"])
