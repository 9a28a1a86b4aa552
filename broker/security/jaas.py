"""JAAS login configuration as Kafka reads ``sasl.jaas.config`` (its JaasConfig parser).

The text is one or more login modules, each ``<class> <flag> [<key>=<value>]... ;`` with the flag
one of ``required``, ``requisite``, ``sufficient``, ``optional``. A value is a word or a quoted
string (``"..."`` or ``'...'``) with Java StreamTokenizer's escapes (``\\"``, ``\\\\``, ``\\n``...);
``//`` and ``/* */`` comments are skipped. Bad text raises :class:`JaasError`, whose message never
quotes a value (values are passwords).
"""

from __future__ import annotations

from storage.fast_dataclass import dataclass

CONTROL_FLAGS = ("required", "requisite", "sufficient", "optional")
PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_WORD_EXTRA = frozenset("-_$.")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "a": "\a", "v": "\v"}


class JaasError(ValueError):
    """The JAAS text cannot be parsed; the message names the position, never a value."""


@dataclass(frozen=True, slots=True)
class LoginModule:
    name: str
    flag: str
    options: dict[str, str]


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch in _WORD_EXTRA


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) with kind ``word``, ``quoted`` or the punctuation character itself."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JaasError("unterminated comment in JAAS configuration")
            i = end + 2
        elif ch in "\"'":
            value, i = _quoted(text, i + 1, ch)
            tokens.append(("quoted", value))
        elif _is_word(ch):
            start = i
            while i < n and _is_word(text[i]):
                i += 1
            tokens.append(("word", text[start:i]))
        else:
            tokens.append((ch, ch))
            i += 1
    return tokens


def _quoted(text: str, i: int, quote: str) -> tuple[str, int]:
    out: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if ch == "\n":
            break  # StreamTokenizer ends a quoted string at a line end
        out.append(ch)
        i += 1
    raise JaasError("unterminated quoted value in JAAS configuration")


def parse_jaas_config(text: str) -> list[LoginModule]:
    """Every login module of ``text``; JaasError when it is not valid JAAS."""
    tokens = _tokens(text)
    modules: list[LoginModule] = []
    pos = 0

    def expect(kind: str, what: str) -> str:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][0] != kind:
            raise JaasError(f"JAAS configuration: expected {what} at token {pos + 1}")
        value = tokens[pos][1]
        pos += 1
        return value

    while pos < len(tokens):
        name = expect("word", "a login module class name")
        flag = expect("word", "a control flag").lower()
        if flag not in CONTROL_FLAGS:
            raise JaasError(f"JAAS configuration: invalid control flag '{flag}' for {name}")
        options: dict[str, str] = {}
        while pos < len(tokens) and tokens[pos][0] != ";":
            key = expect("word", "an option name")
            expect("=", f"'=' after option {key}")
            if pos >= len(tokens) or tokens[pos][0] not in ("word", "quoted"):
                raise JaasError(f"JAAS configuration: option {key} has no value")
            options[key] = tokens[pos][1]
            pos += 1
        expect(";", "';' at the end of a login module")
        modules.append(LoginModule(name, flag, options))
    if not modules:
        raise JaasError("JAAS configuration has no login module")
    return modules


def single_login_module(text: str) -> LoginModule:
    """``sasl.jaas.config`` must hold exactly one login module (Kafka's JaasContext rule)."""
    modules = parse_jaas_config(text)
    if len(modules) != 1:
        raise JaasError(f"JAAS config property contains {len(modules)} login modules, should be 1 module")
    return modules[0]


def quote(value: str) -> str:
    """``value`` as a double-quoted JAAS string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
