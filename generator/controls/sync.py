"""Write generator/data/controls.yml, the catalog as copier sees it (`python -m generator.controls.sync`).

copier.yml includes that file, so plain `copier copy` gets the same catalog and applicability as pipeproof.
A test fails when it is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.controls.base import Control, all_controls

TARGET = Path(__file__).resolve().parent.parent / "data" / "controls.yml"

HEADER = """\
# GENERATED from generator/controls/ by `python -m generator.controls.sync`; do not edit.
# copier.yml includes it: `catalog` feeds compliance/CONTROLS.md and controls.json, `controls` lists the
# ids that apply to the answers, and templates gate their blocks on it.
"""


def catalog_entry(control: type[Control]) -> dict[str, Any]:
    """The data a template (and controls.json) sees for one control."""
    return {
        "id": control.id,
        "title": control.title,
        "family": control.family,
        "severity": str(control.severity),
        "soc2": list(control.soc2),
        "iso27001": list(control.iso27001),
        "platforms": sorted(control.platforms),
        "applies": control.applies,
        "implemented_by": {k: list(v) for k, v in control.implemented_by.items()},
        "evidence": control.evidence,
        "remediation": control.remediation,
        "prevents": list(control.prevents),
        "owner": control.owner,
        "frequency": control.frequency,
        "procedure": control.procedure,
        "population": dict(control.population),
        "needs": [{"key": n.key, "what": n.what, "met": n.met, "fallback": n.fallback} for n in control.needs],
    }


def applicability_expression(controls: list[type[Control]]) -> str:
    """One Jinja expression (copier's [[ ]] delimiters) that yields the applicable ids as JSON."""
    pairs = ", ".join(
        f"({json.dumps(c.id)}, (platform in {json.dumps(sorted(c.platforms))}) and ({c.applies}))" for c in controls
    )
    return f"[[ [{pairs}] | selectattr('1') | map(attribute='0') | list | tojson ]]"


def needs_expression(controls: list[type[Control]]) -> str:
    """One Jinja expression that yields {need key: met} for the needs the answers can decide, as JSON."""
    needs = {n.key: n.met for c in controls for n in c.needs if n.met is not None}
    pairs = ", ".join(f"({json.dumps(key)}, ({met}))" for key, met in sorted(needs.items()))
    return f"[[ dict([{pairs}]) | tojson ]]"


def render() -> str:
    controls = all_controls()
    doc = {
        "catalog": {"type": "yaml", "when": False, "default": [catalog_entry(c) for c in controls]},
        "controls": {"type": "yaml", "when": False, "default": applicability_expression(controls)},
        "needs_met": {"type": "yaml", "when": False, "default": needs_expression(controls)},
    }
    # JSON is YAML, and json.dumps output is stable and needs no YAML emitter quirks.
    return HEADER + json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
