"""Lennard-Jones clusters in reduced units, with the energy of the PSM / iDEM LJ-n benchmarks.

Units: lengths in r_m (the pair-potential minimum), energies in epsilon, kT = 1 by default.

    E(x) = sum_{i != j} [(1/d_ij)^12 - 2 (1/d_ij)^6] + 1/2 sum_i |x_i - x_mean|^2

Every *ordered* pair is counted, i.e. the pair term is twice the usual pair-once sum; the
harmonic trap to the centre of mass keeps the cluster from evaporating.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

__all__ = [
    "ARGON",
    "DEFAULT_STEP_SIZE",
    "lj_energy",
    "lj_forces",
    "lj_initial_positions",
    "lj_local_minimum",
    "make_lj_cold_head",
    "make_lj_dataset",
    "metropolis",
]

#: Atomic number given to Lennard-Jones particles: ASE and the network need an element; the units stay reduced.
ARGON = 18

#: Standard deviation (r_m) of the Gaussian single-particle displacement; about 45 %
#: acceptance for LJ-13 at kT = 1.
DEFAULT_STEP_SIZE = 0.1


def _check_positions(positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim < 2 or positions.shape[-1] != 3:
        raise ValueError(f"positions must have shape (..., n_atoms, 3), got {positions.shape}")
    if positions.shape[-2] < 2:
        raise ValueError(f"need at least 2 atoms, got {positions.shape[-2]}")
    return positions


def lj_energy(positions: np.ndarray) -> np.ndarray:
    """Energies (epsilon, float64) of positions (..., n, 3) in r_m; shape (...)."""
    positions = _check_positions(positions)
    n_atoms = positions.shape[-2]
    i, j = np.triu_indices(n_atoms, k=1)
    diff = positions[..., i, :] - positions[..., j, :]
    inv_r6 = 1.0 / np.sum(diff * diff, axis=-1) ** 3
    pair = 2.0 * np.sum(inv_r6 * inv_r6 - 2.0 * inv_r6, axis=-1)  # ordered pairs: twice pair-once
    centred = positions - positions.mean(axis=-2, keepdims=True)
    trap = 0.5 * np.sum(centred * centred, axis=(-2, -1))
    return pair + trap


def lj_forces(positions: np.ndarray) -> np.ndarray:
    """Forces -dE/dx (epsilon / r_m, float64) of positions (..., n, 3); same shape."""
    positions = _check_positions(positions)
    n_atoms = positions.shape[-2]
    diff = positions[..., :, None, :] - positions[..., None, :, :]  # x_i - x_j
    r2 = np.sum(diff * diff, axis=-1)
    r2[..., np.arange(n_atoms), np.arange(n_atoms)] = np.inf  # no self-interaction
    inv_r2 = 1.0 / r2
    inv_r8 = inv_r2**4
    inv_r14 = inv_r8 * inv_r2**3
    # d/dx_i sum_{k != l} phi(r_kl) = 2 sum_j (phi'(r_ij) / r_ij) (x_i - x_j),
    # with phi'(r) / r = 12 (r^-8 - r^-14)
    pair_forces = 24.0 * np.sum((inv_r14 - inv_r8)[..., None] * diff, axis=-2)
    return pair_forces - (positions - positions.mean(axis=-2, keepdims=True))


def lj_initial_positions(n_atoms: int, n_chains: int, seed: int = 0) -> np.ndarray:
    """Compact starting configurations, shape (n_chains, n_atoms, 3), zero centre of mass.

    The n_atoms simple-cubic lattice points (spacing 1.1 r_m) closest to the origin, each
    chain with its own random rotation, atom order and Gaussian jitter (std 0.05 r_m), so
    that the starting ensemble is rotation- and permutation-invariant.
    """
    if n_atoms < 2 or n_chains < 1:
        raise ValueError(f"need n_atoms >= 2 and n_chains >= 1, got {n_atoms}, {n_chains}")
    half = int(np.ceil(n_atoms ** (1.0 / 3.0))) + 1
    grid = np.arange(-half, half + 1, dtype=np.float64)
    lattice = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    lattice = 1.1 * lattice[np.argsort(np.sum(lattice**2, axis=-1), kind="stable")[:n_atoms]]
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n_chains, 3, 3)))
    rotations = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]  # Haar-uniform O(3)
    orders = np.argsort(rng.random((n_chains, n_atoms)), axis=1)
    positions = lattice[orders] @ rotations + 0.05 * rng.standard_normal((n_chains, n_atoms, 3))
    return positions - positions.mean(axis=1, keepdims=True)


def lj_local_minimum(positions: np.ndarray) -> np.ndarray:
    """The local energy minimum (r_m, float64, zero centre of mass) reached by L-BFGS from positions (n, 3)."""
    from scipy.optimize import minimize  # a dependency of ase

    start = _check_positions(positions)
    if start.ndim != 2:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {start.shape}")
    shape = start.shape

    def energy_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(shape)
        return float(lj_energy(x)), -lj_forces(x).ravel()

    result = minimize(energy_and_gradient, start.ravel(), jac=True, method="L-BFGS-B", options={"gtol": 1e-8})
    minimum = result.x.reshape(shape)
    return minimum - minimum.mean(axis=0)


def _particle_energies(
    positions: np.ndarray, trial: np.ndarray, index: int, others_sum: np.ndarray
) -> np.ndarray:
    """Position-dependent energy terms of particle `index` placed at trial (k, n_chains, 3).

    Pair part counts both orders (i, j) and (j, i); the trap uses
    1/2 sum |x_i - x_mean|^2 = 1/2 sum |x_i|^2 - |sum_i x_i|^2 / (2 n), with others_sum
    (n_chains, 3) the sum over the other particles. Returns (k, n_chains).
    """
    n_atoms = positions.shape[1]
    diff = positions[None] - trial[:, :, None, :]
    r2 = np.einsum("kcnd,kcnd->kcn", diff, diff)
    r2[:, :, index] = np.inf
    inv_r6 = 1.0 / (r2 * r2 * r2)
    pair = 2.0 * np.einsum("kcn->kc", inv_r6 * (inv_r6 - 2.0))
    total = others_sum + trial
    trap = 0.5 * np.einsum("kcd,kcd->kc", trial, trial) - np.einsum(
        "kcd,kcd->kc", total, total
    ) / (2.0 * n_atoms)
    return pair + trap


def metropolis(
    x0: np.ndarray,
    n_sweeps: int,
    *,
    step_size: float = DEFAULT_STEP_SIZE,
    kT: float = 1.0,
    seed: int = 0,
    record_every: int = 1,
    progress: bool = False,
    label: str = "Metropolis",
) -> tuple[np.ndarray, float]:
    """Metropolis Monte Carlo of many independent LJ chains, vectorised over chains.

    One sweep moves each particle once, in order, by a Gaussian displacement of std
    step_size (r_m). x0: (n_chains, n, 3). Returns the configurations after every
    record_every-th sweep, (n_chains, n_sweeps // record_every, n, 3) float64, and the
    acceptance rate over all moves. ``progress`` shows a bar over sweeps, titled ``label``.
    """
    positions = _check_positions(x0).copy()
    if positions.ndim != 3:
        raise ValueError(f"x0 must have shape (n_chains, n_atoms, 3), got {positions.shape}")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        initial_energies = lj_energy(positions)
    if not np.all(np.isfinite(initial_energies)):
        raise ValueError("x0 contains configurations with non-finite energy (overlapping atoms)")
    if n_sweeps < 0 or record_every < 1:
        raise ValueError(
            f"need n_sweeps >= 0 and record_every >= 1, got {n_sweeps}, {record_every}"
        )
    if step_size <= 0 or kT <= 0:
        raise ValueError(f"step_size and kT must be positive, got {step_size}, {kT}")

    n_chains, n_atoms, _ = positions.shape
    rng = np.random.default_rng(seed)
    samples = np.empty((n_chains, n_sweeps // record_every, n_atoms, 3))
    n_accepted = 0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for sweep in tqdm(range(n_sweeps), desc=label, unit="sweep", disable=not progress, leave=False):
            steps = step_size * rng.standard_normal((n_atoms, n_chains, 3))
            log_u = np.log(rng.random((n_atoms, n_chains)))
            total = positions.sum(axis=1)  # re-summed each sweep against round-off drift
            for index in range(n_atoms):
                old = positions[:, index]
                trial = np.stack([old, old + steps[index]])
                others_sum = total - old
                energies = _particle_energies(positions, trial, index, others_sum)
                accept = log_u[index] < (energies[0] - energies[1]) / kT  # NaN / inf: rejected
                positions[accept, index] = trial[1, accept]
                total[accept] = others_sum[accept] + trial[1, accept]
                n_accepted += int(accept.sum())
            if (sweep + 1) % record_every == 0:
                samples[:, (sweep + 1) // record_every - 1] = positions
    n_moves = n_sweeps * n_atoms * n_chains
    return samples, (n_accepted / n_moves if n_moves else 0.0)


def make_lj_dataset(
    n_atoms: int = 13,
    *,
    n_reference: int = 5000,
    n_biased: int = 1000,
    burn_in: int = 500,
    n_chains: int = 5000,
    thinning: int = 200,
    biased_burn_in: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Reference and biased LJ-n data sets (positions in r_m, forces in epsilon / r_m, float64).

    "reference": n_reference decorrelated samples, from n_chains chains after burn_in sweeps,
    one every `thinning` sweeps. "biased": the first n_biased sweeps (one sample per sweep)
    of a single chain after biased_burn_in sweeps, so correlated and covering only part of
    the distribution; "biased_forces" its forces. "unbiased": a random 10 % subset of the
    reference, "unbiased_forces" its forces. All positions are mean-centred.
    """
    if min(n_reference, n_biased, n_chains, thinning) < 1 or min(burn_in, biased_burn_in) < 0:
        raise ValueError("sizes must be positive and burn-in lengths non-negative")
    n_unbiased = n_reference // 10
    if n_unbiased < 1:
        raise ValueError(f"n_reference must be at least 10 for the 10 % subset, got {n_reference}")
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in rng.integers(2**32, size=5)]

    n_chains = min(n_chains, n_reference)
    n_records = -(-n_reference // n_chains)  # ceil
    chains = lj_initial_positions(n_atoms, n_chains, seed=seeds[0])
    if burn_in > 0:
        chains = metropolis(chains, burn_in, seed=seeds[1], record_every=burn_in, progress=progress,
                            label=f"LJ-{n_atoms} burn-in")[0][:, -1]
    reference, _ = metropolis(chains, n_records * thinning, seed=seeds[2], record_every=thinning,
                              progress=progress, label=f"LJ-{n_atoms} reference")
    # sample-major order so that truncation keeps whole records from all chains
    reference = reference.transpose(1, 0, 2, 3).reshape(-1, n_atoms, 3)[:n_reference]

    x0 = lj_initial_positions(n_atoms, 1, seed=seeds[3])
    chain, _ = metropolis(x0, biased_burn_in + n_biased, seed=seeds[4], progress=progress,
                          label=f"LJ-{n_atoms} biased chain")
    biased = chain[0, biased_burn_in:]

    reference = reference - reference.mean(axis=1, keepdims=True)
    biased = biased - biased.mean(axis=1, keepdims=True)
    unbiased = reference[rng.choice(n_reference, size=n_unbiased, replace=False)]
    return {
        "reference": reference,
        "biased": biased,
        "biased_forces": lj_forces(biased),
        "unbiased": unbiased,
        "unbiased_forces": lj_forces(unbiased),
    }


def make_lj_cold_head(n_atoms: int = 13, *, n_frames: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """The first n_frames sweeps (one frame per sweep, no burn-in) of one Metropolis chain started at
    a local energy minimum, as an MD run starts from a minimized structure: a *locally* biased
    training set (narrower nearest-neighbour shell than at kT = 1 while the cluster heats up).

    Returns "cold" positions (n_frames, n_atoms, 3) in r_m, mean-centred, and "cold_forces"
    (epsilon / r_m), float64.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    start_seed, chain_seed = (int(s) for s in np.random.default_rng(seed).integers(2**32, size=2))
    minimum = lj_local_minimum(lj_initial_positions(n_atoms, 1, seed=start_seed)[0])
    chain, _ = metropolis(minimum[None], n_frames, seed=chain_seed)
    cold = chain[0] - chain[0].mean(axis=1, keepdims=True)
    return {"cold": cold, "cold_forces": lj_forces(cold)}
