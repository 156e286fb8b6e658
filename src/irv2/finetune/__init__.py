"""Fine-tuning Inception-ResNet-v2 on your own classes: ``irv2.finetune(data, out, ...)``, ``irv2 finetune``.

Modes: ``linear`` (frozen backbone, cached features, a new head), ``full`` (every layer, the backbone at
a tenth of the head's learning rate, AuxLogits at 299 px) and ``last-blocks`` (the last N units of the
backbone). The result is an irv2 module folder with the new labels, plus metrics and plots.

Layout: ``config`` (options), ``data`` / ``datasets`` / ``augment`` (images), ``heads`` / ``freeze``
(what trains), ``optim`` / ``loop`` / ``precision`` (how), ``linear`` (feature cache), ``setups`` (each
mode), ``distributed`` (torchrun) with ``batches`` / ``dropout`` / ``batchnorm`` (the same run at any
process count), ``checkpoint`` / ``report`` (outputs), ``session`` (the run).

Importing this package costs no more than irv2 itself: the training machinery is imported when a run
starts, and matplotlib only when the plots are drawn.
"""

from .._lazy import forwarding, lazy_attributes

__all__ = ["FinetuneConfig", "finetune", "set_train_mode"]

__getattr__, __dir__ = lazy_attributes(
    __name__, {"FinetuneConfig": ".config", "set_train_mode": "..api.train_graph"}, __all__
)

finetune = forwarding(__name__, ".api", "finetune", "Fine-tune Inception-ResNet-v2 on your own classes")
