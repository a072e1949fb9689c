"""The portal's strings: both catalogues hold the same keys, every key a template names
(literally or built from a stored value) is in them, and the Chinese one is the default."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.grants.model import State as GrantState
from gateway.portal import messages
from gateway.portal.opendata import Table
from gateway.products.model import Category, Status

TEMPLATES = Path(messages.__file__).parent / "templates"


def test_both_catalogues_hold_the_same_keys_and_chinese_is_the_default() -> None:
    assert set(messages.ZH) == set(messages.EN)
    assert messages.pick(None) == messages.pick("fr") == "zh-CN"
    assert messages.translator("en")("nav.switch") == "中文"


def test_every_key_the_templates_name_is_in_the_catalogues() -> None:
    named = set()
    for template in TEMPLATES.glob("*.html"):
        named |= set(re.findall(r"""\bt\(["']([a-z_.0-9]+)["']""", template.read_text()))
    built = {f"status.{s.value}" for s in Status} | {f"state.{s.value}" for s in GrantState}
    built |= {f"products.{c.value}" for c in Category} | {
        f"kind.{k}" for k in ("file", "verify", "score")
    }
    built |= {f"nav.{t.value}" for t in Table} | {f"home.{t.value}" for t in Table}
    assert named, "no key found: the pattern no longer matches the templates"
    named = {key for key in named if not key.endswith(".")}  # a prefix: see ``built``
    assert sorted((named | built) - set(messages.ZH)) == []
