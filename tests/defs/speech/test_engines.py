"""Proves the speech-to-text engine registry and the engines behind it.

The registry lists its engines read-only (`available_engines()` is what settings validate
CSCOACH_STT_ENGINE against), imports no speech library until an engine is built, gives every
engine the resource's settings, and rejects an unknown name with the list of known ones. Each
engine records a model NAME: `tiny.en` for the bundled model (real faster-whisper), the
configured name for a downloaded model, the folder name for a local model; the resource loads
one engine per process. `split_at_pauses` cuts a Whisper segment at pauses longer than 0.8 s;
openai-whisper refuses a CTranslate2 model (or the missing extra) with a clear message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from cscoach_pipeline.defs.speech.engines import (
    ENGINES,
    EngineSettings,
    FasterWhisperEngine,
    OpenAIWhisperEngine,
    available_engines,
    create_engine,
)
from cscoach_pipeline.defs.speech.engines.base import split_at_pauses
from cscoach_pipeline.defs.speech.engines.models import bundled_model_path, resolve_whisper_model
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource

HEAVY_LIBRARIES = ("faster_whisper", "ctranslate2", "torch", "whisper")


# ------------------------------------------------------------------------------- registry


def test_available_engines_lists_the_registry_sorted() -> None:
    assert available_engines() == ("faster-whisper", "openai-whisper")
    assert available_engines() == tuple(sorted(ENGINES))


def test_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        ENGINES["whisper-cpp"] = FasterWhisperEngine.from_settings  # type: ignore[index]


def test_importing_the_registry_loads_no_speech_library() -> None:
    # A fresh interpreter: this test process may already hold faster_whisper from other tests.
    code = (
        "import sys\n"
        "from cscoach_pipeline.defs.speech.engines import available_engines\n"
        "available_engines()\n"
        f"print(','.join(m for m in {HEAVY_LIBRARIES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == ""


@pytest.mark.parametrize("name", ["whisper-cpp", "", "Faster-Whisper"])
def test_an_unknown_engine_fails_with_the_known_ones(name: str) -> None:
    expected = f"unknown CSCOACH_STT_ENGINE {name!r}: choose one of faster-whisper, openai-whisper"

    with pytest.raises(ValueError) as from_registry:
        create_engine(name, EngineSettings())
    with pytest.raises(ValueError) as from_resource:
        SpeechToTextResource(engine=name).load()

    assert str(from_registry.value) == str(from_resource.value) == expected


# ------------------------------------------------- engines with their library stubbed out


@pytest.fixture
def fake_libraries(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Fake `faster_whisper` and `whisper` modules that record how each model was loaded, so
    no model is downloaded or read."""
    loaded: dict[str, list[Any]] = {"faster-whisper": [], "openai-whisper": []}

    class FakeWhisperModel:  # stands in for faster_whisper.WhisperModel
        def __init__(self, model: str, **kwargs: Any) -> None:
            loaded["faster-whisper"].append((model, kwargs))

    class FakeBatchedPipeline:  # stands in for faster_whisper.BatchedInferencePipeline
        def __init__(self, model: FakeWhisperModel) -> None:
            loaded["faster-whisper-batched"].append(model)

    loaded["faster-whisper-batched"] = []
    faster = ModuleType("faster_whisper")
    faster.WhisperModel = FakeWhisperModel  # type: ignore[attr-defined]
    faster.BatchedInferencePipeline = FakeBatchedPipeline  # type: ignore[attr-defined]
    whisper = ModuleType("whisper")

    def load_model(model: str, **kwargs: Any) -> SimpleNamespace:
        loaded["openai-whisper"].append((model, kwargs))
        return SimpleNamespace(is_multilingual=True)

    whisper.load_model = load_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "faster_whisper", faster)
    monkeypatch.setitem(sys.modules, "whisper", whisper)
    return loaded


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("model", ["small", "large-v3-turbo"])
def test_a_downloaded_model_is_loaded_and_recorded_by_its_name(
    engine: str,
    model: str,
    fake_libraries: dict[str, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # so no folder of that name can exist by accident

    built = create_engine(engine, EngineSettings(model=model))

    assert built.name == engine  # the registry key is the engine's own name
    assert built.model_name == model
    assert [source for source, _ in fake_libraries[engine]] == [model]


def test_faster_whisper_gets_the_resource_settings(fake_libraries: dict[str, list[Any]]) -> None:
    built = create_engine(
        "faster-whisper",
        EngineSettings(
            model="small", compute_type="float32", beam_size=2, device="cpu", cpu_threads=3,
            batch_size=4, batch_beam_size=2, batch_min_audio_s=30.0,
        ),
    )  # fmt: skip

    assert isinstance(built, FasterWhisperEngine)
    assert (built.beam_size, built.batch_size, built.batch_beam_size) == (2, 4, 2)
    assert fake_libraries["faster-whisper"] == [
        ("small", {"device": "cpu", "compute_type": "float32", "cpu_threads": 3})
    ]
    assert len(fake_libraries["faster-whisper-batched"]) == 1
    assert built.decoding_for(29.9) == "sequential"
    assert built.decoding_for(30.0) == "batched"


@pytest.mark.parametrize(
    ("model", "device", "expected"),
    [("small", "cpu", 8), ("large-v3-turbo", "cpu", 8), ("tiny.en", "cpu", 1),
     ("tiny", "cpu", 1), ("tiny.en", "cuda", 16), ("small", "cuda", 16)],
)  # fmt: skip
def test_auto_batch_size_batches_all_but_tiny_on_cpu(
    model: str, device: str, expected: int, fake_libraries: dict[str, list[Any]]
) -> None:
    built = create_engine("faster-whisper", EngineSettings(model=model, device=device))

    assert built.batch_size == expected
    assert (len(fake_libraries["faster-whisper-batched"]) == 1) == (expected > 1)
    assert built.decoding_for(3600.0) == ("batched" if expected > 1 else "sequential")


def test_batching_off_decodes_every_length_sequentially(
    fake_libraries: dict[str, list[Any]],
) -> None:
    built = create_engine("faster-whisper", EngineSettings(model="small", batch_size=1))

    assert fake_libraries["faster-whisper-batched"] == []
    assert built.decoding_for(3600.0) == "sequential"


@pytest.mark.parametrize(("gpus", "device"), [(0, "cpu"), (1, "cuda")])
def test_auto_device_is_a_visible_gpu_else_the_cpu(
    gpus: int, device: str, fake_libraries: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cscoach_pipeline.defs.speech.engines import faster_whisper

    monkeypatch.setattr(faster_whisper, "visible_cuda_devices", lambda: gpus)

    built = create_engine("faster-whisper", EngineSettings(model="small"))

    assert built.device == device
    assert fake_libraries["faster-whisper"][0][1]["device"] == device
    assert built.batch_size == (16 if gpus else 8)


def test_openai_whisper_gets_the_resource_settings(fake_libraries: dict[str, list[Any]]) -> None:
    built = create_engine("openai-whisper", EngineSettings(model="small", beam_size=3))

    assert isinstance(built, OpenAIWhisperEngine)
    assert built.beam_size == 3
    assert built.cpu_threads == 0
    assert fake_libraries["openai-whisper"] == [("small", {"device": "cpu"})]


def test_a_local_checkpoint_is_recorded_by_its_file_name(
    fake_libraries: dict[str, list[Any]], tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoints" / "tiny.en.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")

    built = OpenAIWhisperEngine(str(checkpoint))

    assert built.model_name == "tiny.en.pt"
    assert fake_libraries["openai-whisper"] == [(str(checkpoint.resolve()), {"device": "cpu"})]


# ------------------------------------------------------------------ real faster-whisper


def test_the_default_resource_loads_the_bundled_model_once_as_tiny_en() -> None:
    resource = SpeechToTextResource()

    engine = resource.load()

    assert engine.name == "faster-whisper"
    assert engine.model_name == resource.model_name == "tiny.en"
    assert resource.model_path == bundled_model_path()  # the path is still what gets loaded
    assert SpeechToTextResource().load() is engine  # once per process


def test_a_local_model_folder_is_recorded_by_its_folder_name(tmp_path: Path) -> None:
    bundled = Path(resolve_whisper_model(""))
    local = tmp_path / "models" / "whisper-tiny-ct2"
    local.mkdir(parents=True)
    for part in bundled.iterdir():  # the bundled weights under another folder name
        (local / part.name).symlink_to(part)

    engine = FasterWhisperEngine(str(local))

    assert engine.model_name == "whisper-tiny-ct2"


# ----------------------------------------------------------------------- split_at_pauses


def _word(text: str, start: float, end: float, probability: float) -> SimpleNamespace:
    return SimpleNamespace(word=text, start=start, end=end, probability=probability)


def _whisper_segment(words: list[SimpleNamespace] | None, **extra: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "start": 0.0,
        "end": 30.0,  # Whisper's decoding window, not the speech
        "text": " Hello there. My card is blocked.",
        "avg_logprob": -0.25,
        "no_speech_prob": 0.02,
        "compression_ratio": 1.1,
        "words": words,
    }
    fields.update(extra)
    return SimpleNamespace(**fields)


def test_split_at_pauses_cuts_long_pauses_and_times_by_words() -> None:
    words = [
        _word(" Hello", 1.0, 1.4, 0.9),
        _word(" there.", 1.9, 2.2, 0.7),  # 0.5 s pause: same utterance
        _word(" My", 3.4, 3.6, 0.8),  # 1.2 s pause: new utterance
        _word(" card", 3.7, 4.0, 0.6),
        _word(" is", 4.1, 4.2, 1.0),
        _word(" blocked.", 5.5, 6.0, 0.4),  # 1.3 s pause: new utterance
    ]

    pieces = split_at_pauses(_whisper_segment(words))

    assert [p.text for p in pieces] == ["Hello there.", "My card is", "blocked."]
    assert [(p.start_s, p.end_s) for p in pieces] == [(1.0, 2.2), (3.4, 4.2), (5.5, 6.0)]
    assert [p.word_confidence for p in pieces] == pytest.approx([0.8, 0.8, 0.4])
    for piece in pieces:
        assert (piece.avg_logprob, piece.no_speech_prob, piece.compression_ratio) == (
            -0.25,
            0.02,
            1.1,
        )


def test_split_at_pauses_keeps_a_continuous_segment_whole() -> None:
    words = [_word(" Yes,", 0.5, 0.8, 0.9), _word(" please.", 1.5, 1.9, 0.9)]  # 0.7 s pause

    pieces = split_at_pauses(_whisper_segment(words))

    assert len(pieces) == 1
    assert (pieces[0].start_s, pieces[0].end_s, pieces[0].text) == (0.5, 1.9, "Yes, please.")


@pytest.mark.parametrize("words", [None, []])
def test_split_at_pauses_without_word_timings_uses_segment_times(
    words: list[SimpleNamespace] | None,
) -> None:
    pieces = split_at_pauses(_whisper_segment(words, start=2.0, end=4.5))

    assert len(pieces) == 1
    assert (pieces[0].start_s, pieces[0].end_s) == (2.0, 4.5)
    assert pieces[0].text == " Hello there. My card is blocked."
    assert pieces[0].word_confidence is None


# ---------------------------------------------------------------------------- openai-whisper


def test_openai_whisper_refuses_a_ctranslate2_model_clearly() -> None:
    model_dir = resolve_whisper_model("")

    with pytest.raises(RuntimeError) as caught:
        OpenAIWhisperEngine(model_dir)

    message = str(caught.value)
    # Without the optional package installed, the missing extra is reported first; with it,
    # the CTranslate2 directory is refused. Both are readable, actionable messages.
    assert ("CTranslate2" in message and model_dir in message) or (
        "optional extra" in message and "make setup-openai-whisper" in message
    )


def test_openai_whisper_without_the_extra_names_the_make_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "whisper", None)  # `import whisper` now raises ImportError

    with pytest.raises(RuntimeError, match="make setup-openai-whisper"):
        OpenAIWhisperEngine("small")
