"""The backbone registry: the paper's feature extractors by name, and the grammar of backbone specs.

Torch-free (a table of dataclasses and string parsing): ``in21k-bench backbones`` and
:func:`list_backbones` never import torch, timm or open_clip. The loaders that build the models are
in :mod:`in21k_bench.features.loaders`.

A backbone is named either by a registry name (``dinov2-vitg14``, or the paper's label such as
``"MAE-R ViT-H"``) or by a spec:

* ``timm:<model>[.<tag>]`` (or a bare timm name) -- timm, pooled features (``num_classes=0``);
* ``open_clip:<arch>:<pretrained tag>``, ``open_clip:hf-hub:<org>/<repo>`` or
  ``open_clip:local-dir:<folder>`` -- ``encode_image``;
* ``torch_hub:<owner>/<repo>[:<ref>]:<entry point>`` or ``torch_hub:<local dir>:<entry point>`` --
  ``torch.hub.load`` (``source="local"`` when the repo is an existing directory); a model returning
  tokens ``(B, N, D)`` gives its first (class) token;
* ``ibot:<timm arch>`` -- a local iBOT checkpoint (``--checkpoint``) whose keys are converted to the
  timm architecture's.

Preprocessing (:class:`Preprocessing`) is always resize shorter side -> centre crop -> ToTensor ->
normalise; ``paper`` is the registry entry's (ImageNet statistics, 256 -> 224 bicubic; CLIP's own
statistics and 224 -> 224 for CLIP), ``model`` the model library's own configuration, ``custom``
either of them with explicit overrides. ``paper`` is the default for registered names and for a local
checkpoint, ``model`` for other specs.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InvalidInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
LOADERS = ("timm", "open_clip", "torch_hub", "checkpoint")
MODES = ("paper", "model", "custom")
#: Checkpoint formats the ``checkpoint`` loader converts (spec prefix -> what it reads).
CONVERTERS = {"ibot": "iBOT checkpoint (state_dict / teacher / student; 'module.backbone.' or 'backbone.' keys)"}


@dataclass(frozen=True)
class Preprocessing:
    """What is applied to every image: ``Resize(resize, interpolation)`` of the shorter side,
    ``CenterCrop(crop)``, ``ToTensor``, ``Normalize(mean, std)``."""

    resize: int
    crop: int
    interpolation: str = "bicubic"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    mode: str = "paper"

    def __post_init__(self):
        for key in ("resize", "crop"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"preprocessing: expected {key} a positive integer, found {v!r}")
        if self.crop > self.resize:
            raise InvalidInputError(
                f"preprocessing: expected crop <= resize (centre crop of the resized image), found crop {self.crop} "
                f"> resize {self.resize}"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise InvalidInputError(
                f"preprocessing: expected interpolation one of {', '.join(INTERPOLATIONS)}, "
                f"found {self.interpolation!r}"
            )
        for key in ("mean", "std"):
            v = getattr(self, key)
            try:
                vals = tuple(float(x) for x in v)
            except (TypeError, ValueError):
                vals = ()
            if len(vals) != 3 or (key == "std" and min(vals) <= 0):
                raise InvalidInputError(
                    f"preprocessing: expected {key} three numbers{' > 0' if key == 'std' else ''} (R,G,B), found {v!r}"
                )
            object.__setattr__(self, key, vals)
        if self.mode not in MODES:
            raise InvalidInputError(f"preprocessing: expected mode one of {', '.join(MODES)}, found {self.mode!r}")

    def to_dict(self) -> dict:
        """The ``meta.json`` record: ``mode, resize, crop, interpolation, mean, std``."""
        return {
            "mode": self.mode,
            "resize": self.resize,
            "crop": self.crop,
            "interpolation": self.interpolation,
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
        }

    def with_overrides(
        self,
        resize: int | None = None,
        crop: int | None = None,
        interpolation: str | None = None,
        mean=None,
        std=None,
        image_size: int | None = None,
    ) -> "Preprocessing":
        """Apply explicit overrides; the mode becomes ``custom`` when any value changes.

        ``image_size`` (the older ``--image-size``) sets the crop, and the resize keeps this
        preprocessing's resize/crop ratio (256/224 for the paper's) unless ``resize`` is given."""
        if image_size is not None and crop is None:
            crop = int(image_size)
            if resize is None:
                resize = int(crop * self.resize / self.crop)
        if crop is not None and resize is None and int(crop) > self.resize:
            resize = int(crop)
        new = replace(
            self,
            resize=int(resize) if resize is not None else self.resize,
            crop=int(crop) if crop is not None else self.crop,
            interpolation=interpolation if interpolation is not None else self.interpolation,
            mean=tuple(parse_triple(mean, "mean")) if mean is not None else self.mean,
            std=tuple(parse_triple(std, "std")) if std is not None else self.std,
        )
        same = new.to_dict() == self.to_dict()
        return self if same else replace(new, mode="custom")


def parse_triple(value, what: str) -> list[float]:
    """``"0.5,0.5,0.5"`` or a sequence of three numbers -> three floats."""
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", ",").split(",") if p]
    else:
        parts = list(value)
    try:
        vals = [float(p) for p in parts]
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 3:
        raise InvalidInputError(f"preprocessing: expected --{what} as three numbers 'R,G,B', found {value!r}")
    return vals


#: The paper's preprocessing for non-CLIP backbones (TEMI code's ImageNet branch; MIM-Refiner's and
#: DINOv2's evaluation transforms): resize 256, centre crop 224, bicubic, ImageNet statistics.
PAPER = Preprocessing(resize=256, crop=224, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD)
#: CLIP backbones keep CLIP's own transform (TEMI code: ``clip.load``'s preprocess): 224 -> 224, CLIP statistics.
PAPER_CLIP = Preprocessing(resize=224, crop=224, interpolation="bicubic", mean=CLIP_MEAN, std=CLIP_STD)


@dataclass(frozen=True)
class Backbone:
    """One registered backbone."""

    name: str
    label: str  # how the paper / leaderboard names it
    loader: str  # timm | open_clip | torch_hub | checkpoint
    spec: str  # the spec the loader builds (see the module docstring)
    weights: str  # exact weights: timm tag, open_clip tag, hub ref, or the released checkpoint file
    dim: int
    preprocessing: Preprocessing = PAPER
    source: str = ""  # where the weights come from (URL)
    note: str = ""
    options: dict = field(default_factory=dict)  # loader options, e.g. {"img_size": 224}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "loader": self.loader,
            "spec": self.spec,
            "weights": self.weights,
            "dim": self.dim,
            "preprocessing": self.preprocessing.to_dict(),
            "source": self.source,
            "note": self.note,
            "options": dict(self.options),
        }


REGISTRY: tuple[Backbone, ...] = (
    Backbone(
        name="supervised-vitl16-in21k",
        label="Supervised ViT-L/16 (IN-21K)",
        loader="timm",
        spec="timm:vit_large_patch16_224.augreg_in21k",
        weights="vit_large_patch16_224.augreg_in21k",
        dim=1024,
        source="https://huggingface.co/timm/vit_large_patch16_224.augreg_in21k",
        note="the bare timm name vit_large_patch16_224 is the IN-1K fine-tuned augreg_in21k_ft_in1k",
    ),
    Backbone(
        name="dinov2-vitg14",
        label="DINOv2 ViT-g/14",
        loader="timm",
        spec="timm:vit_giant_patch14_dinov2.lvd142m",
        weights="vit_giant_patch14_dinov2.lvd142m",
        dim=1536,
        source="https://huggingface.co/timm/vit_giant_patch14_dinov2.lvd142m",
        note="built at 224 px (timm's default is 518; position embeddings are resampled on load)",
        options={"img_size": 224},
    ),
    Backbone(
        name="dinov2-vitg14-hub",
        label="DINOv2 ViT-g/14 (torch.hub)",
        loader="torch_hub",
        spec="torch_hub:facebookresearch/dinov2:dinov2_vitg14",
        weights="facebookresearch/dinov2:dinov2_vitg14",
        dim=1536,
        source="https://github.com/facebookresearch/dinov2 (hubconf.py)",
        note="the same weights as dinov2-vitg14 through the authors' code",
    ),
    Backbone(
        name="clip-vitbigg14",
        label="OpenCLIP ViT-bigG/14 (LAION-2B)",
        loader="open_clip",
        spec="open_clip:ViT-bigG-14:laion2b_s39b_b160k",
        weights="laion2b_s39b_b160k",
        dim=1280,
        preprocessing=PAPER_CLIP,
        source="https://huggingface.co/laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",
        note="encode_image (projected embedding)",
    ),
    Backbone(
        name="ibot-vitl16-in21k",
        label="iBOT ViT-L (IN-21K)",
        loader="checkpoint",
        spec="ibot:vit_large_patch16_224",
        weights="checkpoint_student.pth",
        dim=1024,
        source="https://lf3-nlp-opensource.bytetos.com/obj/nlp-opensource/archive/2022/ibot/vitl_16_pt22k/"
        "checkpoint_student.pth",
        note="not in timm: needs --checkpoint (the released IN-22K ViT-L/16 student backbone); keys converted",
    ),
    Backbone(
        name="mae-refined-vith14",
        label="MAE-R ViT-H",
        loader="torch_hub",
        spec="torch_hub:ml-jku/MIM-Refiner:mae_refined_h14",
        weights="ml-jku/MIM-Refiner:mae_refined_h14",
        dim=1280,
        source="https://ml.jku.at/research/mimrefiner/download/maerefined_h14.th",
        note="MIM-Refiner hub code needs the kappamodules and einops packages; class token of the last layer",
    ),
    Backbone(
        name="d2v2-refined-vith14",
        label="data2vec2-R ViT-H",
        loader="torch_hub",
        spec="torch_hub:ml-jku/MIM-Refiner:d2v2_refined_h14",
        weights="ml-jku/MIM-Refiner:d2v2_refined_h14",
        dim=1280,
        source="https://ml.jku.at/research/mimrefiner/download/d2v2refined_h14.th",
        note="MIM-Refiner hub code needs the kappamodules and einops packages; class token of the last layer",
    ),
)


def _norm(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def list_backbones() -> list[dict]:
    """Every registered backbone as a dict (name, label, loader, spec, weights, dim, preprocessing,
    source, note, options), in registry order."""
    return [b.to_dict() for b in REGISTRY]


def get_backbone(name: str) -> Backbone | None:
    """The registry entry for a name or a paper label (case- and punctuation-insensitive), or None."""
    key = _norm(name)
    for b in REGISTRY:
        if key in (_norm(b.name), _norm(b.label)):
            return b
    return None


def near_names(name: str, n: int = 3) -> list[str]:
    """Registry names close to ``name`` (for error messages)."""
    names = [b.name for b in REGISTRY]
    close = difflib.get_close_matches(name.lower(), names, n=n, cutoff=0.4)
    key = _norm(name)
    close += [b.name for b in REGISTRY if key and (key in _norm(b.name) or key in _norm(b.label))]
    return list(dict.fromkeys(close))[:n] or names


def unknown_backbone_error(name: str, why: str = "") -> InvalidInputError:
    return InvalidInputError(
        f"backbone: expected a registered name (near: {', '.join(near_names(name))}; see `in21k-bench backbones`) "
        f"or a spec timm:<model> / open_clip:<arch>:<tag> / torch_hub:<repo>:<entry> / ibot:<timm arch>, "
        f"found {name!r}" + (f" ({why})" if why else "")
    )


@dataclass(frozen=True)
class Spec:
    """A parsed backbone spec."""

    loader: str  # timm | open_clip | torch_hub | checkpoint
    model: str  # timm name, open_clip arch (or 'hf-hub:org/repo'), hub repo, timm arch to convert into
    tag: str | None = None  # open_clip pretrained tag, hub entry point, checkpoint format ('ibot')
    text: str = ""  # the canonical spec string

    @property
    def local_hub(self) -> bool:
        return self.loader == "torch_hub" and Path(self.model).expanduser().is_dir()


def parse_spec(spec: str) -> Spec:
    """Parse a spec string (see the module docstring); registry names are *not* resolved here."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(f"backbone: expected a backbone name or spec, found {spec!r}")
    spec = spec.strip()
    lib, sep, rest = spec.partition(":")
    if not sep:
        return Spec("timm", spec, None, f"timm:{spec}")
    if lib == "timm" and rest:
        return Spec("timm", rest, None, f"timm:{rest}")
    if lib in ("open_clip", "openclip") and rest:
        if rest.startswith("hf-hub:"):  # open_clip's schemas: the weights come with the name, no tag
            repo = rest[len("hf-hub:") :]
            if repo.count("/") != 1 or not all(repo.split("/")):
                raise InvalidInputError(f"backbone: expected open_clip:hf-hub:<org>/<repo>, found {spec!r}")
            return Spec("open_clip", rest, None, f"open_clip:{rest}")
        if rest.startswith("local-dir:"):
            if not rest[len("local-dir:") :]:
                raise InvalidInputError(f"backbone: expected open_clip:local-dir:<folder>, found {spec!r}")
            return Spec("open_clip", rest, None, f"open_clip:{rest}")
        arch, _, tag = rest.partition(":")
        if not arch:
            raise InvalidInputError(f"backbone: expected open_clip:<arch>:<pretrained tag>, found {spec!r}")
        return Spec("open_clip", arch, tag or None, f"open_clip:{arch}" + (f":{tag}" if tag else ""))
    if lib in ("torch_hub", "hub") and rest:
        repo, _, entry = rest.rpartition(":")
        if not repo or not entry:
            raise InvalidInputError(
                f"backbone: expected torch_hub:<owner>/<repo>[:<ref>]:<entry point> or torch_hub:<dir>:<entry point>, "
                f"found {spec!r}"
            )
        return Spec("torch_hub", repo, entry, f"torch_hub:{repo}:{entry}")
    if lib in CONVERTERS and rest:
        return Spec("checkpoint", rest, lib, f"{lib}:{rest}")
    if len(lib) == 1 and rest[:1] in ("\\", "/"):  # a Windows path is not a spec
        raise unknown_backbone_error(spec)
    raise unknown_backbone_error(spec, f"unknown prefix {lib!r}")


def resolve(name: str) -> tuple[Spec, Backbone | None]:
    """A registry name / paper label / spec -> (parsed spec, registry entry or None)."""
    entry = get_backbone(name) if isinstance(name, str) else None
    if entry is not None:
        return parse_spec(entry.spec), entry
    return parse_spec(name), None


def table_rows() -> list[list[str]]:
    """Rows of ``in21k-bench backbones``: name, loader, weights, dim, preprocessing, paper label."""
    rows = []
    for b in REGISTRY:
        p = b.preprocessing
        norm = "ImageNet" if p.mean == IMAGENET_MEAN else ("CLIP" if p.mean == CLIP_MEAN else "custom")
        rows.append([b.name, b.loader, b.spec, str(b.dim), f"{p.resize}->{p.crop} {p.interpolation} {norm}", b.label])
    return rows


__all__ = [
    "Backbone",
    "Preprocessing",
    "PAPER",
    "PAPER_CLIP",
    "REGISTRY",
    "Spec",
    "get_backbone",
    "list_backbones",
    "parse_spec",
    "resolve",
]
