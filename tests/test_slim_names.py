"""irv2's TF-Slim name map against an independent transcription of TF-Slim's variable template."""

import math

import pytest

from irv2.model import InceptionResNetV2
from irv2.weights.slim_convert import _tf_shape
from irv2.weights.slim_names import tensor_map
from slim_template import variables


@pytest.mark.parametrize(("num_classes", "aux"), [(1001, True), (1001, False), (1000, False), (0, False)])
def test_map_is_a_bijection_onto_the_model(num_classes, aux):
    template = variables(num_classes, aux)
    mapping = tensor_map(logits=num_classes > 0, aux=aux)
    assert set(mapping) == set(template)  # every TF variable, nothing else
    keys = [key for key, _ in mapping.values()]
    assert len(keys) == len(set(keys))  # no PyTorch tensor used twice
    state = InceptionResNetV2(num_classes=num_classes, aux_logits=aux).state_dict()
    unmapped = {k for k in state if k not in keys}
    # Only what TF-Slim does not store is left over: the frozen BN gammas and PyTorch's step counters.
    assert all(k.endswith(("bn.weight", "num_batches_tracked")) for k in unmapped)
    for tf_name, (key, how) in mapping.items():
        assert _tf_shape(tuple(state[key].shape), how) == list(template[tf_name]), tf_name


def test_full_checkpoint_size():
    template = variables(1001, aux=True)
    assert len(template) == 908
    assert sum(math.prod(shape) for shape in template.values()) == 59_244_594
    assert len(variables(1001, aux=False)) == 898  # Keras' len(model.weights)
