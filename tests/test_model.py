"""The network's structure: shapes, sizes, parameter counts and the TF-Slim quirks (fast, no TensorFlow)."""

import pytest
import torch

from irv2.model import STAGES, InceptionResNetV2


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return InceptionResNetV2().eval()


# TF-Slim's end-point shapes at 299 x 299 (spec 2.2, checked by TF-Slim's own tests), as NCHW.
SLIM_SHAPES_299 = {
    "Conv2d_1a_3x3": (32, 149, 149),
    "Conv2d_2a_3x3": (32, 147, 147),
    "Conv2d_2b_3x3": (64, 147, 147),
    "MaxPool_3a_3x3": (64, 73, 73),
    "Conv2d_3b_1x1": (80, 73, 73),
    "Conv2d_4a_3x3": (192, 71, 71),
    "MaxPool_5a_3x3": (192, 35, 35),
    "Mixed_5b": (320, 35, 35),
    "Repeat": (320, 35, 35),
    "Mixed_6a": (1088, 17, 17),
    "PreAuxLogits": (1088, 17, 17),
    "Mixed_7a": (2080, 8, 8),
    "Repeat_2": (2080, 8, 8),
    "Block8": (2080, 8, 8),
    "Conv2d_7b_1x1": (1536, 8, 8),
}


def test_endpoint_shapes_at_299(net):
    with torch.no_grad():
        points = net.forward_endpoints(torch.zeros(1, 3, 299, 299), [name for name, _ in STAGES])
    assert list(points) == [name for name, _ in STAGES]
    assert {k: tuple(v.shape[1:]) for k, v in points.items()} == SLIM_SHAPES_299


@pytest.mark.parametrize(("height", "width", "grid"), [(75, 75, (1, 1)), (150, 200, (3, 4)), (331, 331, (9, 9))])
def test_any_input_from_75_pixels(net, height, width, grid):
    with torch.no_grad():
        features = net.forward_features(torch.zeros(2, 3, height, width))
        logits = net(torch.zeros(2, 3, height, width))
    assert tuple(features.shape) == (2, 1536, *grid)
    assert tuple(logits.shape) == (2, 1001)


def test_too_small_input_is_refused(net):
    with pytest.raises(ValueError, match="at least 75"):
        net(torch.zeros(1, 3, 74, 100))


def test_parameter_counts_match_published_figures():
    # 1000 classes without the aux head is the Keras/timm model: 55,843,464 parameters with the frozen
    # BatchNorm gammas (osmr/imgclsmob, timm 55.84M), 55,813,192 trainable (Keras), 60,544 BN statistics.
    net = InceptionResNetV2(num_classes=1000, aux_logits=False)
    assert sum(p.numel() for p in net.parameters()) == 55_843_464
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 55_813_192
    stats = sum(b.numel() for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert stats == 60_544


def test_batchnorm_has_no_learned_scale(net):
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 206
    assert all(bn.eps == 1e-3 and not bn.weight.requires_grad for bn in bns)


def test_last_block_has_scale_one_and_no_relu(net):
    assert net.block8.scale == 1.0 and isinstance(net.block8.act, torch.nn.Identity)
    assert [b.scale for b in net.repeat] == [0.17] * 10
    assert [b.scale for b in net.repeat_1] == [0.10] * 20
    assert [b.scale for b in net.repeat_2] == [0.20] * 9
    assert all(isinstance(b.act, torch.nn.ReLU) for b in net.repeat_2)


def test_mixed_5b_pool_does_not_count_padding(net):
    # TF's SAME average pool divides by in-bounds cells only, so a constant map stays constant at the border.
    pool = net.mixed_5b.branch3[0]
    out = pool(torch.ones(1, 1, 5, 5))
    assert torch.allclose(out, torch.ones_like(out))


def test_aux_head_and_dropout_only_in_training():
    torch.manual_seed(0)
    net = InceptionResNetV2()
    x = torch.randn(2, 3, 299, 299)
    net.train()
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == aux.shape == (2, 1001)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))  # no dropout at inference
    with pytest.raises(ValueError, match="299"):
        net.forward_with_aux(torch.randn(1, 3, 400, 400))


def test_features_only_network():
    net = InceptionResNetV2(num_classes=0).eval()
    assert net.aux_logits is None
    with torch.no_grad():
        assert tuple(net(torch.zeros(1, 3, 299, 299)).shape) == (1, 1536)


def test_reset_classifier():
    net = InceptionResNetV2()
    net.reset_classifier(5)
    assert net.classif.out_features == 5 and net.aux_logits.classif.out_features == 5
    with torch.no_grad():
        assert tuple(net.eval()(torch.zeros(1, 3, 299, 299)).shape) == (1, 5)
