"""Speed of se-zoo's SE networks and SE layer, side by side with timm (``se-zoo bench``).

Model mode times, for each se-zoo model, three candidates in one run:

* the se-zoo model;
* its timm counterpart, the baseline of every ratio: the SE model named in
  ``TIMM_EQUIVALENTS`` (``seresnet50`` for ``se_zoo_resnet50``) or, where timm has
  the architecture without SE only (the MobileNets), the se-zoo model with every
  SE layer replaced by timm's own (``timm.models._efficientnet_blocks.SqueezeExcite``).
  It gets the se-zoo model's weights, so the run also checks that both compute the
  same logits;
* the plain model, the same architecture without SE: the timm model named in
  :data:`PLAIN_EQUIVALENTS` (``resnet50``), else the timm counterpart with its SE
  layers replaced by identities.

Layer mode times the SE layer alone against the memory-bandwidth floor measured
in the same run: the floor of an op is the bytes it must move divided by the
bandwidth of ``out.copy_(x)`` on a tensor of the same size.

Modules: :mod:`.config` (what to run), :mod:`.candidates` (what is compared),
:mod:`.timing` (interleaved rounds, paired ratios), :mod:`.memory` (peak memory
of one step), :mod:`.modes` (the two modes), :mod:`.report` (table, chart).
Import timing is ``scripts/bench_imports.py``. Torch is imported on first use only.
"""
from .candidates import PLAIN_EQUIVALENTS, Candidate, model_candidates
from .config import BenchConfig
from .modes import bench_layer, bench_models
from .report import format_table, save_plot

__all__ = [
    "BenchConfig", "Candidate", "PLAIN_EQUIVALENTS", "model_candidates", "bench_models", "bench_layer",
    "format_table", "save_plot",
]
