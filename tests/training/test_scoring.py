"""Training's final report (`scoring.report_scores`) scores each face's views once and
reads plain and flip TTA from them: the same figures as scoring each view on its own."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training tests need ferkit[train] (torch)")

from torch import nn

from ferkit.training import scoring
from ferkit.training.views import Probabilities


@pytest.mark.parametrize("tta", ["none", "hflip", "views8"])
def test_the_report_reads_plain_and_flip_from_the_views_it_scores(tta):
    """Labels are chosen so that each figure is 1.0 only when it averages the right views:
    flip TTA must be the face and its mirror (not the zoom), the views all eight. A linear
    net on the pixels: unlike a network at its random init, its answer changes with them."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7))
    nn.init.normal_(net[1].weight, std=2e-4)  # logits of about unit scale for 0..255 pixels
    x = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    plain = scoring.predict_probs(net, x, 16)
    flip = plain + scoring.predict_probs(net, x, 16, flip=True)
    views8 = Probabilities(net, "views8")(x.float())
    for truth, key in ((plain, "acc"), (flip, "acc_tta")):
        got = scoring.report_scores(net, x, truth.argmax(1), tta, 16)
        assert got[key] == 1.0
        others = [k for k in ("acc", "acc_tta") if k != key]
        assert all(got[k] < 1.0 for k in others)  # the labels tell the views apart
        nll = -plain.gather(1, truth.argmax(1)[:, None]).log().mean().item()
        assert got["loss"] == pytest.approx(nll, rel=1e-5)  # of the face alone
    got = scoring.report_scores(net, x, views8.argmax(1), tta, 16)
    key = scoring.EVALUATED.get(tta)
    if key is None:
        assert got["acc_views"] == 1.0 and got["acc"] < 1.0 and got["acc_tta"] < 1.0
    else:
        assert got["acc_views"] == got[key] < 1.0
