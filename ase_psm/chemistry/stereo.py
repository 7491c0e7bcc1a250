"""Stereochemistry of one molecule from its bond graph and coordinates (Å): stereocentres and
their handedness (R/S-like), double bonds and their E/Z-like configuration. No RDKit needed."""

from __future__ import annotations

import numpy as np

from .bonds import equivalence_classes, neighbour_lists


def stereocentres(numbers: np.ndarray, bonds: np.ndarray) -> list[tuple[int, tuple[int, int, int]]]:
    """Stereocentres as (centre, three highest-ranked neighbours, highest first).

    Neighbours are ranked by atomic number, then by equivalence class.
    """
    numbers = np.asarray(numbers)
    classes = equivalence_classes(numbers, bonds)
    centres = []
    for centre, neighbours in enumerate(neighbour_lists(len(numbers), bonds)):
        if len(neighbours) != 4 or len({int(classes[j]) for j in neighbours}) != 4:
            continue
        ranked = sorted(neighbours, key=lambda j: (int(numbers[j]), int(classes[j])), reverse=True)
        centres.append((centre, (ranked[0], ranked[1], ranked[2])))
    return centres



def signed_volumes(positions: np.ndarray, centres: list[tuple[int, tuple[int, int, int]]]) -> np.ndarray:
    """Signed volumes (Å³) a · (b × c) of the neighbour vectors of each stereocentre.

    positions: (n_atoms, 3) or (n_structures, n_atoms, 3); returns (n_centres,) or
    (n_structures, n_centres).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if not centres:
        return np.zeros(positions.shape[:-2] + (0,))
    centre = np.array([c for c, _ in centres])
    a, b, c = (np.array([n[k] for _, n in centres]) for k in range(3))
    origin = positions[..., centre, :]
    va, vb, vc = (positions[..., idx, :] - origin for idx in (a, b, c))
    return np.einsum("...i,...i->...", va, np.cross(vb, vc))



def stereo_double_bonds(
    numbers: np.ndarray, bonds: np.ndarray, orders: np.ndarray
) -> list[tuple[int, int, int, int]]:
    """Double bonds with E/Z stereo as (a, b, substituent of a, substituent of b).

    ``bonds`` (n_bonds, 2) and their ``orders`` (2 for a double bond; RDKit's bond type as a
    number). A double bond has E/Z stereo when it is outside every ring and each end carries one
    substituent or two inequivalent ones; each end's substituent is its highest-ranked (atomic
    number, then equivalence class), as for :func:`stereocentres`.
    """
    numbers = np.asarray(numbers)
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    orders = np.asarray(orders, dtype=np.float64).reshape(-1)
    if len(orders) != len(bonds):
        raise ValueError(f"got {len(orders)} bond orders for {len(bonds)} bonds: give one order per bond")
    classes = equivalence_classes(numbers, bonds)
    neighbours = neighbour_lists(len(numbers), bonds)
    found = []
    for (a, b), order in zip(bonds.tolist(), orders.tolist()):
        if order != 2.0 or _in_ring(neighbours, a, b):
            continue
        ends = []
        for atom, other in ((a, b), (b, a)):
            substituents = [j for j in neighbours[atom] if j != other]
            if not substituents or (len(substituents) == 2 and classes[substituents[0]] == classes[substituents[1]]):
                break
            ends.append(max(substituents, key=lambda j: (int(numbers[j]), int(classes[j]))))
        if len(ends) == 2:
            found.append((a, b, ends[0], ends[1]))
    return found



def _in_ring(neighbours: list[list[int]], a: int, b: int) -> bool:
    """True when atoms a and b stay connected without their bond (the bond is in a ring)."""
    seen, frontier = {a}, [a]
    while frontier:
        atom = frontier.pop()
        for j in neighbours[atom]:
            if (atom, j) == (a, b) or j in seen:
                continue
            if j == b:
                return True
            seen.add(j)
            frontier.append(j)
    return False



def cis_trans(positions: np.ndarray, double_bonds: list[tuple[int, int, int, int]]) -> np.ndarray:
    """+1 (cis, Z-like) or -1 (trans) for each double bond's two substituents.

    The sign of the dot product of the substituent vectors projected perpendicular to the bond.
    positions: (n_atoms, 3) or (n_structures, n_atoms, 3); returns (n_bonds,) or (n_structures, n_bonds).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if not double_bonds:
        return np.zeros(positions.shape[:-2] + (0,))
    a, b, sa, sb = (np.array([bond[k] for bond in double_bonds]) for k in range(4))
    axis = positions[..., b, :] - positions[..., a, :]
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True).clip(min=1e-12)
    u = positions[..., sa, :] - positions[..., a, :]
    v = positions[..., sb, :] - positions[..., b, :]
    u = u - np.einsum("...i,...i->...", u, axis)[..., None] * axis
    v = v - np.einsum("...i,...i->...", v, axis)[..., None] * axis
    return np.sign(np.einsum("...i,...i->...", u, v))

