"""Speaker labels prove that English and Korean role words (with honorific suffixes, in any
case, as "Customer Support" or "Agent Kim") map to agent or customer, that the agent's own
names map to the agent, and that other capitalised names are speakers of unknown role while
prose before a colon is not a label."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.speech.text_import.speakers import looks_like_name, speaker_for_label
from cscoach_pipeline.defs.speech.transcript import Speaker
from tests.defs.speech.text_import.helpers import speakers_and_texts


def test_english_prefixes_map_to_roles() -> None:
    data = (
        "Agent: a\nRepresentative: b\nREP: c\nCSR: d\nadvisor: e\nSupport: f\nOperator: g\n"
        "Customer: h\nclient: i\nCaller: j\nUser: k\n[Agent]: l\n[Customer] m\n"
        "상담사: n\n직원: o\n손님: p\n고객님: q\n"
    ).encode()
    got = speakers_and_texts(data, ".txt")
    a, c = Speaker.AGENT, Speaker.CUSTOMER
    assert [s for s, _ in got] == [a] * 7 + [c] * 4 + [a, c] + [a, a, c, c]
    assert [t for _, t in got] == list("abcdefghijklmnopq")


def test_agent_names_and_other_labels() -> None:
    data = b"Sarah: Hello, this is Sarah.\nJohn Smith: Hi Sarah.\nSpeaker 2: hmm\n"
    got = speakers_and_texts(data, ".txt", agent_names=["sarah"])
    assert got == [
        (Speaker.AGENT, "Hello, this is Sarah."),
        (Speaker.UNKNOWN, "Hi Sarah."),
        (Speaker.UNKNOWN, "hmm"),
    ]


@pytest.mark.parametrize(
    ("label", "agent_names", "speaker"),
    [
        ("Customer Support", (), Speaker.AGENT),
        ("customer-service", (), Speaker.AGENT),
        ("Agent Kim", (), Speaker.AGENT),
        ("고객센터", (), Speaker.AGENT),
        ("상담사님", (), Speaker.AGENT),
        ("고객분", (), Speaker.CUSTOMER),
        ("**End User**", (), Speaker.CUSTOMER),
        ("Kim Minji", ("kim minji",), Speaker.AGENT),
        ("Minji", ("Minji", "  ", ""), Speaker.AGENT),
        ("John Smith", (), None),
        ("", (), None),
    ],
)
def test_speaker_for_label(label: str, agent_names: tuple[str, ...], speaker: Speaker) -> None:
    assert speaker_for_label(label, agent_names) == speaker


@pytest.mark.parametrize(
    ("label", "is_name"),
    [
        ("John Smith", True),
        ("Speaker 2", True),
        ("김민지", True),
        ("note to self", False),
        ("Well, then", False),
        ("A B C D", False),
        ("12", False),
    ],
)
def test_looks_like_name(label: str, is_name: bool) -> None:
    assert looks_like_name(label) is is_name
