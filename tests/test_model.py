"""Equivariance, chirality, dtypes and graphs of the pseudo-force network."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from ase_psm.model import ModelConfig, PseudoForceNet, build_edges

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies

# CHFClBr: a stereocentre with four different substituents
CHIRAL_NUMBERS = torch.tensor([6, 1, 9, 17, 35])
CHIRAL_POSITIONS = torch.tensor(
    [[0.0, 0.0, 0.0], [0.63, 0.63, 0.63], [-0.8, -0.8, 0.7], [-1.0, 1.0, -1.0], [1.1, -1.1, -1.1]],
    dtype=torch.float64,
)


def make_net(
    sigma_conditioned: bool = True, dtype: torch.dtype = torch.float64, device: str = "cpu", **overrides
) -> PseudoForceNet:
    torch.manual_seed(0)
    config = ModelConfig(**{"species": [1, 6, 9, 17, 35], "sigma_conditioned": sigma_conditioned, **overrides})
    return PseudoForceNet(config).to(device=device, dtype=dtype)


def structures(n: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return CHIRAL_POSITIONS + 0.3 * torch.randn(n, 5, 3, generator=generator, dtype=torch.float64)


SIGMA = torch.tensor([0.05, 0.5, 2.0], dtype=torch.float64)


EQUIVARIANCE_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5}
"""Absolute and relative tolerance of the rotated output per precision."""


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("sigma_conditioned", "conservative", "shrink_graph"),
                         [(True, False, True), (False, False, True), (True, True, True), (True, False, False),
                          (True, True, False)])
def test_rotation_and_translation_equivariance(sigma_conditioned, conservative, shrink_graph, dtype, device):
    net = make_net(sigma_conditioned, dtype, device, conservative=conservative, shrink_graph=shrink_graph)
    numbers, x = CHIRAL_NUMBERS.to(device), structures().to(device, dtype)
    sigma = SIGMA.to(device, dtype) if sigma_conditioned else None
    rotation = o3.rand_matrix(dtype=torch.float64).to(device, dtype)
    out = net.pseudo_forces(numbers, x, sigma)
    moved = net.pseudo_forces(numbers, x @ rotation.T + torch.tensor([1.0, -2.0, 0.5]).to(device, dtype), sigma)
    assert out.abs().max() > 1e-3
    tolerance = EQUIVARIANCE_TOLERANCE[dtype]
    torch.testing.assert_close(moved, out @ rotation.T, atol=tolerance, rtol=tolerance)


def test_an_unshrunk_graph_keeps_the_clean_neighbour_count_at_large_noise():
    x = 1.5 * torch.arange(40, dtype=torch.float64)[:, None] * torch.tensor([1.0, 0.0, 0.0])  # a chain, 1.5 Å apart
    numbers, sigma = torch.tensor([6] * 40), torch.tensor([4.0], dtype=torch.float64)
    edges = {}
    for shrink_graph in (True, False):
        net = make_net(cutoff=2.0, shrink_graph=shrink_graph)
        counted = []
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda module, args, output, counted=counted: counted.append(len(args[1]))
            if type(module).__name__ == "ProductInteraction" else None)
        net.pseudo_forces(numbers, x[None], sigma)
        handle.remove()
        edges[shrink_graph] = counted[0]
    assert edges[False] == 2 * 39  # nearest neighbours only, as in the clean chain
    assert edges[True] > 6 * 39  # shrunk 4.1-fold: each atom reaches its 5 nearest on either side


@pytest.mark.parametrize("cutoff", [10.0, 2.0])
def test_permutation_equivariance(cutoff):
    net = make_net(cutoff=cutoff)
    numbers = torch.tensor([6, 6, 1, 1, 1])
    x = structures()
    permutation = torch.tensor([3, 1, 4, 0, 2])
    out = net.pseudo_forces(numbers, x, SIGMA)
    permuted = net.pseudo_forces(numbers[permutation], x[:, permutation], SIGMA)
    torch.testing.assert_close(permuted, out[:, permutation], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(("conservative", "relative_difference"), [(False, 1e-4), (True, 1e-7)])
def test_mirror_image_is_not_mapped_to_mirrored_output(conservative, relative_difference):
    """SE(3) but not E(3): a chiral molecule and its enantiomer get different (non-mirrored) outputs.

    An E(3)-equivariant network would differ by rounding (~1e-16). At random weights the energy head
    tells mirror images apart only through triple products of the second interaction, weakly (~1e-5).
    """
    net = make_net(conservative=conservative)
    x = structures()
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    out = net.pseudo_forces(CHIRAL_NUMBERS, x, SIGMA)
    out_of_mirror = net.pseudo_forces(CHIRAL_NUMBERS, x @ mirror, SIGMA)
    difference = (out_of_mirror - out @ mirror).abs().max()
    assert difference > relative_difference * out.abs().max()


def test_conservative_output_is_a_gradient():
    """The conservative head's pseudo-forces are -grad E: their Jacobian is symmetric (no curl), and
    training can differentiate them (create_graph) while evaluation under no_grad still works."""
    net = make_net(conservative=True)
    x = structures(1)[0]
    sigma = torch.tensor([0.3], dtype=torch.float64)

    def forces(flat: torch.Tensor) -> torch.Tensor:
        return net.pseudo_forces(CHIRAL_NUMBERS, flat.reshape(1, 5, 3), sigma).reshape(-1)

    jacobian = torch.autograd.functional.jacobian(forces, x.reshape(-1))
    assert jacobian.abs().max() > 1e-3
    torch.testing.assert_close(jacobian, jacobian.T, atol=1e-9, rtol=1e-7)
    direct = make_net()
    direct_jacobian = torch.autograd.functional.jacobian(
        lambda flat: direct.pseudo_forces(CHIRAL_NUMBERS, flat.reshape(1, 5, 3), sigma).reshape(-1), x.reshape(-1)
    )
    assert (direct_jacobian - direct_jacobian.T).abs().max() > 1e-4  # the direct head has no such constraint
    net.train()
    loss = net.pseudo_forces(CHIRAL_NUMBERS, structures(), SIGMA).square().sum()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net.pseudo_forces(CHIRAL_NUMBERS, structures(), SIGMA)).all()


def test_dtype_is_per_instance_and_global_default_untouched():
    default = torch.get_default_dtype()
    net32 = PseudoForceNet(ModelConfig(species=[6]))
    net64 = PseudoForceNet(ModelConfig(species=[6])).double()
    x = torch.randn(2, 4, 3)
    assert net32.pseudo_forces(torch.full((4,), 6), x, torch.tensor(0.5)).dtype == torch.float32
    assert net64.pseudo_forces(torch.full((4,), 6), x.double(), torch.tensor(0.5)).dtype == torch.float64
    assert torch.get_default_dtype() == default


def test_bad_inputs_give_clear_errors():
    net = make_net()
    with pytest.raises(ValueError, match="does not know"):
        net.pseudo_forces(torch.tensor([6, 8]), torch.randn(1, 2, 3).double(), torch.tensor(0.1))
    with pytest.raises(ValueError, match="sigma-conditioned"):
        net.pseudo_forces(CHIRAL_NUMBERS, structures(1), None)
    with pytest.raises(ValueError, match="even parity"):
        PseudoForceNet(ModelConfig(species=[6], hidden_irreps="8x0e + 4x1o"))
    with pytest.raises(ValueError, match="species"):
        PseudoForceNet(ModelConfig())


def test_edges_match_brute_force():
    generator = torch.Generator().manual_seed(3)
    counts = [3, 5, 5, 1, 4]
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    positions = 2.0 * torch.randn(len(batch), 3, generator=generator)
    source, destination = build_edges(batch, positions, cutoff=2.5)
    found = set(zip(source.tolist(), destination.tolist()))
    expected = {
        (i, j)
        for i in range(len(batch))
        for j in range(len(batch))
        if i != j and batch[i] == batch[j] and float((positions[i] - positions[j]).norm()) < 2.5
    }
    assert found == expected and len(source) == len(found)
    with pytest.raises(ValueError, match="contiguous"):
        build_edges(torch.tensor([0, 1, 0]), torch.zeros(3, 3))


def test_large_noise_output_scales_with_structure():
    """At large sigma a sigma-conditioned network's pseudo-forces grow like sigma (Å)."""
    net = make_net()
    x = structures(1)
    small = net.pseudo_forces(CHIRAL_NUMBERS, x, torch.tensor([0.01], dtype=torch.float64))
    large = net.pseudo_forces(CHIRAL_NUMBERS, 10 * x, torch.tensor([10.0], dtype=torch.float64))
    assert torch.isfinite(large).all()
    assert large.abs().mean() > 10 * small.abs().mean()


def test_an_atom_beyond_the_cutoff_of_all_others_still_sees_the_structure():
    """The centroid channel: an atom farther than the cutoff from every other gets a pseudo-force that
    depends on where it is (without it, it would get the same output wherever it drifts)."""
    net = make_net(cutoff=2.0)
    x = CHIRAL_POSITIONS.clone()[None].repeat(2, 1, 1)
    x[0, 4] = torch.tensor([6.0, 0.0, 0.0], dtype=torch.float64)
    x[1, 4] = torch.tensor([0.0, 8.0, 1.0], dtype=torch.float64)
    out = net.pseudo_forces(CHIRAL_NUMBERS, x, torch.tensor([0.3, 0.3], dtype=torch.float64))
    assert (out[0, 4] - out[1, 4]).norm() > 1e-4 * out.abs().max()


def test_pseudo_forces_have_no_net_translation():
    net = make_net()
    out = net.pseudo_forces(CHIRAL_NUMBERS, structures(), SIGMA)
    torch.testing.assert_close(out.sum(dim=1), torch.zeros(3, 3, dtype=torch.float64), atol=1e-12, rtol=0)


# ethanol-like CH3-CH2-OH in a fixed atom order: C C O H H H H H H
ETHANOL_NUMBERS = torch.tensor([6, 6, 8, 1, 1, 1, 1, 1, 1])
ETHANOL_POSITIONS = torch.tensor(
    [[0.0, 0.0, 0.0], [1.52, 0.0, 0.0], [2.0, 1.35, 0.0], [-0.36, -1.03, 0.0], [-0.36, 0.51, 0.89],
     [-0.36, 0.51, -0.89], [1.88, -0.51, 0.89], [1.88, -0.51, -0.89], [2.95, 1.3, 0.0]],
    dtype=torch.float64,
)


def test_graph_atom_types_tell_bonded_partners_apart():
    from ase_psm.chemistry.bonds import graph_atom_types

    types = graph_atom_types(ETHANOL_NUMBERS.numpy(), ETHANOL_POSITIONS.numpy())
    assert types[3] == types[4] == types[5]  # methyl H
    assert types[6] == types[7] != types[3]  # CH2 H differ from methyl H
    assert len({types[0], types[1]}) == 2 and types[8] not in types[3:8]  # two carbons, hydroxyl H
    with pytest.raises(ValueError, match="one connected molecule"):
        graph_atom_types(ETHANOL_NUMBERS.numpy(), (ETHANOL_POSITIONS + torch.arange(9)[:, None] * 3.0).numpy())


def test_single_molecule_network_is_equivariant_within_types_and_checks_atom_order():
    from ase_psm.chemistry.bonds import graph_atom_types

    types = graph_atom_types(ETHANOL_NUMBERS.numpy(), ETHANOL_POSITIONS.numpy())
    net = make_net(species=[1, 6, 8], site_numbers=ETHANOL_NUMBERS.tolist(), site_types=types)
    element_net = make_net(species=[1, 6, 8])
    generator = torch.Generator().manual_seed(2)
    x = ETHANOL_POSITIONS + 0.1 * torch.randn(3, 9, 3, generator=generator, dtype=torch.float64)
    out = net.pseudo_forces(ETHANOL_NUMBERS, x, SIGMA)
    rotation = o3.rand_matrix(dtype=torch.float64)
    torch.testing.assert_close(net.pseudo_forces(ETHANOL_NUMBERS, x @ rotation.T + 1.0, SIGMA), out @ rotation.T)
    methyl_swap = torch.tensor([0, 1, 2, 5, 3, 4, 6, 7, 8])  # permute the three methyl H
    torch.testing.assert_close(net.pseudo_forces(ETHANOL_NUMBERS, x[:, methyl_swap], SIGMA), out[:, methyl_swap])
    # the types change the output: the element-only network cannot tell methyl from CH2 hydrogens
    swap_across = torch.tensor([0, 1, 2, 6, 4, 5, 3, 7, 8])
    element_out = element_net.pseudo_forces(ETHANOL_NUMBERS, x, SIGMA)
    torch.testing.assert_close(element_net.pseudo_forces(ETHANOL_NUMBERS, x[:, swap_across], SIGMA),
                               element_out[:, swap_across])
    assert not torch.allclose(net.pseudo_forces(ETHANOL_NUMBERS, x[:, swap_across], SIGMA), out[:, swap_across])
    with pytest.raises(ValueError, match="not in the order the model was trained on"):
        net.pseudo_forces(ETHANOL_NUMBERS[[2, 1, 0, 3, 4, 5, 6, 7, 8]], x, SIGMA)
    with pytest.raises(ValueError, match="one molecule of 9 atoms"):
        net.pseudo_forces(CHIRAL_NUMBERS[:2], x[:, :2], SIGMA)
    with pytest.raises(ValueError, match="go together"):
        make_net(species=[1, 6, 8], site_types=types)


def test_edge_chunks_give_the_whole_batch_result():
    """Messages summed in chunks of a few edges equal one whole-batch sum, with gradients."""
    whole_net, chunked_net = make_net(), make_net(edge_chunk=7)
    x = structures(4).requires_grad_(True)
    sigma = torch.tensor([0.1, 0.4, 1.0, 2.0], dtype=torch.float64)

    def forces_and_gradient(net: PseudoForceNet) -> tuple[torch.Tensor, torch.Tensor]:
        forces = net.pseudo_forces(CHIRAL_NUMBERS, x, sigma)
        (gradient,) = torch.autograd.grad(forces.square().sum(), x)
        return forces, gradient

    whole, whole_gradient = forces_and_gradient(whole_net)
    chunked, chunked_gradient = forces_and_gradient(chunked_net)
    assert torch.allclose(chunked, whole, atol=1e-10)
    assert torch.allclose(chunked_gradient, whole_gradient, atol=1e-10)


ETHANOL_BONDS = [(0, 1), (1, 2), (0, 3), (0, 4), (0, 5), (1, 6), (1, 7), (2, 8)]


def test_topology_classes_count_bonds_on_the_shortest_path():
    from ase_psm.model import topology_classes

    classes = topology_classes(6, [(0, 1), (1, 2), (2, 3), (3, 4)]).reshape(6, 6)  # atom 5 unbonded
    assert classes[0].tolist() == [0, 1, 2, 3, 0, 0]
    assert classes[2].tolist() == [2, 1, 0, 1, 2, 0]
    assert torch.equal(classes, classes.T) and classes[5].abs().sum() == 0
    ring = topology_classes(6, [(i, (i + 1) % 6) for i in range(6)]).reshape(6, 6)
    assert ring[0].tolist() == [0, 1, 2, 3, 2, 1]  # the short way round


@pytest.mark.parametrize("sigma_conditioned", [True, False])
def test_graph_conditioned_network_is_equivariant_and_reads_the_graph(sigma_conditioned):
    from ase_psm.model import topology_classes

    net = make_net(sigma_conditioned, species=[1, 6, 8], graph_conditioned=True)
    topology = topology_classes(9, ETHANOL_BONDS)
    generator = torch.Generator().manual_seed(3)
    x = ETHANOL_POSITIONS + 0.2 * torch.randn(3, 9, 3, generator=generator, dtype=torch.float64)
    sigma = SIGMA if sigma_conditioned else None
    out = net.pseudo_forces(ETHANOL_NUMBERS, x, sigma, topology)
    rotation = o3.rand_matrix(dtype=torch.float64)
    torch.testing.assert_close(net.pseudo_forces(ETHANOL_NUMBERS, x @ rotation.T - 2.0, sigma, topology), out @ rotation.T)
    # renumbering atoms together with the bonds renumbers the output
    order = torch.tensor([8, 2, 5, 1, 0, 7, 3, 6, 4])
    new_index = torch.argsort(order)
    renumbered_bonds = [(int(new_index[a]), int(new_index[b])) for a, b in ETHANOL_BONDS]
    permuted = net.pseudo_forces(ETHANOL_NUMBERS[order], x[:, order], sigma, topology_classes(9, renumbered_bonds))
    torch.testing.assert_close(permuted, out[:, order])
    # the graph is an input: the same coordinates with the OH hydrogen bonded to C2 instead give other forces
    other = topology_classes(9, [(1, 8) if bond == (2, 8) else bond for bond in ETHANOL_BONDS])
    assert not torch.allclose(net.pseudo_forces(ETHANOL_NUMBERS, x, sigma, other), out)


def test_graph_conditioned_flat_batch_matches_one_molecule_at_a_time():
    from ase_psm.model import topology_classes

    net = make_net(species=[1, 6, 8, 9, 17, 35], graph_conditioned=True)
    chiral_bonds = [(0, 1), (0, 2), (0, 3), (0, 4)]
    ethanol = ETHANOL_POSITIONS + 0.1
    chiral = CHIRAL_POSITIONS - 0.1
    numbers = torch.cat([ETHANOL_NUMBERS, CHIRAL_NUMBERS])
    batch = torch.tensor([0] * 9 + [1] * 5)
    sigma = torch.tensor([0.3, 0.7], dtype=torch.float64)
    topology = torch.cat([topology_classes(9, ETHANOL_BONDS), topology_classes(5, chiral_bonds)])
    flat = net.pseudo_forces_flat(numbers, torch.cat([ethanol, chiral]), batch, sigma, topology)
    alone = [
        net.pseudo_forces(ETHANOL_NUMBERS, ethanol[None], sigma[:1], topology_classes(9, ETHANOL_BONDS))[0],
        net.pseudo_forces(CHIRAL_NUMBERS, chiral[None], sigma[1:], topology_classes(5, chiral_bonds))[0],
    ]
    torch.testing.assert_close(flat, torch.cat(alone))
    # each atom's bond count comes from the graph (not from the edges, which a cutoff may drop)
    from ase_psm.model.network import _bond_counts

    assert _bond_counts(topology, batch).tolist() == [4, 4, 2, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="conditioned on the molecular graph"):
        net.pseudo_forces(ETHANOL_NUMBERS, ethanol[None], sigma[:1])
    with pytest.raises(ValueError, match=r"expected \(81,\)"):
        net.pseudo_forces(ETHANOL_NUMBERS, ethanol[None], sigma[:1], topology_classes(5, chiral_bonds))


@pytest.mark.parametrize("conservative", [False, True])
def test_one_molecule_graph_network_reads_its_bonds_as_a_passed_topology(conservative):
    from ase_psm.model import topology_classes

    net = make_net(species=[1, 6, 8], graph_conditioned=True, conservative=conservative, cutoff=2.0,
                   site_numbers=ETHANOL_NUMBERS.tolist(), site_types=list(range(9)), site_bonds=ETHANOL_BONDS)
    positions = ETHANOL_POSITIONS + 0.2 * torch.randn(3, 9, 3, generator=torch.Generator().manual_seed(2),
                                                      dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.4, 2.0], dtype=torch.float64)
    passed = net.pseudo_forces(ETHANOL_NUMBERS, positions, sigma, topology_classes(9, ETHANOL_BONDS))
    torch.testing.assert_close(net.pseudo_forces(ETHANOL_NUMBERS, positions, sigma), passed, rtol=0, atol=0)
