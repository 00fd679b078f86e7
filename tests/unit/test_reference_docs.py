"""The generated references in docs/ are what the code says today (regenerate with `make docs`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docs.generate import DOCUMENTS, RENDERERS
from docs.generate.api import openapi_document, render_api
from docs.generate.config import config_keys, config_tables, render_config
from docs.generate.dripctl import render_dripctl

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_committed_document_is_current(kind: str) -> None:
    path = REPO / DOCUMENTS[kind]
    assert path.exists(), f"{path.name} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == RENDERERS[kind](), (
        f"{DOCUMENTS[kind]} is out of date with the code: run `make docs` and commit the result")


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_config_key_is_documented_in_its_table() -> None:
    sections = _sections(render_config())
    keys = config_keys()
    assert {"[daemon]", "[[mailboxes]]", "[mailboxes.maildir]", "[mailboxes.smtp]", "[mailboxes.imap]", "[api]",
            "[tracking]", "[metrics]", "[analytics]"} <= set(keys)
    for table, names in keys.items():
        assert table in sections, f"no section for {table}"
        for name in names:
            assert re.search(rf"^\| `{re.escape(name)}` \|", sections[table], re.MULTILINE), f"{table} {name}"


def test_every_config_key_has_a_description_and_a_default() -> None:
    for table, model in config_tables():
        for name, field in model.model_fields.items():
            assert field.description, f"{table} {name} has no description"
    text = render_config()
    assert "| `hourly_cap` | integer | `10` | > 0 |" in text
    assert "| `log_level` | string | `\"info\"` | one of `debug`, `info`, `warning`, `error` |" in text
    assert "| `path` | path | **required** |" in text


def test_every_api_endpoint_and_every_dripctl_command_is_documented() -> None:
    api = render_api()
    for path, item in openapi_document()["paths"].items():
        for method in item:
            assert f"### {method.upper()} {path}\n" in api
    assert '{"error": {"code"' in api
    dripctl = render_dripctl()
    for command in ("status", "sequences create", "steps add", "enroll", "apply", "export", "stats", "mailboxes"):
        assert f" dripctl {command}" in dripctl


def test_dripctl_reference_ignores_the_callers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render_dripctl()
    monkeypatch.setenv("DRIPD_SOCKET", "/tmp/elsewhere.sock")
    monkeypatch.setenv("COLUMNS", "40")
    assert render_dripctl() == expected


def test_the_example_config_shows_every_table_and_its_commented_examples_are_valid(tmp_path: Path) -> None:
    from dripd.config import load_config
    from dripd.plugins import Plugins

    text = (REPO / "etc" / "dripd.toml").read_text(encoding="utf-8")
    for table in config_keys():
        assert re.search(rf"^[# ]*{re.escape(table)}\s*$", text, re.MULTILINE), f"etc/dripd.toml never shows {table}"
    # Uncomment the example tables and keys (not the prose, not the alternatives marked '# #').
    uncommented = re.sub(r"^#( {0,3})(?=\[|[a-z_]+ = )", r"\1", text, flags=re.MULTILINE)
    uncommented = uncommented.replace("sha256:<64 hex>", "sha256:" + "0" * 64)
    path = tmp_path / "dripd.toml"
    path.write_text(uncommented, encoding="utf-8")
    plugins = Plugins()
    config = load_config(path, plugins.config_sections(), plugins.transports)
    assert [m.id for m in config.mailboxes] == ["sales", "outreach"]
    assert config.api.listen and config.tracking.listen and config.metrics.listen
    assert config.mailboxes[1].plugin_section("imap") is not None
