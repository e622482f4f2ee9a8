"""Redaction by value: secret values and secret-shaped strings are replaced wherever they appear.

A ``Redactor`` holds *secret values* (exact strings, e.g. the values of an action's ``SecretStr``
args) and *patterns* (regular expressions; the defaults catch bearer tokens and common API key
shapes: ``sk-...``, ``sk-ant-...``, ``ghp_...``, ``github_pat_...``, ``xox[bp]-...``, ``AKIA...``,
``AIza...``). ``Redactor.text`` replaces each occurrence with ``[REDACTED]`` (for a pattern with a
``secret`` group, only that group: ``Bearer [REDACTED]``).

Where it applies: every user value on its way into a record passes through
``preview.json_safe`` (attributes, artifact previews, ``error.stack``, ``error.raw``, the
``exception`` event), which redacts each string leaf; ``evidence.summary`` redacts error messages;
the OpenTelemetry twin of a failing span gets the redacted message and stack too;
``redact_exception`` redacts what a task queue stores, emits and logs of a failure.

Scope: ``configure(...)`` sets the process-wide redactor (patterns, and secrets known for the whole
process). ``with secrets({...}):`` adds values for the duration of a block (one action), in a
``ContextVar``: records emitted inside the block, in that context, are redacted; nested blocks add
up; leaving a block restores the outer set. Values shorter than ``MIN_SECRET_LENGTH`` are ignored
(redacting every "ab" would destroy records, not protect anything).

Cost: a string shorter than the shortest thing to find is returned at once; a longer one is scanned
with ``in`` for each secret and once per pattern (each default pattern starts with a literal, which
``re`` finds at ``str.find`` speed): about 4 us for 500 characters with the defaults. A flat dict of
short scalars (the usual attributes) is not scanned at all. With no secrets and no patterns,
``active()`` returns ``None`` and callers skip redaction entirely.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "DEFAULT_PATTERNS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactedError",
    "Redactor",
    "SecretPattern",
    "active",
    "configure",
    "redact_text",
    "secrets",
]

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """A regex for secret-shaped text. A group named ``secret`` limits the replacement to that
    group. ``min_length``: no match is shorter (shorter strings are not scanned).
    ``preceded_by``: the match counts only when the character before it is one of these (it is
    then part of the match: ``earer`` preceded by ``B`` or ``b``). ``word_start``: the match (with
    that character) must not follow a letter, digit or ``_``.

    Speed: Python's ``re`` scans fast for a pattern that starts with a literal (``sk-``, ``xox``)
    and slowly for one that starts with a class or an alternation (``[Bb]earer``, or any leading
    ``\\b``); hence ``preceded_by`` and ``word_start``, checked on a match only."""

    regex: re.Pattern[str]
    min_length: int = 1
    preceded_by: str | None = None
    word_start: bool = False

    @classmethod
    def of(cls, pattern: str | re.Pattern[str] | SecretPattern) -> SecretPattern:
        if isinstance(pattern, SecretPattern):
            return pattern
        return cls(re.compile(pattern) if isinstance(pattern, str) else pattern)


_TOKEN = r"(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)"
DEFAULT_PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(re.compile(r"earer[ \t]+" + _TOKEN), 15, preceded_by="Bb", word_start=True),  # Bearer x
    SecretPattern(re.compile(r"EARER[ \t]+" + _TOKEN), 15, preceded_by="B", word_start=True),
    SecretPattern(re.compile(r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"), 19, word_start=True),  # OpenAI, Anthropic
    SecretPattern(re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"), 24, word_start=True),  # GitHub tokens
    SecretPattern(re.compile(r"github_pat_[A-Za-z0-9_]{20,}"), 31, word_start=True),
    SecretPattern(re.compile(r"xox[abeoprs]-[A-Za-z0-9\-]{10,}"), 15, word_start=True),  # Slack
    SecretPattern(re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"), 20, word_start=True),  # AWS key ids
    SecretPattern(re.compile(r"AIza[0-9A-Za-z\-_]{35}"), 39, word_start=True),  # Google API keys
)


class Redactor:
    """Secret values and patterns to replace. Immutable; thread-safe."""

    __slots__ = ("_patterns", "_replacers", "_secrets", "min_length", "replacement")

    def __init__(
        self,
        secrets: Iterable[Any] = (),
        patterns: Iterable[str | re.Pattern[str] | SecretPattern] = DEFAULT_PATTERNS,
        *,
        replacement: str = REDACTED,
    ) -> None:
        self.replacement = replacement
        self._secrets: tuple[str, ...] = _variants(secrets)
        self._patterns: tuple[SecretPattern, ...] = tuple(SecretPattern.of(p) for p in patterns)
        self._replacers: tuple[Callable[[re.Match[str]], str], ...] = tuple(
            self._replacer(p) for p in self._patterns
        )
        lengths = [len(s) for s in self._secrets] + [p.min_length for p in self._patterns]
        self.min_length = min(lengths) if lengths else 1 << 62

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    @property
    def patterns(self) -> tuple[SecretPattern, ...]:
        return self._patterns

    def __bool__(self) -> bool:
        return bool(self._secrets or self._patterns)

    def with_secrets(self, values: Iterable[Any]) -> Redactor:
        """A redactor with these secret values added."""
        added = [v for v in _variants(values) if v not in self._secrets]
        if not added:
            return self
        return Redactor([*self._secrets, *added], self._patterns, replacement=self.replacement)

    def text(self, value: str) -> str:
        """``value`` with every secret and secret-shaped part replaced."""
        if len(value) < self.min_length:
            return value
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, self.replacement)
        for pattern, replace in zip(self._patterns, self._replacers, strict=True):
            if len(value) >= pattern.min_length:
                value = pattern.regex.sub(replace, value)
        return value

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it (keys included) passed through ``text``."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def _replacer(self, pattern: SecretPattern) -> Callable[[re.Match[str]], str]:
        replacement = self.replacement
        preceded_by, word_start = pattern.preceded_by, pattern.word_start
        group = "secret" if "secret" in pattern.regex.groupindex else 0

        def replace(match: re.Match[str]) -> str:
            whole, start, text = match.group(0), match.start(), match.string
            if preceded_by is not None:
                if start == 0 or text[start - 1] not in preceded_by:
                    return whole
                start -= 1
            if word_start and start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                return whole
            offset = match.start()
            return whole[: match.start(group) - offset] + replacement + whole[match.end(group) - offset :]

        return replace


def _variants(values: Iterable[Any]) -> tuple[str, ...]:
    """The secret strings to look for: each value, and its repr- and JSON-escaped, URL-encoded and
    base64 forms when they differ (a message may quote it), longest first."""
    found: set[str] = set()
    for raw in values:
        getter = getattr(raw, "get_secret_value", None)
        value = getter() if callable(getter) else raw
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            continue
        found.add(value)
        found.add(repr(value)[1:-1])
        found.add(json.dumps(value)[1:-1])
        found.add(json.dumps(value, ensure_ascii=False)[1:-1])
        found.update((quote(value, safe=""), quote_plus(value)))  # in a URL ("401 for url: ...?key=...")
        encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
        found.update((encoded, encoded.rstrip("="), base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")))
    return tuple(sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))


class RedactedError(Exception):
    """Stands in for an exception whose text still showed a secret once its ``args`` were
    redacted (a message that ``__str__`` builds from attributes, as pydantic's
    ``ValidationError`` does with ``input_value``). Its message is ``"TypeName: redacted text"``;
    it keeps the original's traceback and chain."""


def redact_exception(exc: BaseException) -> BaseException:
    """Redact what a task queue stores as the result, emits in events and logs with the traceback
    of ``exc`` and of the exceptions chained to it: their ``args`` (strings, and the strings inside
    containers), in place, and their ``__notes__``. Returns ``exc``, or a ``RedactedError`` standing
    in for it when its ``str``/``repr`` still shows a secret; a chained exception that still does
    is replaced by one in the chain."""
    redactor = active()
    if redactor is None:
        return exc
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in chain) and len(chain) < 16:
        chain.append(current)
        current = current.__cause__ or current.__context__
    shown = [_redacted(e, redactor) for e in chain]
    for i in range(1, len(chain)):
        if shown[i] is not chain[i]:  # the one before (and its stand-in) now chain to the stand-in
            for before in {id(e): e for e in (chain[i - 1], shown[i - 1])}.values():
                if before.__cause__ is chain[i]:
                    before.__cause__ = shown[i]
                elif before.__context__ is chain[i]:
                    before.__context__ = shown[i]
    return shown[0]


def _redacted(exc: BaseException, redactor: Redactor) -> BaseException:
    with contextlib.suppress(Exception):  # an exception type whose args cannot be set keeps them
        exc.args = tuple(_redacted_arg(a, redactor) for a in exc.args)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        with contextlib.suppress(Exception):
            exc.__notes__ = [redactor.text(n) if isinstance(n, str) else n for n in notes]
    try:
        text, shown = str(exc), repr(exc)
    except Exception:  # an exception that cannot describe itself shows nothing either
        return exc
    safe = redactor.text(text)
    if safe == text and redactor.text(shown) == shown:
        return exc
    stand_in = RedactedError(f"{type(exc).__qualname__}: {safe}")
    stand_in.__cause__, stand_in.__context__ = exc.__cause__, exc.__context__
    stand_in.__suppress_context__ = exc.__suppress_context__
    return stand_in.with_traceback(exc.__traceback__)


def _redacted_arg(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, tuple):
        return tuple(redactor.value(list(value)))
    if isinstance(value, list | dict):
        return redactor.value(value)
    text = repr(value)
    safe = redactor.text(text)
    return value if safe == text else safe  # an object whose repr shows a secret: its redacted repr


# -- the active redactor -----------------------------------------------------------------------------

_process: Redactor | None = Redactor()
_scoped: ContextVar[Redactor | None] = ContextVar("cruxcelery_redactor", default=None)


def configure(
    *, patterns: Iterable[str | re.Pattern[str] | SecretPattern] = DEFAULT_PATTERNS, secrets: Iterable[Any] = ()
) -> Redactor:
    """Set the process-wide redactor (patterns, and secrets known for the whole process).
    ``configure(patterns=())`` with no secrets turns redaction off (``active()`` is ``None``)."""
    global _process
    redactor = Redactor(secrets, patterns)
    _process = redactor if redactor else None
    return redactor


def active() -> Redactor | None:
    """The redactor for the current context, or ``None`` when there is nothing to redact."""
    scoped = _scoped.get()
    return scoped if scoped is not None else _process


@contextlib.contextmanager
def secrets(values: Iterable[Any]) -> Iterator[Redactor | None]:
    """Add secret values (``str``, ``bytes`` or ``SecretStr``) for the duration of the block."""
    current = active()
    wanted = _variants(values)
    if not wanted:
        yield current
        return
    scoped = current.with_secrets(wanted) if current is not None else Redactor(wanted, ())
    token = _scoped.set(scoped)
    try:
        yield scoped
    finally:
        _scoped.reset(token)


def redact_text(value: str) -> str:
    """``value`` redacted by the active redactor (unchanged when there is none)."""
    redactor = active()
    return redactor.text(value) if redactor is not None else value
