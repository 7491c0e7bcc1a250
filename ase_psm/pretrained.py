"""Checkpoints shipped inside the package, loadable by name, each with a model card.

``PSMCalculator("lj13")``, ``sample("ala2", ...)``, ``sample("conformers", molecule_template(smiles))`` and ``ase-psm sample lj13 ...`` resolve a
name to its file in ``ase_psm/examples_data``; ``ase-psm models`` lists them.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: name -> checkpoint file in ase_psm/examples_data (its model card has the same stem, .md).
PRETRAINED: dict[str, str] = {
    "lj13": "lj13_psm.pt",
    "lj13-psm": "lj13_psm.pt",
    "lj13-dsm": "lj13_dsm.pt",
    "ala2": "ala2_psm.pt",
    "ala2-gpff": "ala2_gpff.pt",
    "conformers": "conformers_gpff.pt",
}


def _asset(name: str) -> Path:
    return Path(str(resources.files("ase_psm") / "examples_data" / name))


def resolve_checkpoint(checkpoint: str | os.PathLike) -> Path:
    """The file of ``checkpoint``: an existing path, else a shipped model's name.

    Raises FileNotFoundError naming the shipped models when it is neither.
    """
    path = Path(checkpoint)
    if path.is_file():
        return path
    if str(checkpoint) in PRETRAINED:
        return _asset(PRETRAINED[str(checkpoint)])
    raise FileNotFoundError(
        f"no checkpoint at {path}: train one with `ase-psm train`, check the path, or use a "
        f"shipped model by name ({', '.join(PRETRAINED)}; `ase-psm models` describes them)"
    )


def model_card(name: str) -> str:
    """The model card (Markdown) of a shipped model."""
    if name not in PRETRAINED:
        raise ValueError(f"no shipped model named {name!r}; choose one of {', '.join(PRETRAINED)}")
    return _asset(PRETRAINED[name]).with_suffix(".md").read_text()
