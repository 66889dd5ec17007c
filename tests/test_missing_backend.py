"""On Linux plain `pip install -e .` brings no MLX backend (mlx-lm asks for mlx on macOS only): `mlx-shim serve`
then says which extra to install, with exit 1, instead of a traceback."""

from __future__ import annotations

import sys

import pytest

from shim import cli


def test_serve_without_mlx_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "mlx.core", None)  # `import mlx.core` now raises ImportError
    monkeypatch.setattr(sys, "platform", "linux")
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: MLX is not installed or has no backend here")
    assert "pip install -e '.[cuda]' for an NVIDIA GPU, or '.[cpu]'" in err
    assert "Traceback" not in err
