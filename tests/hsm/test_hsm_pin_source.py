"""PIN sources: file and environment, never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from hsm import PinSource, PinSourceError


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSM_TEST_PIN", "s3cret-env")
    src = PinSource.from_spec("env:HSM_TEST_PIN")
    assert src.read() == "s3cret-env"
    assert "s3cret" not in repr(src) and "s3cret" not in str(src)
    assert src.spec == "env:HSM_TEST_PIN"


def test_env_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HSM_TEST_PIN_MISSING", raising=False)
    with pytest.raises(PinSourceError):
        PinSource.from_spec("env:HSM_TEST_PIN_MISSING").read()


def test_file_forms(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("s3cret-file\r\n")
    for spec in (f"file:{pin}", f"file://{pin}"):
        src = PinSource.from_spec(spec)
        assert src.read() == "s3cret-file"
        assert "s3cret" not in repr(src)
    # read afresh each time
    pin.write_text("changed\n")
    assert PinSource.from_file(pin).read() == "changed"


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PinSourceError):
        PinSource.from_spec(f"file:{tmp_path / 'absent'}").read()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(PinSourceError):
        PinSource.from_file(empty).read()


@pytest.mark.parametrize("spec", ["", "1234", "pin:1234", "env:", "file:", "value:1234"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(PinSourceError) as info:
        PinSource.from_spec(spec)
    assert "1234" not in str(info.value)


def test_value_hidden_and_unpicklable() -> None:
    src = PinSource.from_value("s3cret-value")
    assert src.read() == "s3cret-value"
    assert "s3cret" not in repr(src) and "s3cret" not in src.spec
    with pytest.raises(TypeError):
        pickle.dumps(src)


def test_file_source_pickles(tmp_path: Path) -> None:
    src = PinSource.from_file(tmp_path / "p")
    assert pickle.loads(pickle.dumps(src)) == src
