"""OpenMM flow on alanine dipeptide (amber14, vacuum, 300 K), on a tiny budget.

1. Short MD with a FrameRecorder: frames with forces (eV/Å) and energies (eV). The run has
   no constraints (1 fs steps), so the recorded F/kT is the score of what it samples.
2. Relabel a trajectory that has no forces (the DCD) with label_forces, as one would for
   someone else's trajectory, and check it agrees with the recorder.
3. Train a small PSM model on the recorded frames; atom_types="graph" types each atom by its
   place in the bond graph, so samples keep the topology's bonds in atom order.
4. Sample, check (clashes, bonds, chirality vs the L template, OpenMM energy) and seed
   independent simulations; write the samples as a DCD with the topology.

    python examples/seed_openmm_ala2.py                    # about a minute on 2 free CPU cores
    python examples/seed_openmm_ala2.py --train-steps 1500 --md-steps 100000   # a usable model

With the default tiny budget the model is barely trained: expect most samples to be rejected
(the report says why); nothing rejected is ever simulated.
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

import mdtraj.reporters
import numpy as np
import openmm
from openmm import app, unit

from ase_psm import sample, train
from ase_psm.data import read_frames
from ase_psm.openmm import (
    FrameRecorder,
    SeedSettings,
    label_forces,
    seed_simulations,
    write_structures,
)

TEMPERATURE = 300.0  # K


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--md-steps", type=int, default=5000, help="training MD run (1 fs steps)")
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--n", type=int, default=4, help="structures to generate and seed from")
    parser.add_argument("--run-steps", type=int, default=500, help="MD steps per seeded simulation")
    parser.add_argument("--out", type=Path, default=Path("openmm-ala2-out"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)

    pdb = app.PDBFile(str(files("ase_psm") / "examples_data" / "ala2.pdb"))
    system = app.ForceField("amber14-all.xml").createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None
    )

    # 1. MD with a recorder (every 25 steps) and an mdtraj DCD reporter (positions only)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1 / unit.picosecond, 0.001 * unit.picosecond)
    simulation = app.Simulation(pdb.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pdb.positions)
    simulation.minimizeEnergy()
    recorder = FrameRecorder(25)
    simulation.reporters += [recorder, mdtraj.reporters.DCDReporter(str(args.out / "md.dcd"), 25)]
    simulation.step(args.md_steps)
    simulation.reporters[1].close()
    recorder.save(args.out / "md.extxyz")
    frames = recorder.frames()
    print(f"recorded {len(frames)} frames with forces")

    # 2. a forces-free trajectory labelled by the same System
    unlabelled = read_frames(args.out / "md.dcd", topology=str(files("ase_psm") / "examples_data" / "ala2.pdb"))
    labelled = label_forces(unlabelled, system, topology=pdb.topology, progress=False)
    error = np.abs(labelled.forces - frames.forces).max()
    print(f"label_forces vs recorder: max |dF| = {error:.2e} eV/Å (DCD stores float32 positions)")

    # 3. train at the trajectory's temperature
    checkpoint = train(
        frames, args.out / "ala2.pt", loss="piecewise-weighted", temperature=TEMPERATURE, steps=args.train_steps,
        batch_size=16, atom_types="graph", model={"hidden_irreps": "16x0e + 8x1e", "sh_lmax": 1}, device="cpu", progress=False,
    )

    # 4. sample, check and seed; samples also written as a DCD with the topology
    report = seed_simulations(
        checkpoint, system, pdb.topology, pdb.positions, n=args.n, out=args.out / "runs", sample_steps=20,
        settings=SeedSettings(steps=args.run_steps, report_interval=50), progress=False,
    )
    for rejection in report.rejected:
        print(f"  rejected {rejection.index}: {rejection.category}: {rejection.reason}")
    print(report.summary())
    samples = sample(checkpoint, frames.to_atoms(0), 4, steps=20, progress=False, on_invalid="keep")
    print(f"wrote {write_structures(args.out / 'samples.dcd', samples, pdb.topology)}")


if __name__ == "__main__":
    main()
