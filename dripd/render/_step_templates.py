"""A step's compiled template per contact: spintax spun from the contact's seed, then compiled
once per distinct text. Pure (no I/O, no clock)."""

from __future__ import annotations

from collections.abc import Callable

from dripd.render._spintax import has_spintax, parse_spintax, spin
from dripd.render._template import CompiledTemplate, compile_template

# Edited steps leave old keys behind: past this many, a cache starts again.
_BOUND = 4096

_Key = tuple[int, str, str, "str | None"]


def _varies(source: str | None) -> bool:
    """Whether ``source`` has a group to choose from (its spun text depends on the seed). A merge
    tag's fallback (``{{name|there}}``) passes ``has_spintax``'s quick check but chooses nothing."""
    return source is not None and has_spintax(source) and not all(isinstance(p, str) for p in parse_spintax(source))


class StepTemplates:
    """Compiled templates by step and text, bounded.

    A step whose texts choose nothing (no spintax groups: most steps, and every one whose only
    ``|`` is a merge tag's fallback) is the same for every contact, so it is found by the step's
    own texts. Spinning it for each contact made two new strings the size of the template and
    hashed them for the lookup, ~1.4 % of the event loop's thread in bench/bench_send.py's
    headline (issue 14)."""

    def __init__(self) -> None:
        self._compiled: dict[_Key, CompiledTemplate] = {}
        self._fixed: dict[_Key, CompiledTemplate] = {}  # by the step's own (unspun) texts

    def get(self, step_id: int, subject: str, body: str, text: str | None,
            seed: Callable[[], str]) -> CompiledTemplate:
        """The template for one contact; ``seed`` (asked only when a text chooses) is the
        contact's spintax seed for this step."""
        key = (step_id, subject, body, text)
        fixed = self._fixed.get(key)
        if fixed is not None:
            return fixed
        if not (_varies(subject) or _varies(body) or _varies(text)):
            # Spun once, with any seed: escapes resolved, no choice to make.
            compiled = self._compile(spin(subject, ""), spin(body, ""), None if text is None else spin(text, ""))
            _bounded(self._fixed)[key] = compiled
            return compiled
        contact_seed = seed()
        return self._compile(spin(subject, contact_seed), spin(body, contact_seed),
                             None if text is None else spin(text, contact_seed))

    def _compile(self, subject: str, body: str, text: str | None) -> CompiledTemplate:
        key = (0, subject, body, text)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = _bounded(self._compiled)[key] = compile_template(subject or " ", body, text)
        return compiled


def _bounded(cache: dict[_Key, CompiledTemplate]) -> dict[_Key, CompiledTemplate]:
    if len(cache) > _BOUND:
        cache.clear()
    return cache
