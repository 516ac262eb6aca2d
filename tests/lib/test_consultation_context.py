"""Proves how a consultation's agent/team/customer context is gathered: sidecar JSON (flat or
under "metadata", common aliases), S3-style object metadata, folder patterns, precedence
sidecar > object metadata > key pattern, and invalid values dropped with a warning instead of
failing the consultation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cscoach_pipeline.lib.consultation_context import (
    fields_from_key,
    merge_context,
    normalise_fields,
    parse_sidecar,
    sidecar_keys,
)


def test_sidecar_fields_and_aliases() -> None:
    data = json.dumps(
        {"metadata": {"Agent-ID": "A-7", "agentName": "Kim", "queue": "cards"}, "direction": "IN"}
    ).encode()
    fields = parse_sidecar(data)
    assert fields == {"agent_id": "A-7", "agent_name": "Kim", "team": "cards",
                      "call_direction": "IN"}  # fmt: skip


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"\xff\xfe\x00"])
def test_bad_sidecar_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="sidecar"):
        parse_sidecar(data)


def test_s3_user_metadata_is_normalised() -> None:
    assert normalise_fields({"x-amz-meta-agent-id": "A1", "Team": "B", "other": "x"}) == {
        "agent_id": "A1",
        "team": "B",
    }


@pytest.mark.parametrize(
    ("key", "pattern", "expected"),
    [
        ("incoming/cards/A-7/2026/call.wav", "incoming/{team}/{agent_id}/",
         {"team": "cards", "agent_id": "A-7"}),
        ("incoming/call.wav", "incoming/{team}/{agent_id}/", {}),
        ("incoming/cards/A-7/call.wav", "", {}),
        ("incoming/phone/cards/x.wav", "incoming/{channel}/{team}/",
         {"channel": "phone", "team": "cards"}),
    ],
)  # fmt: skip
def test_key_pattern(key: str, pattern: str, expected: dict[str, str]) -> None:
    assert fields_from_key(key, pattern) == expected


def test_precedence_and_sources() -> None:
    context, sources, warnings = merge_context(
        sidecar={"agent_id": "from-sidecar", "recorded_at": "2026-11-20T09:30:00+09:00"},
        object_metadata={"agent_id": "from-s3", "customer_id": "C-1"},
        from_key={"agent_id": "from-key", "team": "cards"},
    )
    assert context.agent_id == "from-sidecar"
    assert context.customer_id == "C-1" and context.team == "cards"
    assert context.recorded_at == datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    assert sources == {
        "agent_id": "sidecar",
        "team": "key_pattern",
        "customer_id": "object_metadata",
        "recorded_at": "sidecar",
    }
    assert warnings == []


def test_invalid_value_is_dropped_with_warning() -> None:
    context, sources, warnings = merge_context(
        sidecar={"recorded_at": "last tuesday", "agent_id": "A-1"}, object_metadata={}, from_key={}
    )
    assert context.recorded_at is None and context.agent_id == "A-1"
    assert "recorded_at" not in sources
    assert len(warnings) == 1 and "ignored recorded_at='last tuesday' from sidecar" in warnings[0]


def test_direction_normalised_and_sidecar_names() -> None:
    context, _, _ = merge_context(
        sidecar={"call_direction": "Out"}, object_metadata={}, from_key={}
    )
    assert context.call_direction == "outbound"
    assert sidecar_keys("incoming/a/call.wav") == (
        "incoming/a/call.wav.meta.json",
        "incoming/a/call.meta.json",
    )
