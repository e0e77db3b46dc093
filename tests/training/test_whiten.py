"""`--set model.whiten=true`: a fixed first layer that whitens the faces' 3x3 patches
(issue 44, after cifar10-airbench), fitted once from Training and never trained."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")
F = torch.nn.functional

from ferkit.core.errors import FerkitError
from ferkit.data.cache import load_cache
from ferkit.training import loop, runs
from ferkit.training.networks import ModelConfig, Whiten, build_model, fit_whitening
from tests.tiny_runs import train_cfg


def smooth_faces(n: int, seed: int) -> torch.Tensor:
    """Blurred noise, 0..255: neighbouring pixels strongly correlated, as in photos."""
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(n, 1, 52, 52, generator=g), 5, stride=1)
    return (x - x.amin()) / (x.amax() - x.amin()) * 255


def patch_covariance(layer: Whiten, x: torch.Tensor) -> torch.Tensor:
    """Covariance over all positions of the 9 positive-eigenvector channels, without bias."""
    z = F.conv2d(x, layer.weight[:9]).transpose(0, 1).reshape(9, -1)
    return z @ z.T / z.shape[1]


def test_the_layer_whitens_patches_of_faces_it_was_not_fitted_to():
    net = build_model(ModelConfig(whiten=True, mean=128.0, std=64.0))
    layer = net.features[1]
    assert isinstance(layer, Whiten) and layer.weight.shape == (18, 1, 3, 3)
    seen, unseen = smooth_faces(64, 0), smooth_faces(64, 1)
    raw = patch_covariance(layer, net.features[0](unseen))
    assert (raw - torch.eye(9)).abs().max() > 0.5  # a random init does not whiten
    fit_whitening(net, seen)
    cov = patch_covariance(layer, net.features[0](unseen))
    torch.testing.assert_close(cov, torch.eye(9), atol=0.1, rtol=0)
    # each channel has its negative, so the ReLU after the layer drops no sign
    torch.testing.assert_close(layer.weight[9:], -layer.weight[:9])
    assert not layer.weight.requires_grad and layer.bias.requires_grad


def test_only_vgg_has_it():
    with pytest.raises(FerkitError, match="only vgg-s"):
        build_model(ModelConfig(name="resnet18", whiten=True))


def test_a_run_fits_it_once_trains_the_rest_and_exports_it(small_cache, tmp_path):
    from ferkit.export.torch_export import export
    from ferkit.modelfile.catalog import architecture_line
    from ferkit.modelfile.classifier import Classifier
    from ferkit.training.warmstart import init_from_onnx

    run = tmp_path / "run"
    loop.train(train_cfg(small_cache, run, epochs=1, **{"model.whiten": True}))
    state = runs.load_checkpoint(run / "best.pt")
    assert state["config"]["model"]["whiten"] is True
    first = state["ema"]["features.1.weight"]
    # fitted to the run's Training faces: the same weights as a fresh fit to them
    training, _ = load_cache(small_cache).split("Training")
    torch.manual_seed(state["config"]["seed"])  # `net` starts where the run started
    net = build_model(ModelConfig(**state["config"]["model"]))
    fit_whitening(net, torch.from_numpy(training)[:, None])
    torch.testing.assert_close(first, net.features[1].weight, rtol=1e-5, atol=1e-5)
    # the bias left its initial value: it is trained
    assert not torch.equal(state["ema"]["features.1.bias"], net.features[1].bias.detach())

    meta = export(run, tmp_path / "w.onnx")["metadata"]
    assert architecture_line(meta).startswith("vgg-s w8 whitened")
    faces = smooth_faces(8, 2)[:, 0].round().to(torch.uint8).numpy()
    probs = Classifier(tmp_path / "w.onnx").classify(faces)
    assert probs.shape == (8, 7) and np.allclose(probs.sum(1), 1, atol=1e-4)
    # `--init` rebuilds it from the file, fixed weights and all
    cfg, again = init_from_onnx(str(tmp_path / "w.onnx"), torch.from_numpy(training)[:, None])
    assert cfg.whiten and not again.features[1].weight.requires_grad
    torch.testing.assert_close(again.features[1].weight, first, rtol=0, atol=0)
