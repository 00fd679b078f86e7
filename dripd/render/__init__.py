"""Merge fields into a step's template and serialise the MIME message, fast. Pure.

A template is compiled once per step (merge tags found, the plain-text part generated from the
HTML); each contact then costs a few string joins plus one quoted-printable pass per part.
``email.message.EmailMessage`` is deliberately not used on this path: it builds ~380 msg/s on one
core (DESIGN, "Python's email package is slow"), while the transport pushes ~1,100 msg/s. The
header encoding it would have done for us (RFC 2047 encoded-words, folding, quoting of display
names, CRLF) is done here by hand, and the unit tests parse every shape back with the stdlib
parser to keep us honest.

No I/O and no clock: the Date comes in on the ``Envelope``, randomness only for MIME boundaries
and Message-ID suffixes.

The modules, by concern (each private; everything public is re-exported here):

- ``_template``: merge tags, ``compile_template``, ``CompiledTemplate``, ``Rendered``, and
  ``template_problem`` (an unclosed ``{{``), the check made when a step is saved;
- ``_html_text``: ``html_to_text``, the plain part generated from the HTML;
- ``_headers``: header encoding (encoded-words, folding, display names) and
  ``header_text_problem``, the one rule for what text can stand in a header, and
  ``address_problem``, the one rule for what address a message can go to;
- ``_identity``: ``make_message_id``, the Date line, ``unique_hex``;
- ``_mime``: ``Envelope`` and ``build_message``, the message as bytes;
- ``_spintax``: ``spin`` (``{Hi|Hello}``, one option per contact and step) and
  ``spintax_problem``, the check made when a step is saved;
- ``_step_templates``: ``StepTemplates``, a step's compiled template per contact (spun, then
  compiled once per distinct text).

Every message that cannot be built raises ``ValidationError`` naming the field (``to_name``,
``subject``, ``message_id``, ...), never another exception type: the engine resolves a step
that fails after its ledger claim by catching exactly that family.
"""

from __future__ import annotations

from dripd.render._headers import CRLF, address_problem, header_text_problem
from dripd.render._html_text import html_to_text
from dripd.render._identity import make_message_id, unique_hex
from dripd.render._mime import Envelope, build_message
from dripd.render._spintax import has_spintax, spin, spintax_problem
from dripd.render._step_templates import StepTemplates
from dripd.render._template import CompiledTemplate, Rendered, compile_template, template_problem

__all__ = [
    "CRLF",
    "CompiledTemplate",
    "Envelope",
    "Rendered",
    "StepTemplates",
    "address_problem",
    "build_message",
    "compile_template",
    "header_text_problem",
    "html_to_text",
    "has_spintax",
    "make_message_id",
    "spin",
    "spintax_problem",
    "template_problem",
    "unique_hex",
]
