"""Sentences for people that a translated page can word again: English text, a code, figures.

The station words what it tells the officer in English; the kiosk speaks other languages
too. A :class:`Phrase` is that English sentence (it is a ``str``: logs, tests and older
callers see the text) that also carries a code and the figures in it, so the page can look the
code up in its own catalogue and fall back to the English when it has no entry.
"""

from __future__ import annotations

from typing import Any


class Phrase(str):
    """An English sentence with the code and figures another language words it from."""

    code: str
    params: dict[str, Any]

    def __new__(cls, text: str, code: str, **params: Any) -> Phrase:
        """``text`` in English; ``code`` names it in the page's catalogues, ``params`` fill it."""
        phrase = super().__new__(cls, text)
        phrase.code = code
        phrase.params = params
        return phrase

    def __reduce__(self) -> tuple[Any, ...]:  # a str subclass with attributes: pickle it whole
        return (_rebuild, (str(self), self.code, self.params))


def _rebuild(text: str, code: str, params: dict[str, Any]) -> Phrase:
    return Phrase(text, code, **params)


def wording(text: str) -> dict[str, Any]:
    """What the page needs to word ``text`` in its language: code and figures (none: as is)."""
    if isinstance(text, Phrase):
        return {"code": text.code, "params": text.params}
    return {"code": "", "params": {}}
