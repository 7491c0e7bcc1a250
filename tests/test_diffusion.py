"""Noise, targets (against hand calculations), units and samplers."""

from __future__ import annotations

import math

import pytest
import torch

from ase_psm.data import Frames
from ase_psm.data.dataset import thermal_length
from ase_psm.diffusion import (
    SAMPLERS,
    NoiseSchedule,
    force_weight,
    geometric_sigmas,
    karras_sigmas,
    langevin_step,
    loss_weight,
    pair_noise_by_element,
    pseudo_force_target,
    zero_com_noise,
)
from ase_psm.train import TrainConfig

SCHEDULE = NoiseSchedule(sigma_min=0.01, sigma_max=4.0)


def sigma_at(t: float) -> torch.Tensor:
    return torch.tensor([0.01 * 400.0**t], dtype=torch.float64)


def test_force_weight_by_loss():
    small, large = sigma_at(0.03), sigma_at(0.5)
    assert force_weight("dsm", small, SCHEDULE).item() == 0.0
    assert force_weight("gpff", small, SCHEDULE).item() == 0.0
    assert force_weight("piecewise", small, SCHEDULE).item() == 1.0
    assert force_weight("piecewise", large, SCHEDULE).item() == 0.0
    # sigmoid 1 / (1 + exp(50 (t - 0.05)))
    assert force_weight("piecewise-weighted", small, SCHEDULE).item() == pytest.approx(1 / (1 + math.exp(50 * -0.02)))
    assert force_weight("piecewise-weighted", sigma_at(0.05), SCHEDULE).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown loss"):
        force_weight("mse", small, SCHEDULE)


def test_target_matches_hand_calculation():
    clean = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    noised = torch.tensor([[[0.1, 0.0, 0.0], [0.9, 0.2, 0.0]]], dtype=torch.float64)
    forces = torch.tensor([[[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]], dtype=torch.float64)  # F/kT, zero net force
    sigma = torch.tensor([0.5], dtype=torch.float64)
    dsm = pseudo_force_target(clean, noised, sigma, torch.zeros(1, dtype=torch.float64), forces)
    torch.testing.assert_close(dsm, clean - noised)
    psm = pseudo_force_target(clean, noised, sigma, torch.ones(1, dtype=torch.float64), forces)
    torch.testing.assert_close(psm, 0.25 * forces)  # sigma^2 F / kT
    half = pseudo_force_target(clean, noised, sigma, torch.tensor([0.5], dtype=torch.float64), forces)
    torch.testing.assert_close(half, 0.5 * (clean - noised) + 0.5 * 0.25 * forces)
    with pytest.raises(ValueError, match="force labels"):
        pseudo_force_target(clean, noised, sigma, torch.ones(1, dtype=torch.float64), None)


def test_harmonic_target_has_no_variance_in_a_harmonic_well():
    """In a well of thermal length l (F/kT = -x0/l^2) with sigma_c = l, the mixed target is the exact
    sigma^2 grad log p_sigma(x) = -sigma^2 x / (l^2 + sigma^2) for every clean x0 behind a noised x."""
    length, crossover_t = 0.05, 0.3
    schedule = NoiseSchedule(sigma_min=length / 400.0**crossover_t, sigma_max=length * 400.0 ** (1 - crossover_t))
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(256, 2, 3, generator=generator, dtype=torch.float64) * length
    clean = clean - clean.mean(dim=1, keepdim=True)
    noised = clean[:1] + 0.0 * clean  # one noised structure, many clean ones behind it
    for sigma_value in (0.01, 0.05, 0.4):
        sigma = torch.full((256,), sigma_value, dtype=torch.float64)
        weight = force_weight("harmonic", sigma, schedule, crossover_t=crossover_t)
        assert weight[0].item() == pytest.approx(length**2 / (length**2 + sigma_value**2))
        target = pseudo_force_target(clean, noised, sigma, weight, -clean / length**2)
        exact = -(sigma_value**2) * noised / (length**2 + sigma_value**2)
        torch.testing.assert_close(target, exact)
        assert (clean - noised).std(dim=0).max() > 0.5 * length  # the noise target alone varies


def test_harmonic_weight_at_the_thermal_length_has_the_least_variance_over_many_stiffnesses():
    """Modes of thermal lengths l_k (F/kT = -x0/l_k^2): no scalar weight cancels every mode, and the one of
    least total target variance is 1 / (1 + sigma^2 mean(1/l_k^2)), which is the harmonic weight at the
    data's thermal length 1/RMS(F/kT) (equipartition: mean (F/kT)^2 = mean 1/l_k^2)."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.linspace(0.03, 0.8, 9, dtype=torch.float64).reshape(3, 3)  # one per (atom pair, xyz)
    half = torch.randn(20000, 3, 3, generator=generator, dtype=torch.float64) * lengths
    clean = torch.cat([half, -half], dim=1)  # mirrored pairs: zero centre of mass and net force
    atom_lengths = torch.cat([lengths, lengths])
    noise = torch.randn(20000, 3, 3, generator=generator, dtype=torch.float64)
    scaled_forces = -clean / atom_lengths**2
    frames = Frames(numbers=[6] * 6, positions=clean[:2000].numpy(), forces=scaled_forces[:2000].numpy())
    schedule = NoiseSchedule(sigma_min=0.002, sigma_max=5.0)
    crossover_t = schedule.time(torch.tensor(thermal_length(frames, kT=1.0))).item()
    sigmoid_gaps = []
    for sigma_value in (0.02, 0.1, 0.5):
        noised = clean + sigma_value * torch.cat([noise, -noise], dim=1)
        sigma = torch.full((20000,), sigma_value, dtype=torch.float64)
        exact = -(sigma_value**2) * noised / (atom_lengths**2 + sigma_value**2)
        noise_error = pseudo_force_target(clean, noised, sigma, torch.zeros_like(sigma), None) - exact
        force_error = pseudo_force_target(clean, noised, sigma, torch.ones_like(sigma), scaled_forces) - exact
        # the target's error is (1 - w) noise_error + w force_error: a parabola in w
        best = ((noise_error * (noise_error - force_error)).sum() / ((noise_error - force_error) ** 2).sum()).item()
        weight = force_weight("harmonic", sigma[:1], schedule, crossover_t=crossover_t).item()
        assert weight == pytest.approx(best, abs=0.02)
        sigmoid = force_weight("piecewise-weighted", sigma[:1], schedule, crossover_t=crossover_t).item()
        sigmoid_gaps.append(abs(sigmoid - best))
    assert max(sigmoid_gaps) > 0.1  # piecewise-weighted's switch is off the best weight near the crossover


def test_loss_weights():
    sigma = torch.tensor([0.5, 2.0])
    torch.testing.assert_close(loss_weight("epsilon", sigma), torch.tensor([4.0, 0.25]))
    torch.testing.assert_close(loss_weight("gpff", sigma), torch.tensor([1.0, 0.25]))
    # (sigma^2 + sigma_data^2) / sigma^4 with sigma_data = 0.5: (0.25 + 0.25)/0.0625 = 8, (4 + 0.25)/16
    torch.testing.assert_close(loss_weight("score", sigma, 0.5), torch.tensor([8.0, 4.25 / 16]))
    with pytest.raises(ValueError, match="unknown loss weighting"):
        loss_weight("uniform", sigma)


def test_force_crossover_moves_the_switch():
    sigma = sigma_at(0.2)
    assert force_weight("piecewise", sigma, SCHEDULE).item() == 0.0
    assert force_weight("piecewise", sigma, SCHEDULE, crossover_t=0.3).item() == 1.0
    assert force_weight("piecewise-weighted", sigma, SCHEDULE, crossover_t=0.2).item() == pytest.approx(0.5)


def test_kT_from_temperature_in_eV():
    assert TrainConfig(temperature=500.0).resolved_kT == pytest.approx(500.0 * 8.617333262e-5, rel=1e-6)
    assert TrainConfig(kT=1.0).resolved_kT == 1.0
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(temperature=300.0, kT=1.0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        TrainConfig(temperature=-1.0)


def test_schedules():
    generator = torch.Generator().manual_seed(0)
    sigma = SCHEDULE.draw(10000, generator)
    assert sigma.min() >= 0.01 and sigma.max() <= 4.0
    t = SCHEDULE.time(sigma)
    assert abs(t.mean().item() - 0.5) < 0.02  # log-uniform
    gpff = NoiseSchedule(0.05, 30.0, kind="log-normal").draw(10000, generator)
    assert gpff.min() >= 0.05 and gpff.max() <= 30.0
    assert abs(gpff.log().median().item() + 0.7) < 0.05
    for sigmas in (karras_sigmas(10, 0.01, 4.0), geometric_sigmas(10, 0.01, 4.0)):
        assert len(sigmas) == 11 and sigmas[-1] == 0
        assert sigmas[0] == pytest.approx(4.0) and sigmas[-2] == pytest.approx(0.01)
        assert torch.all(sigmas[1:] < sigmas[:-1])
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        NoiseSchedule(1.0, 0.5)


def test_zero_com_noise_and_fixed_atoms():
    noise = zero_com_noise((4, 6, 3), torch.Generator().manual_seed(0))
    torch.testing.assert_close(noise.mean(dim=1), torch.zeros(4, 3), atol=1e-6, rtol=0)
    free = torch.tensor([True, False, True, True, False, True])
    masked = zero_com_noise((4, 6, 3), torch.Generator().manual_seed(0), free=free)
    assert torch.all(masked[:, ~free] == 0) and torch.all(masked[:, free] != 0)


def test_pair_noise_permutes_within_element_and_structure_and_shortens_targets():
    generator = torch.Generator().manual_seed(0)
    numbers = torch.tensor([6, 1, 1, 1, 8, 6, 6, 1, 1])
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1])
    clean = torch.randn(9, 3, generator=generator, dtype=torch.float64)
    noised = clean + 3.0 * torch.randn(9, 3, generator=generator, dtype=torch.float64)
    paired = pair_noise_by_element(clean, noised, numbers, batch)
    for structure in (0, 1):
        for z in (1, 6, 8):
            mask = (batch == structure) & (numbers == z)
            assert sorted(map(tuple, paired[mask].tolist())) == sorted(map(tuple, noised[mask].tolist()))
    assert torch.equal(paired[4], noised[4]) and torch.equal(paired[0], noised[0])  # the only O and C of its structure
    assert (clean - paired).square().sum() < (clean - noised).square().sum()  # 3 Å noise: some pairs swap
    # small noise: every atom keeps its own point
    small = clean + 0.01 * torch.randn(9, 3, generator=generator, dtype=torch.float64)
    assert torch.equal(pair_noise_by_element(clean, small, numbers, batch), small)
    # rotation-equivariant: rotating both structures rotates the re-paired points
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))[0]
    torch.testing.assert_close(pair_noise_by_element(clean @ rotation, noised @ rotation, numbers, batch), paired @ rotation)


MEANS = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, -1.0, 0.0]], dtype=torch.float64)
MEANS = MEANS - MEANS.mean(dim=0)
SPREAD = 0.1


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact posterior mean for data ~ N(MEANS, SPREAD^2) per coordinate: a known target for samplers."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    return (SPREAD**2 * x + sigma**2 * MEANS.to(x.device)) / (SPREAD**2 + sigma**2)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_are_finite_centred_and_keep_fixed_atoms(name, device):
    generator = torch.Generator().manual_seed(0)  # on the CPU, as sample() keeps it
    x = 3.0 * zero_com_noise((64, 4, 3), generator, torch.float64, device)
    sampler = SAMPLERS[name]
    sigmas = geometric_sigmas(30, 0.01, 3.0).to(device)
    out = sampler(gaussian_denoiser, x, sigmas, generator=generator)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out.mean(dim=1), x.new_zeros(64, 3), atol=1e-10, rtol=0)
    assert (out - MEANS.to(device)).abs().mean() < 0.3  # denoised onto the data, not left as noise

    free = torch.tensor([True, False, True, True], device=device)
    kept = sampler(gaussian_denoiser, x.clone(), sigmas, generator=generator, free=free)
    torch.testing.assert_close(kept[:, 1], x[:, 1])


def test_adaptive_sampler_returns_the_denoised_structure_at_its_last_step():
    """Out of steps, adaptive denoising returns x0_hat, not x0_hat plus fresh noise."""
    generator = torch.Generator().manual_seed(0)
    x = 3.0 * zero_com_noise((16, 4, 3), generator, torch.float64)
    one_step = SAMPLERS["adaptive"](gaussian_denoiser, x, torch.tensor([3.0, 0.0]), generator=generator)
    torch.testing.assert_close(one_step, gaussian_denoiser(x, torch.tensor(3.0)))
    calls = []

    def counting(y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        calls.append(len(y))
        return gaussian_denoiser(y, sigma)

    SAMPLERS["adaptive"](counting, x, geometric_sigmas(4, 0.02, 3.0), generator=generator)
    assert calls == [16, 16, 16, 16]  # not converged after 4 calls: all run to the limit


def test_pc_sampler_recovers_gaussian_statistics():
    """With an exact denoiser, PC sampling gives the data mean and spread."""
    generator = torch.Generator().manual_seed(0)
    x = 3.0 * zero_com_noise((2000, 4, 3), generator, torch.float64)
    out = SAMPLERS["pc"](gaussian_denoiser, x, geometric_sigmas(200, 0.005, 3.0), generator=generator)
    assert (out.mean(dim=0) - MEANS).abs().max() < 0.02
    # zero-COM noise over 4 atoms keeps 3/4 of the per-coordinate variance
    assert (out - out.mean(dim=0)).std().item() == pytest.approx(SPREAD * (3 / 4) ** 0.5, rel=0.1)


def test_pc_final_corrector_steps_equilibrate_a_short_schedule():
    """Four levels leave the spread twice too wide; Langevin steps at sigma_min bring it to the exact value."""
    sigmas = geometric_sigmas(4, 0.05, 3.0)
    # the final denoising returns E[x0 | x] of x ~ N(MEANS, SPREAD^2 + sigma^2), zero-COM over 4 atoms
    exact = SPREAD**2 / (SPREAD**2 + 0.05**2) ** 0.5 * (3 / 4) ** 0.5
    spreads = {}
    for steps in (0, 200):
        generator = torch.Generator().manual_seed(0)
        x = 3.0 * zero_com_noise((2000, 4, 3), generator, torch.float64)
        out = SAMPLERS["pc"](gaussian_denoiser, x, sigmas, generator=generator, final_corrector_steps=steps)
        assert (out.mean(dim=0) - MEANS).abs().max() < 0.02
        spreads[steps] = (out - out.mean(dim=0)).std().item()
    assert spreads[0] > 1.5 * exact
    assert spreads[200] == pytest.approx(exact, rel=0.05)


def test_pc_rejects_negative_final_corrector_steps():
    x = zero_com_noise((2, 4, 3), torch.Generator().manual_seed(0), torch.float64)
    with pytest.raises(ValueError, match="final_corrector_steps"):
        SAMPLERS["pc"](gaussian_denoiser, x, geometric_sigmas(4, 0.05, 3.0), final_corrector_steps=-1)


def test_langevin_step_keeps_no_autograd_graph():
    """Called on its own (outside a sampler), a step must not chain graphs through the network."""
    weight = torch.ones((), dtype=torch.float64, requires_grad=True)
    x = zero_com_noise((8, 4, 3), torch.Generator().manual_seed(0), torch.float64)
    for _ in range(3):
        x = langevin_step(lambda y, sigma: weight * gaussian_denoiser(y, sigma), x, torch.tensor(0.05), 0.16, None, None)
    assert not x.requires_grad and x.grad_fn is None


def test_every_sampler_has_one_signature():
    import inspect
    from typing import get_args

    from ase_psm.diffusion.samplers import COMMON_ARGUMENTS, SamplerName, noise_levels, sampler_options

    assert tuple(SAMPLERS) == get_args(SamplerName)
    for name, sampler in SAMPLERS.items():
        parameters = inspect.signature(sampler).parameters
        assert list(parameters)[:3] == ["denoise", "x", "sigmas"], name
        assert set(COMMON_ARGUMENTS) | set(sampler_options(name)) == set(list(parameters)[3:]), name
    assert sampler_options("pc") == ("snr", "final_corrector_steps") and sampler_options("ancestral") == ()
    torch.testing.assert_close(noise_levels("pc", 4, 0.05, 3.0), geometric_sigmas(4, 0.05, 3.0))
    assert len(noise_levels("heun", 4, 0.05, 3.0)) == 5
