"""server.properties parsing must match java.util.Properties.load, and --override Kafka's CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import ConfigError, parse_overrides, parse_properties, read_properties


def test_separators_equals_colon_and_whitespace() -> None:
    text = "a=1\nb:2\nc 3\nd    =    4  \ne\t:\tfive\nf\n g=\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "4  ", "e": "five", "f": "", "g": ""}


def test_value_keeps_later_separators_and_hashes() -> None:
    assert parse_properties("a=b=c:d # not a comment\n") == {"a": "b=c:d # not a comment"}


def test_comments_and_blank_lines() -> None:
    text = "# hash comment\n! bang comment\n   # indented comment\n\n   \t\nkey=value\n"
    assert parse_properties(text) == {"key": "value"}


def test_continuation_lines_drop_leading_blanks_of_next_line() -> None:
    text = "listeners=PLAINTEXT://:9092,\\\n          INTERNAL://:9093\nnext=1\n"
    assert parse_properties(text) == {"listeners": "PLAINTEXT://:9092,INTERNAL://:9093", "next": "1"}


def test_even_number_of_backslashes_is_not_a_continuation() -> None:
    assert parse_properties("dir=C:\\\\\nnext=1\n") == {"dir": "C:\\", "next": "1"}


def test_comment_line_cannot_be_continued() -> None:
    assert parse_properties("# a comment \\\nkey=v\n") == {"key": "v"}


def test_continued_line_starting_with_hash_is_not_a_comment() -> None:
    assert parse_properties("a=x\\\n  #y\n") == {"a": "x#y"}


def test_continuation_at_end_of_file() -> None:
    assert parse_properties("a=x\\") == {"a": "x"}
    assert parse_properties("a=x\\\n") == {"a": "x"}


def test_escapes() -> None:
    text = "tab=a\\tb\nunicode=\\u0041\\u00e9\nsep\\=key=v\nspace\\ key = v2\nother=\\q\\\\\n"
    assert parse_properties(text) == {
        "tab": "a\tb",
        "unicode": "Aé",
        "sep=key": "v",
        "space key": "v2",
        "other": "q\\",
    }


def test_malformed_unicode_escape_is_an_error() -> None:
    with pytest.raises(ConfigError, match="uxxxx"):
        parse_properties("k=\\u12x4\n")


def test_line_endings_crlf_and_cr() -> None:
    assert parse_properties("a=1\r\nb=2\rc=3") == {"a": "1", "b": "2", "c": "3"}


def test_later_duplicate_wins() -> None:
    assert parse_properties("a=1\na=2\n") == {"a": "2"}


def test_read_properties_utf8_and_latin1_fallback(tmp_path: Path) -> None:
    utf8 = tmp_path / "utf8.properties"
    utf8.write_bytes("rack=zürich\n".encode())
    assert read_properties(utf8) == {"rack": "zürich"}
    latin1 = tmp_path / "latin1.properties"
    latin1.write_bytes("rack=zürich\n".encode("iso-8859-1"))
    assert read_properties(latin1) == {"rack": "zürich"}


def test_read_properties_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read"):
        read_properties(tmp_path / "absent.properties")


def test_overrides_split_at_first_equals_and_later_wins() -> None:
    assert parse_overrides(["a=1", "b=x=y", "a=2", "c"]) == {"a": "2", "b": "x=y", "c": ""}


def test_override_without_key_is_an_error() -> None:
    with pytest.raises(ConfigError):
        parse_overrides(["=5"])
