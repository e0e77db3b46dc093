"""CNNs for 48x48 faces, from a small registry: `build_model(ModelConfig(name="vgg-s"))`.

Every model takes raw grayscale pixels (0..255, shape [N, 1, H, W]) and normalises them
itself with the mean and std stored in its config, so an exported graph carries its own
preprocessing and no caller duplicates the constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.core.errors import FerkitError
from ferkit.core.labels import LABELS
from ferkit.training.photometric import Normalize


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a model; stored in every checkpoint so the file rebuilds the model."""

    name: str = "vgg-s"  # registry key, see MODELS
    width: int = 32  # channels of the first stage; each later stage doubles it
    dropout: float = 0.3  # before the classifier
    num_classes: int = len(LABELS)
    input_size: int = 48  # pixels per side
    mean: float = 128.0  # of training pixels, 0..255 scale
    std: float = 64.0
    # per-image photometric layer before (x - mean) / std: training.photometric.PHOTOMETRIC
    photometric: str = "equalize"
    whiten: bool = False  # vgg-s only: a fixed patch-whitening first layer (Whiten)


def conv_bn(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Whiten(nn.Conv2d):
    """A fixed first layer, after cifar10-airbench: 3x3 filters that whiten the patches of
    normalised training faces. Each eigenvector of the patch covariance, divided by the
    square root of its eigenvalue, comes with its negative so that the ReLU after it keeps
    both signs: 2 x 9 = 18 channels. `fit` sets the weights once from training images;
    they are never trained (the bias is). Until fitted they are a conv's random init."""

    EPS = 5e-4  # added to each eigenvalue (normalised pixels, variance about 1)

    def __init__(self, kernel: int = 3) -> None:
        super().__init__(1, 2 * kernel * kernel, kernel, padding=kernel // 2, bias=True)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Whiten the patches of `x` ([N, 1, H, W], normalised as the layer sees them)."""
        k = self.kernel_size[0]
        patches = F.unfold(x.float(), k).transpose(1, 2).reshape(-1, k * k).double()
        eigval, eigvec = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (eigvec / (eigval + self.EPS).sqrt()).T.reshape(-1, 1, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))


class VGG(nn.Module):
    """Four stages of two 3x3 conv-BN-ReLU, max-pooled between stages (48->24->12->6),
    global average pooling, dropout and one linear layer. Width 32: 1.2 M parameters.
    With `whiten`, the first conv-BN-ReLU is a `Whiten` layer and a ReLU instead, and the
    second conv takes its 18 channels (0.92x the multiply-adds at width 32)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        chans = [1, w, 2 * w, 4 * w, 8 * w]
        layers: list[nn.Module] = [Normalize(cfg.mean, cfg.std, cfg.photometric)]
        for i in range(4):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            if i == 0 and cfg.whiten:
                white = Whiten()
                layers += [white, nn.ReLU(inplace=True), conv_bn(white.out_channels, w)]
                continue
            layers += [conv_bn(chans[i], chans[i + 1]), conv_bn(chans[i + 1], chans[i + 1])]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(chans[-1], cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(c_in, c_out, stride),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: 3x3 stem, no stem pooling, four stages of two blocks
    (strides 1, 2, 2, 2: 48->48->24->12->6), GAP, linear. Width 32: 2.8 M parameters."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        chans = [w, 2 * w, 4 * w, 8 * w]
        layers: list[nn.Module] = [Normalize(cfg.mean, cfg.std, cfg.photometric), conv_bn(1, w)]
        c_in = w
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(c_in, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise conv (the stride), linear 1x1
    projection, identity shortcut when the shape holds. Few multiply-adds per pixel."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden)]
            layers.append(nn.ReLU(inplace=True))
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Mobile(nn.Module):
    """A small network for the fast end of the speed/accuracy front (issue 47): a 3x3
    stride-2 stem (48->24; a one-channel convolution is slow per multiply-add, so it runs
    on a quarter of the pixels), four stages of inverted-residual blocks at 24, 12, 6 and
    3 px (widths w, 2w, 4w, 8w; 1, 2, 3 and 2 blocks; expansion 4), a 1x1 conv to 16w,
    GAP, dropout, linear. Width 16: 8.5 M multiply-adds a face."""

    STAGES = ((1, 1), (2, 2), (4, 3), (8, 2))  # (width multiple, blocks); stride 2 first

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        layers: list[nn.Module] = [Normalize(cfg.mean, cfg.std, cfg.photometric), conv_bn(1, w, 2)]
        c_in = w
        for i, (mult, blocks) in enumerate(self.STAGES):
            for b in range(blocks):
                stride = 2 if i > 0 and b == 0 else 1
                layers.append(InvertedResidual(c_in, mult * w, stride, 1 if i == 0 else 4))
                c_in = mult * w
        layers.append(conv_bn(c_in, 16 * w, kernel=1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(16 * w, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "vgg-s": VGG,
    "resnet18": ResNet18,
    "mobile": Mobile,
}


def build_model(cfg: ModelConfig) -> nn.Module:
    """Instantiate the registered architecture `cfg.name`."""
    if cfg.name not in MODELS:
        raise FerkitError(f"unknown model '{cfg.name}'; choose one of {', '.join(MODELS)}")
    if cfg.whiten and cfg.name != "vgg-s":
        raise FerkitError(f"model.whiten: only vgg-s has a whitened first layer, not {cfg.name}")
    return MODELS[cfg.name](cfg)


@torch.no_grad()
def fit_whitening(model: nn.Module, images: torch.Tensor) -> None:
    """Fit each `Whiten` layer of a fresh model to training images ([N, 1, H, W], 0..255),
    normalised by the model's own first layer as the whitening layer will see them."""
    for layer in model.modules():
        if isinstance(layer, Whiten):
            layer.fit(model.features[0](images.float()))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
