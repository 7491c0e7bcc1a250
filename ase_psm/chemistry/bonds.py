"""Covalent bond graphs of one molecule (Å): perceived from covalent radii or stated in
``atoms.info["bonds"]``, atom equivalence classes, graph-based atom types and renumbering onto a template."""

from __future__ import annotations

import numpy as np
from ase.data import covalent_radii

#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_TOLERANCE = 1.2


def bond_graph(numbers: np.ndarray, positions: np.ndarray, tolerance: float = BOND_TOLERANCE) -> np.ndarray:
    """(..., N, N) boolean adjacency from covalent radii: d_ij < tolerance * (r_i + r_j)."""
    numbers = np.asarray(numbers)
    radii = covalent_radii[numbers]
    limits = tolerance * (radii[:, None] + radii[None, :])
    positions = np.asarray(positions, dtype=np.float64)
    distances = np.linalg.norm(positions[..., :, None, :] - positions[..., None, :, :], axis=-1)
    return (distances < limits) & ~np.eye(len(numbers), dtype=bool)


def is_connected(adjacency: np.ndarray) -> bool:
    """True when the (N, N) boolean adjacency matrix forms one connected graph."""
    seen, frontier = {0}, [0]
    while frontier:
        atom = frontier.pop()
        for neighbour in np.flatnonzero(adjacency[atom]).tolist():
            if neighbour not in seen:
                seen.add(neighbour)
                frontier.append(neighbour)
    return len(seen) == len(adjacency)


def is_molecule(numbers: np.ndarray, positions: np.ndarray) -> bool:
    """True for a template with several elements whose covalent bond graph is connected.

    Bond checks make sense for such templates only: single-element clusters
    (Lennard-Jones, reduced units) have no covalent bonds to keep.
    """
    numbers = np.asarray(numbers)
    if len(set(numbers.tolist())) < 2:
        return False
    return is_connected(bond_graph(numbers, positions))


def neighbour_lists(n_atoms: int, bonds: np.ndarray) -> list[list[int]]:
    """Bonded neighbours of each atom from (n_bonds, 2) index pairs."""
    neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
    for a, b in np.asarray(bonds, dtype=np.int64).reshape(-1, 2):
        neighbours[a].append(int(b))
        neighbours[b].append(int(a))
    return neighbours


def equivalence_classes(numbers: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """(n_atoms,) integer class per atom from iterated extended connectivity (Morgan refinement).

    Atoms in one class are topologically equivalent (e.g. the three H of a methyl group).
    Classes are numbered 0, 1, ... in sorted order of their (element, neighbourhood) keys.
    """
    neighbours = neighbour_lists(len(numbers), bonds)
    classes = np.asarray(numbers, dtype=np.int64)
    for _ in range(len(numbers)):
        keys = [(int(classes[i]), tuple(sorted(int(classes[j]) for j in neighbours[i]))) for i in range(len(numbers))]
        ordered = {key: rank for rank, key in enumerate(sorted(set(keys)))}
        refined = np.array([ordered[key] for key in keys], dtype=np.int64)
        if len(set(refined.tolist())) == len(set(classes.tolist())):
            return refined
        classes = refined
    return classes


def match_to_template(
    numbers: np.ndarray, bonds: np.ndarray, reference_bonds: np.ndarray, max_steps: int = 100_000
) -> np.ndarray | None:
    """Renumber a structure onto a template of the same molecule by graph isomorphism.

    numbers: (N,) elements, shared by structure and template; bonds, reference_bonds: (N, N)
    boolean adjacency of the structure and of the template. Returns a permutation ``p`` (atom i of
    the template is atom ``p[i]`` of the structure) with ``numbers[p] == numbers`` and
    ``bonds[p][:, p] == reference_bonds``, the identity when the graphs already agree, or None
    when the graphs are not isomorphic (or ``max_steps`` backtracking steps found no match).
    Symmetry-equivalent atoms that swapped places (the two halves of a symmetric molecule) are
    put back in the template's order this way.
    """
    numbers = np.asarray(numbers)
    n = len(numbers)
    bonds, reference_bonds = np.asarray(bonds, dtype=bool), np.asarray(reference_bonds, dtype=bool)
    if (bonds == reference_bonds).all():
        return np.arange(n)
    # colours of both graphs from one refinement of their disjoint union, so they are comparable
    union = np.argwhere(np.triu(reference_bonds)).tolist() + (np.argwhere(np.triu(bonds)) + n).tolist()
    colours = equivalence_classes(np.concatenate([numbers, numbers]), np.array(union).reshape(-1, 2))
    reference_colours, colours = colours[:n], colours[n:]
    if sorted(reference_colours.tolist()) != sorted(colours.tolist()):
        return None
    order = _bfs_order(reference_bonds, start=int(np.argmin(np.bincount(reference_colours)[reference_colours])))
    assignment, used = np.full(n, -1), np.zeros(n, dtype=bool)

    def candidates(depth: int) -> list[int]:
        atom = order[depth]
        free = np.flatnonzero((colours == reference_colours[atom]) & ~used).tolist()
        return sorted(free, key=lambda c: c != atom)  # the same index first

    # depth-first search without recursion: options[d] are the untried candidates at depth d
    options, depth = [candidates(0)], 0
    for _ in range(max_steps):
        atom = order[depth]
        if assignment[atom] >= 0:  # back from a dead end below: free this atom's candidate
            used[assignment[atom]], assignment[atom] = False, -1
        placed = order[:depth]
        while options[depth]:
            candidate = options[depth].pop(0)
            if (bonds[candidate, assignment[placed]] == reference_bonds[atom, placed]).all():
                assignment[atom], used[candidate] = candidate, True
                break
        if assignment[atom] >= 0:
            depth += 1
            if depth == n:
                return assignment
            options.append(candidates(depth))
        else:
            options.pop()
            depth -= 1
            if depth < 0:
                return None
    return None


def _bfs_order(adjacency: np.ndarray, start: int) -> list[int]:
    """Atoms in breadth-first order from `start`, then any unreached ones (so each placed atom
    after the first has a placed neighbour when the graph is connected)."""
    order, seen = [start], {start}
    for atom in order:
        for neighbour in np.flatnonzero(adjacency[atom]).tolist():
            if neighbour not in seen:
                seen.add(neighbour)
                order.append(neighbour)
    return order + [atom for atom in range(len(adjacency)) if atom not in seen]


def graph_atom_types(numbers: np.ndarray, positions: np.ndarray) -> list[int]:
    """Atom types of one molecule: equivalence classes of the covalent bond graph of `positions`.

    Unlike elements, these tell a network which atom is bonded to which (the methyl carbon from
    the carbonyl carbon), so that generated structures keep the molecule's bond graph in its atom
    order; topologically equivalent atoms (a methyl group's H) share a type.
    Raises ValueError if the bond graph is not connected (not one molecule).
    """
    numbers = np.asarray(numbers)
    adjacency = bond_graph(numbers, positions)
    if not is_connected(adjacency):
        raise ValueError(
            f"atom types 'graph' need one connected molecule, but the first frame's covalent bond graph "
            f"({len(numbers)} atoms) splits into pieces; train with atom_types='element' instead"
        )
    return equivalence_classes(numbers, np.argwhere(np.triu(adjacency))).tolist()


def molecule_bonds(atoms, tolerance: float = BOND_TOLERANCE) -> np.ndarray:
    """(n_bonds, 2) bonded atom pairs of a molecule: ``atoms.info["bonds"]`` when given, else perceived.

    ``atoms.info["bonds"]`` (e.g. from RDKit, as :func:`ase_psm.chemistry.molecules.embed` writes it) is the
    molecular graph as a chemist states it; without it, bonds are perceived from the coordinates with
    covalent radii (:func:`bond_graph`), which is right for a clean structure, not a noised one.
    """
    if "bonds" in atoms.info:
        bonds = np.asarray(atoms.info["bonds"], dtype=np.int64).reshape(-1, 2)
        if len(bonds) and (bonds.min() < 0 or bonds.max() >= len(atoms) or np.any(bonds[:, 0] == bonds[:, 1])):
            raise ValueError(
                f"atoms.info['bonds'] must hold pairs of distinct atom indices in 0..{len(atoms) - 1}, "
                f"got {bonds.tolist()}"
            )
        return bonds
    adjacency = bond_graph(atoms.numbers, atoms.positions, tolerance)
    return np.argwhere(np.triu(adjacency))
