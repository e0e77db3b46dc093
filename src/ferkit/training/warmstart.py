"""Start training from an exported model's weights: `ferkit train --init MODEL.onnx`.

An fp32 single-network export keeps the torch module's tensors as named initializers
(`model.features.1.0.weight`; BatchNorm statistics too in exports whose optimiser did not
fold BatchNorm into the convs, such as the default shipped until 2026-11-30) and its
architecture, with the normalisation it was trained with, in the `architecture` metadata.
So the ONNX file alone rebuilds the network: fine-tune the shipped `default` on your own
faces, or continue a FER-2013 model under a new recipe (distillation, cleaned labels)
without a run folder.
An int8 export (`ferkit export --int8`) rebuilds too, from its dequantised weights.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.core.errors import FerkitError
from ferkit.modelfile.shipped import resolve_model
from ferkit.training.networks import ModelConfig, build_model

PREFIX = "model."  # export wraps the network as `Probabilities.model`


def read_onnx_model(
    model: str, flag: str = "--init"
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The architecture and float tensors of an exported single network (a file or a
    shipped model's name; an int8 export's weights dequantised), or a one-line error,
    naming the option (`flag`) that read the file, for ensembles and non-ferkit files."""
    import onnx
    from onnx import numpy_helper

    path, _ = resolve_model(model)
    try:
        proto = onnx.load(str(path))
    except FileNotFoundError:
        raise FerkitError(f"{flag} {model}: no such model file") from None
    except Exception as exc:  # onnx raises DecodeError and others for foreign files
        raise FerkitError(f"{flag} {model}: not an ONNX model ({exc})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        arch = json.loads(meta["architecture"])
    except (KeyError, ValueError):
        raise FerkitError(
            f"{flag} {model}: no 'architecture' metadata (not a ferkit export)"
        ) from None
    if isinstance(arch, list):
        raise FerkitError(
            f"{flag} {model}: an ensemble of {len(arch)} networks; {flag} takes one network"
        )
    arch.setdefault("photometric", "none")  # files exported before the layer existed
    try:
        cfg = ModelConfig(**arch)
    except TypeError as exc:
        raise FerkitError(f"{flag} {model}: architecture {arch} not understood ({exc})") from None
    arrays = {
        t.name: numpy_helper.to_array(t)
        for t in proto.graph.initializer
        if t.name.startswith(PREFIX) and t.data_type == onnx.TensorProto.FLOAT
    }
    arrays.update(dequantized_weights(proto))
    tensors = {k[len(PREFIX) :]: torch.from_numpy(v.copy()) for k, v in arrays.items()}
    return cfg, tensors


def dequantized_weights(proto: Any) -> dict[str, np.ndarray]:
    """The float weights of an int8 (QDQ) export: each DequantizeLinear of constant
    integers, (q - zero_point) * scale per channel, under the name the fp32 export gives the
    tensor (`X.weight` for `X.weight_DequantizeLinear_Output`). The activations' quantisation
    is not rebuilt: the network is the int8 file's weights computed in float."""
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    out = {}
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or not all(i in consts for i in node.input):
            continue
        q, scale, *zero = (consts[i] for i in node.input)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.ndim:  # per channel along `axis`
            shape[axis] = -1
        zp = zero[0].astype(np.float64) if zero else 0.0
        value = (q.astype(np.float64) - np.reshape(zp, shape)) * np.reshape(scale, shape)
        out[node.output[0].removesuffix("_DequantizeLinear_Output")] = value.astype(np.float32)
    return {k: v for k, v in out.items() if k.startswith(PREFIX)}


def init_from_onnx(model: str, images: torch.Tensor) -> tuple[ModelConfig, nn.Module]:
    """The network `model` was exported from, rebuilt in torch with its weights loaded.

    Exports whose optimiser folded each BatchNorm into the conv before it (`X.weight` scaled,
    `X.weight_bias` added) get their BatchNorms back, fitted to `images` (uint8 [N, 1, H, W],
    Training faces) by `unfold_batchnorms`: the same function in eval mode, and in train
    mode the batch statistics rescale activations as the original network's did."""
    cfg, net, folded = rebuild_from_onnx(model)
    if folded:
        unfold_batchnorms(net, folded, images)
    return cfg, net


def rebuild_from_onnx(
    model: str, photometric: str | None = None, flag: str = "--init"
) -> tuple[ModelConfig, nn.Module, list[nn.BatchNorm2d]]:
    """The network of `model` with its weights, and the BatchNorms its export folded into
    convs (identities adding the folded bias until `unfold_batchnorms` fits them). Needs no
    data, so `ferkit train` checks an `--init` file before minutes of teacher scoring. In
    eval mode the identities compute what the file does: `export.torch_export.export_views`
    re-exports such a network with other test-time views. `photometric` replaces the
    file's photometric layer (`training.photometric`; None keeps it): it has no weights."""
    cfg, tensors = read_onnx_model(model, flag)
    if photometric is not None:
        cfg = dataclasses.replace(cfg, photometric=photometric)
    net = build_model(cfg)
    folded = [
        (name, bn)
        for name, bn in net.named_modules()
        if isinstance(bn, nn.BatchNorm2d) and f"{name}.weight" not in tensors
    ]
    for name, bn in folded:  # an identity BatchNorm adding the folded bias, for now
        head, _, index = name.rpartition(".")  # conv_bn: conv at i - 1, BatchNorm at i
        bias = tensors.get(f"{head}.{int(index) - 1}.weight_bias") if index.isdigit() else None
        if bias is None:
            break  # not a folded export: reported as missing tensors below
        tensors[f"{name}.weight"] = torch.ones_like(bias)
        tensors[f"{name}.bias"] = bias
        tensors[f"{name}.running_mean"] = torch.zeros_like(bias)
        tensors[f"{name}.running_var"] = torch.full_like(bias, 1 - bn.eps)
    expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    missing = sorted(expected - tensors.keys())
    if missing:
        raise FerkitError(
            f"{flag} {model}: no weights for {len(missing)} tensors of {cfg.name} "
            f"({missing[0]}, ...): not a network ferkit exported"
        )
    try:  # strict but for num_batches_tracked, which momentum BatchNorm does not read
        net.load_state_dict({k: tensors[k] for k in expected}, strict=False)
    except RuntimeError as exc:
        raise FerkitError(f"{flag} {model}: weights do not fit {cfg.name} ({exc})") from None
    return cfg, net, [bn for _, bn in folded]


@torch.no_grad()
def unfold_batchnorms(net: nn.Module, bns: list[nn.BatchNorm2d], images: torch.Tensor) -> None:
    """Give identity BatchNorms (y = x + b) the statistics of their input over up to 512 of
    `images` (mean m, variance v) and the affine that undoes them (weight sqrt(v + eps),
    bias b + m): eval mode computes x + b as before, to float rounding; train mode normalises
    by the batch's statistics, which are close to m and v, instead of passing a scale the
    fold baked into the conv straight through."""
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:512]
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(bn: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        stats[bn] = (args[0].mean((0, 2, 3)), args[0].var((0, 2, 3), unbiased=False))

    hooks = [bn.register_forward_pre_hook(record) for bn in bns]
    net.eval()(images[pick.to(images.device)].float().cpu())
    for hook in hooks:
        hook.remove()
    for bn in bns:
        mean, var = stats[bn]
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_((var + bn.eps).sqrt())
        bn.bias.add_(mean)
