"""The SoftHSM2 token directory of a home (`HOME/hsm/tokens`) is a real 0700 directory in
the home: a symlink planted there (or at `HOME/hsm`) is refused, never followed, so the
tokens (the CA's key among them) are never kept wherever it points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hsmtest_consts import SO_PIN, USER_PIN  # type: ignore[import-not-found]

from hsm.errors import HsmError
from hsm.module import SOFTHSM2_CONF_ENV
from hsm.softhsm import ensure_softhsm_config, init_token, softhsm_conf_path

MYNACARD = str(Path(sys.executable).parent / "mynacard")


def _mode(path: Path) -> int:
    return os.lstat(path).st_mode & 0o777


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(SOFTHSM2_CONF_ENV, raising=False)  # restored after the test
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    d = tmp_path / "elsewhere"
    d.mkdir()
    d.chmod(0o755)
    return d


@pytest.mark.parametrize("planted", ("hsm", "hsm/tokens"))
def test_a_symlinked_token_directory_is_refused(home: Path, elsewhere: Path,
                                                planted: str) -> None:
    link = home / planted
    link.parent.mkdir(mode=0o700, exist_ok=True)
    link.symlink_to(elsewhere)
    with pytest.raises(HsmError, match="is a symlink or not a directory"):
        ensure_softhsm_config(home)
    with pytest.raises(HsmError, match="is a symlink or not a directory"):
        init_token(home, "victim", SO_PIN, USER_PIN)
    assert link.is_symlink() and list(elsewhere.iterdir()) == []
    assert _mode(elsewhere) == 0o755
    assert not os.path.lexists(softhsm_conf_path(home))
    link.unlink()  # without the link: a private directory in the home
    conf = ensure_softhsm_config(home)
    assert _mode(home / "hsm") == 0o700 and _mode(home / "hsm" / "tokens") == 0o700
    assert _mode(conf) == 0o600
    assert f"directories.tokendir = {(home / 'hsm' / 'tokens').resolve()}\n" in conf.read_text()


def test_center_init_refuses_a_symlinked_token_directory(home: Path, elsewhere: Path) -> None:
    (home / "hsm").mkdir(mode=0o700)
    (home / "hsm" / "tokens").symlink_to(elsewhere)
    env = {k: v for k, v in os.environ.items()
           if k not in (SOFTHSM2_CONF_ENV, "MYNACARD_DB", "MYNACARD_STORE")}
    env.update(MYNACARD_OPERATOR="alice", MYNACARD_DEVELOPMENT="1")
    res = subprocess.run([MYNACARD, "--home", str(home), "center", "init", "--master-key",
                          "test", "--shards", "1"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert "tokens is a symlink or not a directory" in res.stderr
    assert list(elsewhere.iterdir()) == [] and _mode(elsewhere) == 0o755
    assert not os.path.lexists(softhsm_conf_path(home))
    assert not (home / "ca").exists()
