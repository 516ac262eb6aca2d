"""Proves consultation ids (Dagster partition keys) are stable, safe and readable.

The same object key always gives the same id; ids never contain commas, slashes, spaces,
control characters or "..." (Dagster's partition-range separator); Korean (Hangul) file names
stay readable (NFC, even from NFD input); the readable part is capped (characters, and bytes so
an id fits a folder name); keys that slugify to the same text still get distinct ids through
the hash suffix; the incoming/ prefix is stripped.
A phone number, email, card or RRN in a file name never reaches the id (the readable part is
redacted, the hash still comes from the real key), and `display_key` shows a key with its PII
redacted and its extension kept; keys holding undecoded bytes (surrogates) give valid UTF-8.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata

import pytest
from dagster import DagsterInvalidDefinitionError, StaticPartitionsDefinition

from cscoach_pipeline.defs.ingest.partition_keys import (
    MAX_READABLE_CHARS,
    consultation_id_for,
    display_key,
)

HASH_SUFFIX = re.compile(r"-[0-9a-f]{8}$")

AWKWARD_KEYS = [
    "incoming/team-a/agent 7/call, first.wav",
    "incoming/상담 녹음/고객 통화 2024.wav",
    "incoming/tabs\tand\nnewlines.txt",
    "incoming/dots...in...name.mp3",
    "incoming/trailing ....",
    "incoming/,,,/   .wav",
    "incoming/" + "x" * 300 + ".wav",
]


def _readable(consultation_id: str) -> str:
    assert HASH_SUFFIX.search(consultation_id), consultation_id
    return consultation_id[:-9]


def test_same_key_gives_the_same_id() -> None:
    key = "incoming/team-a/2024-05-01/call 17.wav"

    assert consultation_id_for(key) == consultation_id_for(key)
    expected_digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:8]
    assert consultation_id_for(key) == f"team-a__2024-05-01__call-17.wav-{expected_digest}"


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_id_is_safe_for_dagster(key: str) -> None:
    consultation_id = consultation_id_for(key)

    for forbidden in (",", "/", " ", "\t", "\n", "..."):
        assert forbidden not in consultation_id, (forbidden, consultation_id)
    assert consultation_id == consultation_id.strip()
    assert len(consultation_id) <= MAX_READABLE_CHARS + 9
    assert len(consultation_id) <= 200  # the consultation_id column is String(200)


def test_ids_pass_dagsters_own_partition_key_validation() -> None:
    # StaticPartitionsDefinition runs Dagster's check for invalid substrings ("...", control
    # characters) and duplicates; dynamic partitions skip it, so the ids must be safe already.
    ids = [consultation_id_for(key) for key in AWKWARD_KEYS]

    StaticPartitionsDefinition(ids)

    with pytest.raises(DagsterInvalidDefinitionError):
        StaticPartitionsDefinition(["a...b.wav"])  # the rule this guards against


def test_runs_of_dots_are_collapsed() -> None:
    assert _readable(consultation_id_for("incoming/dots...in....name.mp3")) == "dots.in.name.mp3"
    # Two dots are not a range separator and stay as they are.
    assert _readable(consultation_id_for("incoming/v1..final.wav")) == "v1..final.wav"


def test_korean_names_stay_readable() -> None:
    consultation_id = consultation_id_for("incoming/상담 녹음/고객 통화.wav")

    assert _readable(consultation_id) == "상담-녹음__고객-통화.wav"


def test_decomposed_korean_is_normalised_to_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "incoming/고객 통화.wav")
    assert decomposed != "incoming/고객 통화.wav"  # jamo, as macOS file names arrive

    readable = _readable(consultation_id_for(decomposed))

    assert readable == "고객-통화.wav"
    assert unicodedata.is_normalized("NFC", readable)


def test_readable_part_is_capped() -> None:
    consultation_id = consultation_id_for("incoming/" + "가" * 500 + ".wav")

    readable = _readable(consultation_id)
    assert len(readable) == MAX_READABLE_CHARS
    assert readable == "가" * MAX_READABLE_CHARS


def test_id_fits_a_folder_name_whatever_the_script() -> None:
    # Four UTF-8 bytes per character: 80 of them would make artifacts/<id>/ exceed NAME_MAX.
    consultation_id = consultation_id_for("incoming/" + "\U00020000" * 100 + ".txt")

    assert len(consultation_id.encode("utf-8")) <= 255
    assert _readable(consultation_id) == "\U00020000" * 61
    assert len(consultation_id_for("incoming/" + "가" * 100).encode("utf-8")) == 249


def test_cap_does_not_leave_a_trailing_separator() -> None:
    # Character 80 is a space (-> "-"): the cut must not end the readable part with it.
    key = "incoming/" + "a" * (MAX_READABLE_CHARS - 1) + " tail.wav"

    readable = _readable(consultation_id_for(key))

    assert readable == "a" * (MAX_READABLE_CHARS - 1)


def test_keys_that_slugify_the_same_get_distinct_ids() -> None:
    keys = [
        "incoming/a b.wav",
        "incoming/a,b.wav",
        "incoming/a  b.wav",
        "incoming/a&b.wav",
    ]
    ids = [consultation_id_for(k) for k in keys]

    assert {_readable(i) for i in ids} == {"a-b.wav"}
    assert len(set(ids)) == len(keys)


def test_long_keys_differing_only_after_the_cap_get_distinct_ids() -> None:
    prefix = "incoming/" + "call-" * 40
    first = consultation_id_for(prefix + "one.wav")
    second = consultation_id_for(prefix + "two.wav")

    assert _readable(first) == _readable(second)
    assert first != second


def test_incoming_prefix_is_stripped() -> None:
    assert _readable(consultation_id_for("incoming/team/call.wav")) == "team__call.wav"
    # A key outside the prefix keeps its whole path.
    assert _readable(consultation_id_for("archive/team/call.wav")) == "archive__team__call.wav"
    # A custom prefix is honoured.
    assert _readable(consultation_id_for("drop/call.wav", incoming_prefix="drop/")) == "call.wav"


def test_name_with_nothing_readable_falls_back() -> None:
    assert _readable(consultation_id_for("incoming/,,, ...")) == "consultation"


@pytest.mark.parametrize(
    ("key", "shown", "readable", "secret"),
    [
        (
            "incoming/team-a/call-010-1234-5678.wav",
            "incoming/team-a/call-[PHONE].wav",
            "team-a__call-PHONE.wav",
            "1234-5678",
        ),
        ("incoming/kim.minsu@example.com.txt", "incoming/[EMAIL].txt", "EMAIL.txt", "minsu"),
        (
            "incoming/card 4111 1111 1111 1111.txt",
            "incoming/card [CARD].txt",
            "card-CARD.txt",
            "4111",
        ),
        (
            "incoming/주민 900101-1234567.json",
            "incoming/주민 [RRN].json",
            "주민-RRN.json",
            "1234567",
        ),
    ],
)
def test_pii_in_a_file_name_is_redacted(key: str, shown: str, readable: str, secret: str) -> None:
    consultation_id = consultation_id_for(key)

    assert display_key(key) == shown
    assert _readable(consultation_id) == readable
    assert secret not in consultation_id and secret not in display_key(key)
    # The hash is of the real key: stable, and distinct from any other number's.
    assert consultation_id.endswith(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8])


def test_names_differing_only_in_their_pii_keep_distinct_ids() -> None:
    first = consultation_id_for("incoming/call-010-1234-5678.wav")
    second = consultation_id_for("incoming/call-010-9876-5432.wav")

    assert _readable(first) == _readable(second) == "call-PHONE.wav"
    assert first != second
    StaticPartitionsDefinition([first, second])


def test_display_key_leaves_ordinary_keys_alone() -> None:
    for key in ("incoming/team-a/2024-05-01/call 17.wav", "incoming/상담 녹음/고객 통화.m4a"):
        assert display_key(key) == key


def test_keys_with_undecoded_bytes_never_raise() -> None:
    # os.fsdecode of a CP949 name on a UTF-8 system: surrogate escapes, not text.
    key = "incoming/" + os.fsdecode("상담.txt".encode("cp949"))
    with pytest.raises(UnicodeEncodeError):
        key.encode("utf-8")

    consultation_id = consultation_id_for(key)
    shown = display_key(key)

    consultation_id.encode("utf-8")
    shown.encode("utf-8")
    assert shown == "incoming/\\xbb\\xf3\\xb4\\xe3.txt"
    assert HASH_SUFFIX.search(consultation_id)
    assert consultation_id != consultation_id_for("incoming/" + os.fsdecode(b"\xbb\xf3.txt"))
