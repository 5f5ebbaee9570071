"""Model cards: the README.md pushed next to the weights.

What the model cannot tell about itself (title, license, datasets, metrics)
is a :class:`CardOptions`; where the weights came from is the model's
:class:`se_zoo.provenance.WeightsOrigin`, which words the "Weights" line, the
"untrained" warning and the "Training" section. The front matter is built
with huggingface_hub's ``ModelCardData`` (metrics as ``EvalResult``s, so they
land in the Hub's ``model-index`` form); the body lists params, GMACs and
input size measured on the model, the weights' sha256, a usage snippet and
the Squeeze-and-Excitation paper's citation.
"""
import numbers
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from torch import nn

from ..models.stats import model_stats
from ..provenance import WeightsOrigin, weights_origin

__all__ = ["SE_CITATION", "CardOptions", "model_stats", "model_card", "training_lines"]

TAGS = ["image-classification", "timm", "se-zoo"]

SE_CITATION = """@article{hu2020squeeze,
  title={Squeeze-and-Excitation Networks},
  author={Hu, Jie and Shen, Li and Albanie, Samuel and Sun, Gang and Wu, Enhua},
  journal={IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume={42},
  number={8},
  pages={2011--2023},
  year={2020},
  note={Conference version: CVPR 2018},
  eprint={1709.01507},
  archivePrefix={arXiv}
}"""


def _as_tuple(name: str, value: Union[None, str, Sequence[str]]) -> Optional[Tuple[str, ...]]:
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise TypeError(f"{name} must be a non-empty string or sequence of strings, got {value!r}")
    return values


@dataclass(frozen=True)
class CardOptions:
    """What a model card says that the model cannot tell about itself.

    Where the weights came from is not an option: the card reads it from the
    model's :class:`se_zoo.provenance.WeightsOrigin`.

    Attributes:
        model_name: Card title and ``model-index`` name; defaults to the repo's
            name, else the architecture.
        license: Hub license id; defaults to the ``license`` of the model's
            pretrained cfg (none for weights that owe nothing to published ones).
        datasets: Hub dataset id(s) the model was trained on (kept as a tuple).
        metrics: ``{metric: value}`` measured on ``eval_dataset``, e.g.
            ``{"top1": 81.2, "top5": 95.6}``.
        eval_dataset: Hub dataset id of the evaluation; defaults to the first
            of ``datasets``.

    Raises:
        TypeError: if ``datasets`` or a metric value has the wrong type.

    Example:
        >>> CardOptions(license="apache-2.0", datasets="cifar10", metrics={"top1": 91.0})
    """

    model_name: Optional[str] = None
    license: Optional[str] = None
    datasets: Union[None, str, Sequence[str]] = None
    metrics: Optional[Mapping[str, float]] = None
    eval_dataset: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "datasets", _as_tuple("datasets", self.datasets))
        if self.metrics is not None:
            for name, value in self.metrics.items():
                if not isinstance(value, numbers.Real) or isinstance(value, bool):
                    raise TypeError(f"metrics[{name!r}] must be a number, got {value!r}")
            object.__setattr__(self, "metrics", dict(self.metrics))

    def over(self, recorded: "CardOptions") -> "CardOptions":
        """These options, with ``recorded``'s for the ones left unset.

        Args:
            recorded: Options recorded earlier (e.g. read back with :meth:`from_readme`).

        Returns:
            The merged options.
        """
        return CardOptions(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                              else getattr(recorded, f.name) for f in fields(self)})

    @classmethod
    def from_readme(cls, path: Union[str, Path]) -> "CardOptions":
        """The options recorded in the front matter of a card :func:`model_card` wrote.

        Args:
            path: The card's README.md.

        Returns:
            The options its front matter sets.
        """
        from huggingface_hub import ModelCard

        data = ModelCard.load(Path(path)).data
        results = data.eval_results or []
        return cls(model_name=data.model_name, license=data.license, datasets=data.datasets,
                   metrics={r.metric_type: r.metric_value for r in results} or None,
                   eval_dataset=results[0].dataset_type if results else None)


def _eval_results(metrics: Mapping[str, float], dataset: str) -> list:
    from huggingface_hub import EvalResult

    return [EvalResult(task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
                       metric_type=name, metric_name=name, metric_value=round(float(value), 2))
            for name, value in metrics.items()]


def _usage_lines(load_name: str) -> list:
    """The card's install and usage lines for a model loaded as ``load_name``."""
    lines = [
        "",
        "## Usage",
        "",
        "```bash",
        "pip install se-zoo   # registers se-zoo's architectures with timm",
        "```",
        "",
        "```python",
        "import timm",
        "",
        f'model = timm.create_model("{load_name}", pretrained=True).eval()',
        "data_config = timm.data.resolve_model_data_config(model)",
        "transform = timm.data.create_transform(**data_config, is_training=False)",
        "logits = model(transform(image).unsqueeze(0))  # image: a PIL image",
        "```",
        "",
        "se-zoo's architectures register with timm when se-zoo is installed.",
    ]
    if load_name.startswith("hf-hub:"):
        lines[-1] += (f' `se_zoo.hub.from_pretrained("{load_name[len("hf-hub:"):]}")` also checks the weights\' '
                      "sha256 against the Hub's record before loading them.")
    return lines


def _body(
        model: nn.Module,
        *,
        model_name: str,
        load_name: str,
        weights_sha256: str,
        stats: Dict[str, Any],
        metrics: Mapping[str, float],
        eval_dataset: Optional[str],
        origin: WeightsOrigin,
        metrics_file: Optional[str],
) -> str:
    arch = model.pretrained_cfg["architecture"]
    input_size = " × ".join(str(s) for s in stats["input_size"])
    untrained, training = origin.untrained, origin.training_run
    lines = [
        f"# Model card for {model_name}",
        "",
        f"`{arch}`, a Squeeze-and-Excitation network for image classification in timm's layout, "
        "published with se-zoo.",
        "",
        "## Model details",
        "",
        f"- **Architecture:** `{arch}`",
        f"- **Weights:** {origin.describe()}",
        f"- **Classes:** {model.num_classes}",
        f"- **Params (M):** {stats['params'] / 1e6:.2f}",
        f"- **GMACs:** {stats['gmacs']:.2f} (one {input_size} image)",
        f"- **Input size:** {input_size}",
        f"- **File:** `model.safetensors`, sha256 `{weights_sha256}`",
    ]
    if metrics:
        lines += ["", "## Results", "", "| dataset | metric | value |", "|---|---|---|"]
        lines += [f"| {eval_dataset} | {name} | {float(value):.2f} |" for name, value in metrics.items()]
    if training:
        lines += ["", "## Training", "", *training_lines(training)]
    if metrics_file:
        lines += ["", f"Training curves: `{metrics_file}` holds one JSON line per epoch (losses, top-1, top-5, "
                      "learning rate, images/s)."]
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "Image classification into the classes above, at the input size above, with the preprocessing in "
        "`config.json`. " + ("Its outputs are meaningless until it is trained. " if untrained else
                             "Accuracy outside the evaluation data above is not measured: check it on your own "
                             "data before relying on it. ")
        + "Not for decisions about people.",
        *_usage_lines(load_name),
        "",
        "## Citation",
        "",
        "```bibtex",
        SE_CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else (f"{minutes} min {secs} s" if minutes else f"{secs} s")


def training_lines(run: Mapping[str, Any]) -> list:
    """The "Training" section's lines for a run record of :func:`se_zoo.hub.run_record.run_record`.

    Args:
        run: The run record.

    Returns:
        Markdown lines.
    """
    aug = run["augmentation"]
    crop = ("none (validation transform)" if aug["no_aug"] else
            f"random-resized crop (area {aug['scale'][0]:g}–{aug['scale'][1]:g}, aspect "
            f"{aug['ratio'][0]:.2f}–{aug['ratio'][1]:.2f}), horizontal flip p={aug['hflip']:g}")
    extras = [f"mixup {aug['mixup']:g}" if aug["mixup"] else "", f"CutMix {aug['cutmix']:g}" if aug["cutmix"] else "",
              f"label smoothing {aug['smoothing']:g}" if aug["smoothing"] else ""]
    classes = run.get("classes")
    return [
        f"- **Started from:** `{run['start']}`" + (", pretrained weights" if run["pretrained"] else
                                                    ", random initialization"),
        f"- **Data:** `{run['dataset']}`, {run['train_count']} training images (`{run['train_split']}`), "
        f"{run['val_count']} validation images (`{run['val_split']}`)",
        "- **Classes:** " + (", ".join(f"`{c}`" for c in classes) if classes else "as numbered by the dataset"),
        f"- **Epochs:** {run['epochs_done']} of a {run['epochs']}-epoch schedule; these weights are epoch "
        f"{run['best_epoch']}'s (best validation top-1" + (", EMA weights)" if run.get("model_ema") else ")"),
        f"- **Optimizer:** {run['optimizer']}, peak learning rate {run['lr']:g}, weight decay "
        f"{run['weight_decay']:g}, {run['sched']} schedule with {run['warmup_epochs']} warm-up epoch(s)",
        f"- **Batch size:** {run['batch_size']} (global)",
        "- **Augmentation:** " + ", ".join([crop, *[e for e in extras if e]]),
        f"- **Precision:** {run['precision']}",
        f"- **Devices:** {run['devices']}",
        f"- **Wall time:** {_duration(run['wall_time_s'])}",
    ]


def model_card(
        model: nn.Module,
        *,
        weights_sha256: str,
        repo_id: Optional[str] = None,
        location: Optional[Union[str, Path]] = None,
        options: Optional[CardOptions] = None,
        origin: Optional[WeightsOrigin] = None,
        metrics_file: Optional[str] = None,
):
    """The model card of a timm model.

    Args:
        model: The model the card describes.
        weights_sha256: sha256 of its ``model.safetensors``.
        repo_id: Hub repo the card is published in; the usage snippet loads
            ``hf-hub:<repo_id>``.
        location: Directory the card is saved in; used by the usage snippet
            (``local-dir:<location>``) when there is no ``repo_id``.
        options: Title, license, datasets and metrics (:class:`CardOptions`).
        origin: Where the weights came from; defaults to the model's
            (:func:`se_zoo.provenance.weights_origin`). It words the "Weights"
            line, the "untrained" warning and the "Training" section.
        metrics_file: Name of the per-epoch metrics file published with the
            weights, mentioned as the training curves.

    Returns:
        A ``huggingface_hub.ModelCard``.

    Raises:
        ValueError: if neither ``repo_id`` nor ``location`` is given, or
            metrics are given without any dataset to attribute them to.
        TypeError: if ``options`` is not a :class:`CardOptions`.
    """
    from huggingface_hub import ModelCard, ModelCardData

    if not repo_id and location is None:
        raise ValueError("model_card needs repo_id or location for its usage snippet, got neither")
    options = CardOptions() if options is None else options
    if not isinstance(options, CardOptions):
        raise TypeError(f"options must be a CardOptions, got {type(options).__name__}")
    origin = weights_origin(model) if origin is None else origin
    metrics = dict(options.metrics or {})
    eval_dataset = options.eval_dataset or (options.datasets[0] if options.datasets else None)
    if metrics and not eval_dataset:
        raise ValueError(f"metrics {sorted(metrics)} need eval_dataset (or datasets) naming where they were "
                         "measured, got neither")
    arch = model.pretrained_cfg["architecture"]
    model_name = options.model_name or (repo_id.split("/")[-1] if repo_id else arch)
    data = ModelCardData(
        library_name="timm",
        pipeline_tag="image-classification",
        tags=list(TAGS),
        license=options.license or (None if origin.from_random_init else model.pretrained_cfg.get("license")),
        datasets=list(options.datasets) if options.datasets else None,
        model_name=model_name,
        eval_results=_eval_results(metrics, eval_dataset) if metrics else None,
    )
    body = _body(
        model, model_name=model_name,
        load_name=f"hf-hub:{repo_id}" if repo_id else f"local-dir:{location}",
        weights_sha256=weights_sha256, stats=model_stats(model), metrics=metrics, eval_dataset=eval_dataset,
        origin=origin, metrics_file=metrics_file)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
