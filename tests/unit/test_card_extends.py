"""Agent cards that extend another card: fields inherited, mappings merged, cycles and missing bases reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.errors import SpecError
from agentmesh.spec.loader import load_agent


def test_a_card_extends_a_base_and_overrides_fields(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "role: base\nsystem: You help.\nprompt: '{{ question }}'\nparser: choice_letter\n"
        "sampling: {temperature: 1.0, max_tokens: 100}\n"
    )
    (tmp_path / "doctor.yaml").write_text(
        "extends: base.yaml\nrole: doctor\nsystem: You are a doctor.\nsampling: {max_tokens: 50}\n"
    )
    card = load_agent(tmp_path / "doctor.yaml")
    assert card.name == "doctor" and card.role == "doctor" and card.system == "You are a doctor."
    assert card.prompt == "{{ question }}" and card.parser.name == "choice_letter"
    assert card.sampling.temperature == 1.0 and card.sampling.max_tokens == 50


def test_extends_cycles_and_missing_bases_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nprompt: x\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nprompt: y\n")
    with pytest.raises(SpecError, match="cards extend each other in a cycle"):
        load_agent(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\nprompt: z\n")
    with pytest.raises(SpecError, match=r"c.yaml:1: extends: card nowhere.yaml not found"):
        load_agent(tmp_path / "c.yaml")
