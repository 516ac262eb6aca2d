"""Decoding proves that every encoding a contact centre emits (UTF-8 with/without BOM, UTF-16
LE/BE with or without BOM, CP949/EUC-KR) decodes to the same text, and that empty,
whitespace-only and binary files fail with a readable reason that is a ConsultationInputError."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.speech.text_import import (
    TextImportError,
    decode_text,
    parse_text_consultation,
)
from cscoach_pipeline.errors import ConsultationInputError
from tests.defs.speech.text_import.helpers import ENGLISH_DIALOGUE, KOREAN_DIALOGUE


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (ENGLISH_DIALOGUE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + ENGLISH_DIALOGUE.encode("utf-8"), "utf-8-sig"),
        (b"\xff\xfe" + ENGLISH_DIALOGUE.encode("utf-16-le"), "utf-16"),
        (b"\xfe\xff" + ENGLISH_DIALOGUE.encode("utf-16-be"), "utf-16"),
        (ENGLISH_DIALOGUE.encode("utf-16-le"), "utf-16-le"),
        (ENGLISH_DIALOGUE.encode("utf-16-be"), "utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le-nobom", "utf16be-nobom"],
)
def test_decode_english_in_every_encoding(data: bytes, encoding: str) -> None:
    text, name = decode_text(data)
    assert name == encoding
    # BOM stripped, CRLF normalised.
    assert text == "Agent: Hello, how can I help?\nCustomer: I lost my card."


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp949", "euc-kr"])
def test_decode_korean_in_every_encoding(codec: str) -> None:
    text, _ = decode_text(KOREAN_DIALOGUE.encode(codec))
    assert text == KOREAN_DIALOGUE


def test_cp949_is_named() -> None:
    assert decode_text(KOREAN_DIALOGUE.encode("cp949"))[1] == "cp949"


def test_empty_file() -> None:
    with pytest.raises(TextImportError, match=r"file is empty \(0 bytes\)"):
        decode_text(b"")


def test_whitespace_only_file() -> None:
    with pytest.raises(TextImportError, match="only whitespace"):
        parse_text_consultation(b" \r\n\t \n", ".txt")
    with pytest.raises(TextImportError, match="only whitespace"):
        parse_text_consultation(b"\xef\xbb\xbf\n", ".md")


def test_png_renamed_to_txt_is_rejected_as_binary() -> None:
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06"
        b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0bIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01"
    )
    with pytest.raises(TextImportError, match=r"file is not text: \d+% of bytes are binary"):
        parse_text_consultation(png, ".txt")


def test_random_binary_is_rejected() -> None:
    data = bytes((i * 197 + 13) % 256 for i in range(4096))  # deterministic "random" bytes
    with pytest.raises(TextImportError, match="file is not text"):
        decode_text(data)


def test_zip_header_is_rejected() -> None:
    with pytest.raises(TextImportError, match="file is not text"):
        decode_text(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00\x01\x02\x03" * 10)


def test_text_with_many_control_characters_is_rejected() -> None:
    with pytest.raises(TextImportError, match="binary/control"):
        decode_text(b"Agent: hi\x01\x02\x03\x04\x05\x06\x07\x08")


def test_broken_byte_order_mark_names_the_byte() -> None:
    with pytest.raises(TextImportError, match="starts with a utf-16 byte-order mark but byte"):
        decode_text(b"\xff\xfe\x00\xd8")


def test_errors_are_value_errors_and_input_errors() -> None:
    with pytest.raises(ValueError):
        decode_text(b"")
    with pytest.raises(ConsultationInputError):
        decode_text(b"")
