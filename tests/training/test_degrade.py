"""The real-world degradations of training: off by default (today's recipe reproduces), each
bounded by its config, seeded, on a share of the batch, and whole-batch."""

from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

import torch.nn.functional as F

from ferkit.data import synthetic
from ferkit.training import degrade
from ferkit.training.augment import AugmentConfig, augment, random_affine, random_erase

SHARES = ("light_p", "blur_p", "noise_p", "turn_p", "occlude_p")
STILL = AugmentConfig(rotate_deg=0, scale=0, shift=0, hflip=False, erase_p=0)  # no affine


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    images, _, _ = synthetic.make_dataset({"Training": 9}, seed=2)
    return torch.from_numpy(images[:64]).float().unsqueeze(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image: True where any pixel differs by more than float error."""
    return (a - b).abs().flatten(1).amax(1) > 1e-2


def test_every_degradation_is_off_by_default_so_the_old_recipe_reproduces(batch):
    cfg = AugmentConfig()
    assert all(getattr(cfg, share) == 0 for share in SHARES)
    g = gen(7)
    expected = random_erase(random_affine(batch, cfg, g), cfg, g)
    assert torch.equal(augment(batch, cfg, gen(7)), expected)


@pytest.mark.parametrize("share", SHARES)
def test_each_family_follows_its_share_is_seeded_and_stays_in_range(batch, share):
    on = dataclasses.replace(STILL, **{share: 1.0})
    out = augment(batch, on, gen(1))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 255 + 1e-3
    assert torch.equal(out, augment(batch, on, gen(1)))
    assert not torch.equal(out, augment(batch, on, gen(2)))
    assert changed(out, batch).float().mean() > 0.9  # (a draw may be near the identity)
    half = changed(augment(batch, dataclasses.replace(on, **{share: 0.5}), gen(1)), batch)
    assert 0.25 < half.float().mean() < 0.75
    assert torch.allclose(augment(batch, STILL, gen(1)), batch, atol=1e-2)  # all off: still


def test_relighting_stays_within_its_ranges(batch):
    out = degrade.relight(batch, 1.0, brightness=10, contrast=0, gamma=0, gen=gen())
    shift = (out - batch).flatten(1)
    inner = (batch.flatten(1) > 12) & (batch.flatten(1) < 243)  # not clipped at 0 or 255
    for s, m in zip(shift, inner, strict=True):
        assert float(s[m].max() - s[m].min()) < 1e-3 and abs(float(s[m].mean())) <= 10
    flat = degrade.relight(batch, 1.0, brightness=0, contrast=0.5, gamma=0, gen=gen())
    ratio = flat.flatten(1).std(1) / batch.flatten(1).std(1)
    assert float(ratio.min()) >= 0.5 - 1e-3 and float(ratio.max()) <= 1.5 + 1e-3
    dark = degrade.relight(batch, 1.0, brightness=0, contrast=0, gamma=0.5, gen=gen())
    g = torch.log(dark.clamp(1, 254) / 255) / torch.log(batch.clamp(1, 254) / 255)
    mid = (batch > 40) & (batch < 215)
    assert (
        math.exp(-0.5) - 0.05 <= float(g[mid].min()) < float(g[mid].max()) <= math.exp(0.5) + 0.05
    )


def test_noise_blur_and_downscale_respect_their_magnitudes(batch):
    noisy = degrade.sensor_noise(batch, 1.0, max_std=6, gen=gen())
    assert 0.5 < float((noisy - batch).std()) < 6  # std drawn in [0, 6], clipped at the ends
    sharp = degrade.gaussian_blur(batch, torch.zeros(len(batch)))
    assert torch.allclose(sharp, batch, atol=1e-3)  # sigma 0 is the identity
    soft = degrade.gaussian_blur(batch, torch.full((len(batch),), 2.0))
    assert float(soft.diff(dim=3).abs().mean()) < 0.6 * float(batch.diff(dim=3).abs().mean())
    one = degrade.gaussian_blur(batch[:1], torch.tensor([2.0]))
    assert torch.allclose(soft[:1], one, atol=1e-3)  # each image its own group
    # min_side 40 leaves one size, 40 px: every shrunk image is that round trip exactly
    out = degrade.blur_or_downscale(batch, 1.0, max_sigma=1e-6, min_side=40, gen=gen())
    small = F.interpolate(batch, size=(40, 40), mode="area")
    trip = F.interpolate(small, size=(48, 48), mode="bilinear", align_corners=False)
    shrunk = changed(out, batch)
    assert 0.25 < shrunk.float().mean() < 0.75  # half blurred (by ~0 px here), half shrunk
    assert torch.allclose(out[shrunk], trip[shrunk], atol=1e-4)


def test_a_turn_of_nothing_is_the_identity_and_the_occluder_sits_on_the_lower_face(batch):
    same = degrade.turn(batch, 1.0, yaw=0, squeeze=0, gen=gen())
    assert torch.allclose(same, batch, atol=1e-2)
    covered = degrade.occlude(batch, 1.0, size=(0.1, 0.2), gen=gen()) != batch
    rows = covered.any(dim=(0, 1, 3)).nonzero().flatten()
    assert int(rows.min()) >= int(48 * (0.65 - 0.2)) - 1  # nothing above the lower face
    share = covered.flatten(1).float().mean(1)
    assert float(share.max()) <= torch.pi * 0.2 * 0.2 + 1e-3  # an ellipse of radii <= 0.2
