"""Conformer benchmark in GPFF's style: a time-step-free model of many drug-like molecules.

Data: RDKit's bundled ``NCI/first_5K.smi``, filtered to neutral single-fragment molecules of
H, C, N, O, F, S, Cl with few heavy atoms; reference conformers from ETKDG + MMFF. Molecules are
split (by SMILES, seeded) into training and held-out test molecules. One GPFF network is trained
on all training molecules (:func:`ase_psm.train.multi.train_molecules`), conditioned on each
molecule's bond graph (``--no-graph``: on its elements only, as GPFF on QM9), then each test molecule
is generated from a Gaussian prior with :func:`ase_psm.sample` (``adaptive``: steps = the maximum
NFE; ``direct``: steps = NFE) and judged:

- validity (:func:`ase_psm.chemistry.molecules.perceive`): bonds and bond orders perceived from the
  coordinates give a valid, connected, neutral molecule;
- graph recovery (:func:`ase_psm.chemistry.molecules.match_smiles`): the bonds perceived from the
  coordinates form the reference's graph; graph + stereo recovery: also every stereo element of the
  reference conformer (``--set drugs``: every one the input SMILES gives) has its configuration.

Editing: half of the heavy atoms (the first in SMILES order, with their hydrogens) are held by
FixAtoms and the rest is regenerated from noise around the template.

    python benchmarks/conformers.py --size tiny            # smoke test, < 1 minute
    nice python benchmarks/conformers.py --size cpu --out runs/conformers_cpu
    python benchmarks/conformers.py --size cpu --memorise 10 --time-limit 330 --out runs/memorise10
    python benchmarks/conformers.py --summarise runs/conformers_s0 runs/conformers_s1   # one table of seeds
    python benchmarks/conformers.py --set drugs --nfe 6 16 --out runs/conformers_drugs  # shipped model, ten drugs

Every run also reports the relative pseudo-force error |f - f*| / |f*| of the trained network at
several noise levels on its training and test molecules (``force_errors``). ``--memorise N`` trains
on N molecules (one conformer each) and generates those same molecules (3 samples each, adaptive
sampler): a fitting check that separates underfitting from failing to generalise.

``--set drugs`` trains nothing: it generates ``--samples`` conformers of each of ten well-known drugs
(``DRUGS``) with a trained model (``--checkpoint``, default the shipped ``conformers``), ``direct``
sampler at each ``--nfe``, as ``sample(checkpoint, molecule_template(smiles), n, ...)`` does, and
times RDKit's ETKDG making as many conformers of each.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import warnings
from pathlib import Path

import ase
import numpy as np
import torch
from ase.constraints import FixAtoms

from ase_psm import sample
from ase_psm.checkpoint import load_model
from ase_psm.chemistry.bonds import molecule_bonds
from ase_psm.chemistry.molecules import (
    embed,
    filter_smiles,
    match_smiles,
    molecule_template,
    nci_smiles_path,
    perceive,
    read_smiles,
)
from ase_psm.diffusion import pair_noise_by_element
from ase_psm.model import PseudoForceNet, topology_classes
from ase_psm.train.multi import MOLECULE_SCHEDULE, train_molecules

SIZES: dict[str, dict] = {
    "tiny": dict(
        n_train=16, n_test=2, max_heavy=6, conformers=1, steps=15, batch_size=4, time_limit=None,
        samples=1, nfe=(6, 16), samplers=("adaptive", "direct"), edit_nfe=16, loss_weighting="epsilon",
        learning_rate=3e-3, model=dict(hidden_irreps="8x0e + 4x1e", num_layers=1, radial_hidden=16),
    ),
    "cpu": dict(
        n_train=500, n_test=100, max_heavy=12, conformers=2, steps=4000, batch_size=12, time_limit=25 * 60,
        samples=1, nfe=(6, 16, 64, 256), samplers=("adaptive", "direct"), edit_nfe=64, loss_weighting="epsilon",
        learning_rate=3e-3, model=dict(),
    ),
}
ERROR_SIGMAS = (0.05, 0.1, 0.3, 1.0, 3.0)
"""Noise levels (Å) at which ``force_errors`` measures the network's relative pseudo-force error."""
PRIOR_SIGMA = MOLECULE_SCHEDULE.sigma_max
"""Width (Å) of the Gaussian prior and of the noise on regenerated atoms: the top of the training range."""
STRUCTURE_SIGMA = 1.0
"""Noise (Å) on the reference conformer for the structural-prior row."""
DRUGS = {
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "nicotine": "CN1CCC[C@H]1c1cccnc1",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
    "atenolol": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "lidocaine": "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "metformin": "CN(C)C(=N)N=C(N)N",
    "salbutamol": "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",
    "benzocaine": "CCOC(=O)c1ccc(N)cc1",
    "menthol": "CC(C)[C@@H]1CC[C@@H](C)C[C@H]1O",
}
"""The ``--set drugs`` molecules (stereo as marketed where it is one enantiomer: (S)-nicotine, (-)-menthol)."""


def prepare(size: dict, seed: int) -> tuple[list[ase.Atoms], list[ase.Atoms]]:
    """Training conformers and held-out test conformers (one each), split by molecule."""
    smiles = filter_smiles(read_smiles(nci_smiles_path()), max_heavy_atoms=size["max_heavy"])
    random.Random(seed).shuffle(smiles)
    test: list[ase.Atoms] = []
    train: list[ase.Atoms] = []
    for index, text in enumerate(smiles):
        if len(test) < size["n_test"]:
            test.extend(embed(text, 1, seed=seed + index))
        elif len({a.info["smiles"] for a in train}) < size["n_train"]:
            train.extend(embed(text, size["conformers"], seed=seed + index))
        else:
            break
    return train, test


def force_errors(checkpoint: Path, molecules: list[ase.Atoms], seed: int, draws: int = 4) -> dict[str, float]:
    """Relative error sqrt(sum |f - f*|^2 / sum |f*|^2) of the pseudo-forces at each of ERROR_SIGMAS.

    f* = x0 - x is the GPFF target for x = x0 + sigma * (zero-mean noise); ``draws`` noise draws per
    molecule. 1 is the error of predicting zero. At small sigma the floor is about sqrt(3 / (3N - 3))
    (0.15-0.3 for N = 12-40 atoms): the part of the noise that rigidly rotates x0, which no
    rotation-equivariant network can predict. A network trained with ``pair_noise`` is measured
    against its own target: x re-paired with x0 by element.
    """
    model, payload = load_model(checkpoint, "cpu", "float32")
    pair = bool(payload["train_config"].get("pair_noise"))
    graph = model.config.graph_conditioned
    generator = torch.Generator().manual_seed(seed)
    errors = {}
    for sigma in ERROR_SIGMAS:
        residual = total = 0.0
        for atoms in molecules:
            clean = torch.tensor(atoms.positions - atoms.positions.mean(axis=0), dtype=torch.float32)
            noise = torch.randn((draws, *clean.shape), generator=generator)
            noised = clean + sigma * (noise - noise.mean(dim=1, keepdim=True))
            if pair:
                numbers = torch.as_tensor(atoms.numbers).repeat(draws)
                batch = torch.arange(draws).repeat_interleave(len(atoms))
                flat = pair_noise_by_element(clean.repeat(draws, 1), noised.reshape(-1, 3), numbers, batch)
                noised = flat.reshape(noised.shape)
            topology = topology_classes(len(atoms), molecule_bonds(atoms)) if graph else None
            with torch.no_grad():
                predicted = model.pseudo_forces(torch.as_tensor(atoms.numbers), noised, None, topology)
            residual += float((predicted - (clean - noised)).square().sum())
            total += float((clean - noised).square().sum())
        errors[f"{sigma:g}"] = (residual / total) ** 0.5
    return errors


def judge(structures: list[ase.Atoms], reference: str) -> tuple[int, int, int]:
    """(valid, graph recovered, graph and stereo recovered) counts against the SMILES ``reference``."""
    valid = graph = recovered = 0
    for atoms in structures:
        same_graph, same_stereo = match_smiles(atoms, reference)
        valid += perceive(atoms)[0]
        graph += same_graph
        recovered += same_stereo
    return valid, graph, recovered


def drug_rows(checkpoint: str, nfes: list[int], n: int, seed: int) -> list[dict]:
    """Per drug and NFE: ``n`` ``direct`` conformers judged against the input SMILES, with the wall time of
    the ``sample`` call (checkpoint loading included) and of ETKDG embedding ``n`` conformers."""
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom

    sample(checkpoint, molecule_template(DRUGS["caffeine"]), 1, sampler="direct", steps=1, progress=False,
           device="cpu", on_invalid="keep")  # warm-up: first-call costs are not the model's
    rows = []
    for name, smiles in DRUGS.items():
        template = molecule_template(smiles, seed=seed)
        started = time.perf_counter()
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = seed  # type: ignore[assignment]
        rdDistGeom.EmbedMultipleConfs(Chem.AddHs(Chem.MolFromSmiles(smiles)), numConfs=n, params=params)
        etkdg_s = time.perf_counter() - started
        for nfe in nfes:
            started = time.perf_counter()
            structures = sample(checkpoint, template, n, sampler="direct", steps=nfe, seed=seed, progress=False,
                                device="cpu", on_invalid="keep")
            sample_s = time.perf_counter() - started
            valid, graph, recovered = judge(structures, smiles)
            row = dict(molecule=name, smiles=smiles, atoms=len(template), nfe=nfe, n=n, valid=valid, graph=graph,
                       recovered=recovered, sample_s=sample_s, etkdg_s=etkdg_s)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def drugs_table(rows: list[dict]) -> str:
    """Markdown: one line per drug (counts at each NFE), then the totals."""
    nfes = sorted({row["nfe"] for row in rows})
    header = "| drug | atoms | " + " | ".join(f"valid / graph / + stereo at {nfe} NFE" for nfe in nfes)
    lines = [header + " | ETKDG (s) | ase-psm (s) at " + " / ".join(map(str, nfes)) + " NFE |",
             "|---|---:|" + "---|" * len(nfes) + "---:|---:|"]
    for name in DRUGS:
        mine = {row["nfe"]: row for row in rows if row["molecule"] == name}
        if not mine:
            continue
        first = mine[nfes[0]]
        counts = " | ".join(f"{mine[k]['valid']} / {mine[k]['graph']} / {mine[k]['recovered']} of {first['n']}"
                            for k in nfes)
        times = " / ".join(f"{mine[k]['sample_s']:.2f}" for k in nfes)
        lines.append(f"| {name} | {first['atoms']} | {counts} | {first['etkdg_s']:.2f} | {times} |")
    totals = []
    for nfe in nfes:
        chosen = [row for row in rows if row["nfe"] == nfe]
        total = sum(row["n"] for row in chosen)
        totals.append(" / ".join(f"{100 * sum(row[key] for row in chosen) / total:.0f} %"
                                 for key in ("valid", "graph", "recovered")))
    lines.append("| all | | " + " | ".join(totals) + " | | |")
    return "\n".join(lines)


def edit_template(atoms: ase.Atoms) -> ase.Atoms:
    """The molecule with the first half of its heavy atoms and their hydrogens fixed."""
    heavy = np.flatnonzero(atoms.numbers > 1)
    scaffold = set(heavy[: len(heavy) // 2 + len(heavy) % 2].tolist())
    distances = atoms.get_all_distances()
    for h in np.flatnonzero(atoms.numbers == 1):
        if int(heavy[np.argmin(distances[h, heavy])]) in scaffold:
            scaffold.add(int(h))
    template = atoms.copy()
    template.set_constraint(FixAtoms(indices=sorted(scaffold)))
    return template


class NetworkCalls:
    """Counts forward calls of every PseudoForceNet (with n = 1 structure per call, the NFE)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, module, inputs, output) -> None:
        if isinstance(module, PseudoForceNet):
            self.count += 1


def run_case(
    checkpoint: Path, test: list[ase.Atoms], size: dict, seed: int, *, case: str, sampler: str, nfe: int,
    prior: str = "gaussian", sigma: float = PRIOR_SIGMA, edit: bool = False,
) -> dict:
    """One row of the table: every test molecule generated ``size["samples"]`` times and judged.

    ``sample`` runs with its default checks but keeps every structure (``on_invalid="keep"``): nothing
    is regenerated or dropped, so validity is the network's; a structure that is the template's mirror
    image at every stereocentre is reflected (exact, counted in ``mirrored``), which changes its stereo
    and nothing else.
    """
    calls = NetworkCalls()
    handle = torch.nn.modules.module.register_module_forward_hook(calls)
    started = time.perf_counter()
    valid = graph = recovered = total = mirrored = 0
    try:
        for index, atoms in enumerate(test):
            template = edit_template(atoms) if edit else atoms
            # one structure at a time, so that the adaptive sampler's NFE is counted per structure
            for repeat in range(size["samples"]):
                structures = sample(
                    checkpoint, template, 1, sampler=sampler, steps=nfe, seed=seed + 1000 * repeat + index,
                    prior=prior, sigma_max=sigma, on_invalid="keep", progress=False, device="cpu",
                )
                v, g, r = judge(structures, atoms.info["reference_smiles"])
                valid, graph, recovered, total = valid + v, graph + g, recovered + r, total + len(structures)
                mirrored += structures.report.mirrored
    finally:
        handle.remove()
    row = dict(
        case=case, prior=prior if not edit else "template, free atoms noised", sigma_prior=sigma, sampler=sampler,
        nfe=nfe, mean_nfe=calls.count / max(total, 1), n=total, validity=valid / total,
        graph_recovery=graph / total, recovery=recovered / total, mirrored=mirrored / total,
        wall_s=time.perf_counter() - started,
    )
    print(json.dumps(row), flush=True)
    return row


def evaluate(checkpoint: Path, test: list[ase.Atoms], size: dict, seed: int) -> dict:
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for sampler in size["samplers"]:
            for nfe in size["nfe"]:
                rows.append(run_case(checkpoint, test, size, seed, case="generate", sampler=sampler, nfe=nfe))
        rows.append(run_case(
            checkpoint, test, size, seed, case="structural prior", sampler="adaptive", nfe=size["edit_nfe"],
            prior="structure", sigma=STRUCTURE_SIGMA,
        ))
        rows.append(run_case(
            checkpoint, test, size, seed, case="edit (half the heavy atoms fixed)", sampler="adaptive",
            nfe=size["edit_nfe"], edit=True,
        ))
    return dict(rows=rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--out", default="runs/conformers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, help="training steps (default: the size's)")
    parser.add_argument("--time-limit", type=float, help="training wall-time limit in s (default: the size's)")
    parser.add_argument("--checkpoint", help="evaluate this checkpoint instead of training")
    parser.add_argument("--loss-weighting", choices=("gpff", "epsilon"),
                        help="gpff: min(1, 1/sigma^2) (SchNetPack); epsilon: 1/sigma^2 (default: the size's)")
    parser.add_argument("--learning-rate", type=float, help="peak AdamW learning rate (default: the size's)")
    parser.add_argument("--pair-noise", action="store_true",
                        help="re-pair noised atoms with clean atoms of the same element (SchNetPack's GPFF)")
    parser.add_argument("--graph", action=argparse.BooleanOptionalAction, default=True,
                        help="condition the network on the molecular graph (bond distances); --no-graph: "
                        "only on the elements, as GPFF on QM9")
    parser.add_argument("--memorise", type=int, metavar="N",
                        help="train on N molecules (1 conformer each) and generate those same molecules")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--summarise", nargs="+", metavar="OUT",
                        help="print one table of these finished runs' results.json (e.g. three seeds) and stop")
    parser.add_argument("--set", choices=("nci", "drugs"), default="nci", dest="molecule_set",
                        help="nci: train and test on NCI molecules; drugs: test a trained model (--checkpoint, "
                        "default the shipped 'conformers') on ten well-known drugs")
    parser.add_argument("--nfe", type=int, nargs="+", default=[6, 16], help="--set drugs: network calls per conformer")
    parser.add_argument("--samples", type=int, default=16, help="--set drugs: conformers per drug and NFE")
    args = parser.parse_args(argv)
    if args.summarise:
        runs = [json.loads((Path(out) / "results.json").read_text()) for out in args.summarise]
        print(seeds_table(runs))
        return dict(runs=runs)
    torch.set_num_threads(args.threads)
    if args.molecule_set == "drugs":
        return drugs(args, argv)
    size = dict(SIZES[args.size])
    if args.steps:
        size["steps"] = args.steps
    if args.time_limit:
        size["time_limit"] = args.time_limit
    if args.loss_weighting:
        size["loss_weighting"] = args.loss_weighting
    if args.learning_rate:
        size["learning_rate"] = args.learning_rate
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.memorise:
        size.update(n_train=args.memorise, n_test=0, conformers=1, samples=3)
    train, test = prepare(size, args.seed)
    if args.memorise:
        test = train
    prepare_s = time.perf_counter() - started
    print(f"{len(train)} training conformers of {len({a.info['smiles'] for a in train})} molecules, "
          f"{len(test)} test molecules ({prepare_s:.0f} s)", flush=True)
    if args.checkpoint:
        checkpoint, train_s = Path(args.checkpoint), 0.0
    else:
        started = time.perf_counter()
        checkpoint = train_molecules(
            train, out / "model.pt", steps=size["steps"], batch_size=size["batch_size"],
            model=dict(size["model"], graph_conditioned=args.graph),
            seed=args.seed, time_limit=size["time_limit"], progress=args.progress,
            loss_weighting=size["loss_weighting"], pair_noise=args.pair_noise, learning_rate=size["learning_rate"],
        )
        train_s = time.perf_counter() - started
    steps_done = torch.load(checkpoint, weights_only=True)["step"]
    print(f"trained {steps_done} steps in {train_s:.0f} s", flush=True)
    started = time.perf_counter()
    errors = {"train": force_errors(checkpoint, train[:50], args.seed), "test": force_errors(checkpoint, test, args.seed)}
    print(f"relative pseudo-force error by sigma (Å): {json.dumps(errors)}", flush=True)
    if args.memorise:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            results = dict(rows=[run_case(checkpoint, test, size, args.seed, case="memorised", sampler="adaptive", nfe=64)])
    else:
        results = evaluate(checkpoint, test, size, args.seed)
    results.update(
        force_errors=errors, loss_weighting=size["loss_weighting"], learning_rate=size["learning_rate"], graph=args.graph,
        pair_noise=args.pair_noise, memorise=args.memorise,
        size=args.size, settings={k: v for k, v in size.items()}, n_train_conformers=len(train),
        n_train_molecules=len({a.info["smiles"] for a in train}), n_test=len(test),
        test_smiles=[a.info["reference_smiles"] for a in test], steps_done=steps_done,
        prepare_s=prepare_s, train_s=train_s, evaluate_s=time.perf_counter() - started,
        device=f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{args.threads} thread(s)",
        command=" ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    )
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(markdown_table(results["rows"]))
    return results


def drugs(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """``--set drugs``: the table of :func:`drug_rows`, also written to ``<out>/results.json``."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = drug_rows(args.checkpoint or "conformers", args.nfe, args.samples, args.seed)
    results = dict(
        rows=rows, wall_s=time.perf_counter() - started, checkpoint=args.checkpoint or "conformers",
        device=f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{args.threads} thread(s)",
        command=" ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(drugs_table(rows))
    print(f"wall time {results['wall_s']:.0f} s")
    return results


def seeds_table(runs: list[dict]) -> str:
    """One Markdown table of several runs' rows (e.g. seeds), each cell giving every run's value."""
    def cell(values: list[float], percent: bool = True) -> str:
        return " / ".join(f"{100 * v:.0f}" if percent else f"{v:.1f}" for v in values) + (" %" if percent else "")

    lines = [
        "| case | sampler | steps | mean NFE | validity | graph recovery | graph + stereo recovery | mirrored |",
        "|---|---|---:|---|---|---|---|---|",
    ]
    for index, row in enumerate(runs[0]["rows"]):
        rows = [run["rows"][index] for run in runs]
        lines.append(
            f"| {row['case']} | {row['sampler']} | {row['nfe']} | {cell([r['mean_nfe'] for r in rows], False)} | "
            + " | ".join(cell([r[key] for r in rows]) for key in ("validity", "graph_recovery", "recovery", "mirrored"))
            + " |"
        )
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    lines = [
        ("| case | prior (Å) | sampler | steps | mean NFE | n | validity | graph recovery | graph + stereo recovery "
        "| wall (s) |"),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['prior']}, {row['sigma_prior']:g} | {row['sampler']} | {row['nfe']} "
            f"| {row['mean_nfe']:.1f} | {row['n']} | {100 * row['validity']:.0f} % "
            f"| {100 * row['graph_recovery']:.0f} % "
            f"| {100 * row['recovery']:.0f} % | {row['wall_s']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
