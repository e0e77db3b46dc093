"""The photometric layer at the head of every network (issue 48): what each mode undoes,
that it travels into ONNX, and that files and runs from before it keep working without it."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from ferkit.core.errors import FerkitError
from ferkit.training.photometric import Normalize, equalize, standardize


def faces(n: int = 6, top: int = 128) -> torch.Tensor:
    """[n, 1, 48, 48] integer grey levels in 0..top-1."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, top, (n, 1, 48, 48), generator=g).float()


def test_equalize_undoes_any_light_change_that_keeps_levels_apart():
    x = faces()
    darker = 2 * x + 1  # brighter and more contrast, no two levels merged
    torch.testing.assert_close(equalize(darker), equalize(x), rtol=0, atol=1e-4)
    x = x + 128  # levels 128..255, where gamma 2.2 keeps every level apart
    crushed = (255 * (x / 255) ** 2.2).round()
    assert len(crushed.unique()) == len(x.unique())
    torch.testing.assert_close(equalize(crushed), equalize(x), rtol=0, atol=1e-4)
    out = equalize(x)
    assert out.min() >= 0 and out.max() <= 255
    assert abs(out.mean().item() - 127.5) < 0.5  # mid-ranks: uniform about mid-grey
    # each image on its own: a flat crop is mid-grey, whatever its neighbours in the batch
    flat = torch.cat([torch.full((1, 1, 48, 48), 9.0), x[:1]])
    assert torch.all(equalize(flat)[0] == 127.5)
    torch.testing.assert_close(equalize(flat)[1:], equalize(x[:1]))


def test_standardize_undoes_brightness_and_contrast_not_gamma():
    x = faces(top=256)
    mean, std = torch.tensor(131.0), torch.tensor(78.0)
    a = standardize(x, mean, std)
    b = standardize(0.3 * x + 8, mean, std)
    torch.testing.assert_close(a, b, rtol=0, atol=0.1)  # EPS_STD: a tenth of a level
    assert abs(a.mean().item() - 131) < 0.1 and abs(a.std().item() - 78) < 1
    c = standardize(255 * (x / 255) ** 2.2, mean, std)
    assert (c - a).abs().mean() > 5  # a gamma is not undone


def test_normalize_refuses_an_unknown_mode_and_none_is_the_old_layer():
    with pytest.raises(FerkitError, match=r"unknown photometric 'eq'.*equalize"):
        Normalize(131, 78, "eq")
    x = faces()
    torch.testing.assert_close(Normalize(131, 78, "none")(x), (x - 131) / 78)
    torch.testing.assert_close(Normalize(131, 78, "equalize")(x), (equalize(x) - 131) / 78)


@pytest.mark.parametrize("mode", ["standardize", "equalize"])
def test_the_layer_travels_into_onnx(tmp_path, mode):
    """The exported graph computes the layer itself: ONNX Runtime answers as torch does on
    whole-level crops, for any batch size."""
    import onnxruntime as ort

    from ferkit.training.networks import ModelConfig, build_model

    net = build_model(ModelConfig(width=8, photometric=mode, mean=131, std=78)).eval()
    out = tmp_path / "m.onnx"
    with warnings.catch_warnings():  # torch's exporter calling its own deprecated pytree API
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            net,
            (faces(2),),
            input_names=["image"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("N")},),
            opset_version=20,
            dynamo=True,
            verbose=False,
        )
    program.save(str(out))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = faces(5, top=256)
    got = session.run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(got, net(x).detach().numpy(), atol=1e-4)


def test_files_and_runs_from_before_the_layer_keep_none(tmp_path):
    """A model file or run config without `photometric` was trained without the layer: it is
    rebuilt with "none", whatever the default for new runs; `--init` gives it the recipe's."""
    import onnx

    from ferkit.modelfile.shipped import resolve_model
    from ferkit.training.config import TrainConfig, from_dict
    from ferkit.training.networks import ModelConfig
    from ferkit.training.warmstart import rebuild_from_onnx

    assert ModelConfig().photometric == "equalize"  # new runs have the layer
    proto = onnx.load(str(resolve_model("fast")[0]))
    for prop in proto.metadata_props:  # the file as exported before issue 48
        if prop.key == "architecture":
            arch = json.loads(prop.value)
            arch.pop("photometric", None)
            prop.value = json.dumps(arch)
    old = tmp_path / "old.onnx"
    onnx.save(proto, str(old))
    cfg, net, _ = rebuild_from_onnx(str(old))
    assert cfg.photometric == "none" and net.features[0].mode == "none"
    cfg, net, _ = rebuild_from_onnx(str(old), "equalize")  # --init with the recipe's layer
    assert cfg.photometric == "equalize" and net.features[0].mode == "equalize"
    assert from_dict({"model": {"name": "vgg-s", "width": 8}}).model.photometric == "none"
    assert from_dict({"epochs": 3}).model == TrainConfig().model
