"""Generated reference documents, so the docs cannot drift from the code.

``python -m docs.generate config`` writes the configuration reference (from the pydantic models
in ``dripd.config`` and the plugins' per-mailbox tables), ``api`` the control API reference (from
the app's OpenAPI document and its error classes), ``dripctl`` the dripctl reference (from its
argparse parser). Each renderer is a pure function returning Markdown; the committed files in
``docs/`` are compared with them by ``tests/unit/test_reference_docs.py``. Regenerate with
``make docs``. This package is not installed with dripd: the daemon never needs it.
"""

from __future__ import annotations

from typing import Callable

from docs.generate.api import render_api
from docs.generate.config import render_config
from docs.generate.dripctl import render_dripctl

RENDERERS: dict[str, Callable[[], str]] = {"config": render_config, "api": render_api, "dripctl": render_dripctl}
DOCUMENTS = {"config": "docs/configuration.md", "api": "docs/api.md", "dripctl": "docs/dripctl.md"}
