"""Proves how a consultation's agent/team/customer context is gathered: sidecar JSON (flat or
under "metadata", common aliases), S3-style object metadata, folder patterns, precedence
sidecar > object metadata > key pattern, and invalid values dropped with a warning instead of
failing the consultation; personal data in free-text fields redacted and ids carrying it
dropped, lists/objects/booleans rejected, number ids kept, and no warning repeating raw PII."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cscoach_pipeline.defs.ingest.context import (
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


@pytest.mark.parametrize(
    ("field", "value", "stored", "kind"),
    [
        ("agent_name", "Kim 010-1234-5678", "Kim [PHONE]", "a phone number"),
        ("team", "cards (lead: kim@example.com)", "cards (lead: [EMAIL])", "an email address"),
        ("channel", "phone 900101-1234567", "phone [RRN]", "a resident registration number"),
        ("call_direction", "Inbound 4111 1111 1111 1111", "inbound [CARD]", "a card number"),
    ],
)
def test_pii_in_free_text_fields_is_redacted(
    field: str, value: str, stored: str, kind: str
) -> None:
    context, sources, warnings = merge_context(
        sidecar={field: value}, object_metadata={}, from_key={}
    )
    assert getattr(context, field) == stored
    assert sources == {field: "sidecar"}
    assert warnings == [f"redacted {kind} from {field} (sidecar)"]


def test_free_text_field_that_is_only_pii_is_dropped() -> None:
    context, sources, warnings = merge_context(
        sidecar={"team": "010-1234-5678"}, object_metadata={}, from_key={"agent_name": "a@b.io"}
    )
    assert context.team is None and context.agent_name is None and sources == {}
    assert warnings == [
        "ignored agent_name from key_pattern: it holds only an email address",
        "ignored team from sidecar: it holds only a phone number",
    ]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("010-1234-5678", "a phone number"),
        ("kim@example.com", "an email address"),
        ("900101-1234567", "a resident registration number"),
        ("4111111111111111", "a card number"),
    ],
)
def test_id_fields_holding_pii_are_dropped(value: str, kind: str) -> None:
    context, sources, warnings = merge_context(
        sidecar={"customer_id": value, "agent_id": "A-7"}, object_metadata={}, from_key={}
    )
    assert context.customer_id is None and context.agent_id == "A-7"
    assert sources == {"agent_id": "sidecar"}
    assert warnings == [
        f"ignored customer_id from sidecar: it holds {kind}, and an id must not carry personal data"
    ]


def test_ordinary_ids_and_numbers_stay() -> None:
    context, _, warnings = merge_context(
        sidecar={"agent_id": 7, "customer_id": "100234567", "team": "Cards 2"},
        object_metadata={},
        from_key={},
    )
    # A long customer number is the id itself, not an account number to hide.
    assert (context.agent_id, context.customer_id, context.team) == ("7", "100234567", "Cards 2")
    assert warnings == []


@pytest.mark.parametrize(
    ("value", "what"),
    [(["cards", "loans"], "a list"), ({"name": "cards"}, "an object"), (True, "true/false")],
)
def test_non_scalar_values_are_dropped(value: object, what: str) -> None:
    context, sources, warnings = merge_context(
        sidecar={"team": value, "agent_name": "Kim"}, object_metadata={}, from_key={}
    )
    assert context.team is None and context.agent_name == "Kim"
    assert sources == {"agent_name": "sidecar"}
    assert warnings == [f"ignored team from sidecar: expected text or a number, got {what}"]


def test_warnings_never_carry_the_raw_value() -> None:
    phone, email = "010-9876-5432", "lee@example.com"
    _, _, warnings = merge_context(
        sidecar={
            "recorded_at": f"call {phone}",
            "agent_name": f"Lee {email}",
            "customer_id": phone,
            "team": [phone],
        },
        object_metadata={},
        from_key={},
    )
    assert len(warnings) == 4
    text = " ".join(warnings)
    for raw in (phone, email, "9876", "5432", "lee@"):
        assert raw not in text
    assert "ignored recorded_at='call [PHONE]' from sidecar" in text
