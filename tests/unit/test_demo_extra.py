"""`thumbx demo` without its optional emulator: a one-line error that says what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import structlog

import worker.cli.main as cli


def test_demo_without_the_emulator_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)  # as in the service image: import fails
    try:
        assert cli.main(["demo", "--out", str(tmp_path / "out")]) == 2
    finally:
        structlog.reset_defaults()  # logging was configured onto capsys' stream, closed after this test
    err = capsys.readouterr().err
    assert "pip install 'thumbx[demo]'" in err
    assert err.count("\n") == 1, err
