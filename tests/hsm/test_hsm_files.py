"""Private files: exclusive creation, no symlink followed, 0600; and PIN file warnings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hsm import PinSource
from hsm.files import OutputExists, private_dir, private_writer, write_file


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_new_file_is_private_and_existing_one_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.pem"
    write_file(out, b"one")
    assert out.read_bytes() == b"one" and _mode(out) == 0o600
    with pytest.raises(OutputExists, match="--force"):
        write_file(out, b"two")
    assert out.read_bytes() == b"one"
    write_file(out, "three", force=True)
    assert out.read_text() == "three" and _mode(out) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pem"]  # no temporary left


@pytest.mark.parametrize("force", [False, True])
def test_a_planted_symlink_never_reaches_its_victim(tmp_path: Path, force: bool) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    victim.chmod(0o644)
    link = tmp_path / "out"
    link.symlink_to(victim)
    if force:
        write_file(link, b"new", force=True)
        assert not link.is_symlink() and link.read_bytes() == b"new"
    else:
        with pytest.raises(OutputExists):
            write_file(link, b"new")
        assert link.is_symlink()
    assert victim.read_text() == "precious" and _mode(victim) == 0o644


def test_dangling_symlink_is_not_followed(tmp_path: Path) -> None:
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "created-through-link")
    with pytest.raises(OutputExists):
        write_file(link, b"x")
    assert not (tmp_path / "created-through-link").exists()


def test_writer_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    out = tmp_path / "rejects.csv"
    with pytest.raises(RuntimeError), private_writer(out, text=True) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_private_dir_fixes_a_loose_mode_and_refuses_a_symlink(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    private_dir(d)
    assert _mode(d) == 0o700
    assert _mode(private_dir(tmp_path / "a" / "b")) == 0o700
    (tmp_path / "ln").symlink_to(d)
    with pytest.raises(NotADirectoryError):
        private_dir(tmp_path / "ln")


def test_pin_file_readable_by_others_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = tmp_path / "open.pin"
    pin.write_text("123456\n")
    os.chmod(pin, 0o644)
    assert PinSource.from_spec(f"file:{pin}").read() == "123456"
    err = capsys.readouterr().err
    assert "readable by other users" in err and str(pin) in err and "123456" not in err
    private = tmp_path / "private.pin"
    private.write_text("654321\n")
    os.chmod(private, 0o600)
    assert PinSource.from_spec(f"file:{private}").read() == "654321"
    assert capsys.readouterr().err == ""
