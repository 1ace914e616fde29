"""Building a backbone from its spec (:mod:`in21k_bench.features.backbones`): the model, the
preprocessing that runs, and the records written to a store's ``meta.json``.

Every loader returns a :class:`Built`: the model (eval mode, on the device, no gradients), how to
call it (``kind``), the feature dim, the :class:`~in21k_bench.features.backbones.Preprocessing`
(the torchvision transform is built from it, so the record is what ran) and the backbone record
(``name, spec, loader, weights, checkpoint_sha256, pretrained, dim``).

Imports torch / timm / open_clip inside the functions only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InvalidInputError
from ..fileio import sha256_file
from .backbones import PAPER, PAPER_CLIP, Backbone, Preprocessing, Spec, unknown_backbone_error

VIT_LIKE = ("vit", "deit", "eva", "beit")


@dataclass
class Built:
    model: object
    kind: str  # "timm" (model(x) -> (B, D)), "open_clip" (encode_image), "tokens" ((B, N, D) or (B, D))
    dim: int
    preprocessing: Preprocessing
    record: dict


def build_transform(p: Preprocessing):
    """The torchvision eval transform of a preprocessing record."""
    from torchvision import transforms as T

    mode = getattr(T.InterpolationMode, p.interpolation.upper())
    return T.Compose(
        [
            T.Resize(p.resize, interpolation=mode),
            T.CenterCrop(p.crop),
            T.ToTensor(),
            T.Normalize(list(p.mean), list(p.std)),
        ]
    )


def default_mode(entry: Backbone | None, checkpoint) -> str:
    """``paper`` for registered backbones and for local checkpoints (a library's configuration describes
    the library's weights, not a file's), else ``model``."""
    return "paper" if entry is not None or checkpoint is not None else "model"


def choose_preprocessing(
    spec: Spec, entry: Backbone | None, preprocess: str | None, model_default: Preprocessing | None, checkpoint=None
) -> Preprocessing:
    """``paper`` (the entry's, or the package default for raw specs), or ``model`` (the library's own)."""
    mode = preprocess or default_mode(entry, checkpoint)
    if mode == "paper":
        if entry is not None:
            return entry.preprocessing
        return PAPER_CLIP if spec.loader == "open_clip" else PAPER
    if mode == "model":
        if model_default is not None:
            return replace(model_default, mode="model")
        base = entry.preprocessing if entry is not None else PAPER  # hub / checkpoint: the authors' eval transform
        return replace(base, mode="model")
    raise InvalidInputError(f"backbone: expected --preprocess paper or model, found {preprocess!r}")


def convert_ibot_state_dict(ck) -> tuple[dict, str | None]:
    """An iBOT checkpoint -> timm ViT keys, and which sub-dict was used.

    Accepts the released backbone files (``{"state_dict": {...}}``), full training checkpoints
    (``teacher`` / ``student`` with ``backbone.`` / ``module.backbone.`` prefixes and projection-head
    keys) and a bare state dict. Backbone keys lose their prefixes; the projection head, a
    classification head and the MIM ``masked_embed`` token are dropped (timm's ViT names the rest
    identically: ``cls_token, pos_embed, patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,
    mlp.fc1,mlp.fc2}.*, norm.*``)."""
    if not isinstance(ck, dict):
        raise InvalidInputError(f"ibot checkpoint: expected a dict of tensors, found {type(ck).__name__}")
    used = None
    sd = ck
    for key in ("state_dict", "teacher", "student", "model"):
        if isinstance(ck.get(key), dict):
            sd, used = ck[key], key
            break
    prefixes = ("module.backbone.", "backbone.")
    has_backbone = any(str(k).startswith(prefixes) for k in sd)
    out = {}
    for k, v in sd.items():
        k = str(k)
        if has_backbone:
            p = next((p for p in prefixes if k.startswith(p)), None)
            if p is None:
                continue  # projection head (head.mlp.*, head.last_layer*) of a full checkpoint
            k = k[len(p) :]
        elif k.startswith("module."):
            k = k[len("module.") :]
        if k == "masked_embed" or k.startswith("head."):
            continue
        out[k] = v
    if not out:
        raise InvalidInputError(f"ibot checkpoint: expected backbone weights, found keys {sorted(sd)[:5]}")
    return out, used


def _read_checkpoint(path):
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)


def _finish(model, device: str):
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _timm_model_default(model) -> Preprocessing:
    import timm

    cfg = timm.data.resolve_model_data_config(model)
    crop = int(cfg["input_size"][-1])
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    interp = cfg.get("interpolation") or "bicubic"
    return Preprocessing(
        resize=max(crop, int(math.floor(crop / crop_pct))),
        crop=crop,
        interpolation=interp if interp != "random" else "bicubic",
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        mode="model",
    )


def _requested_crop(preprocess: str | None, entry: Backbone | None, overrides: dict, checkpoint) -> int | None:
    """The input size the model must be built for before its own configuration is known."""
    if overrides.get("crop") is not None:
        return int(overrides["crop"])
    if overrides.get("image_size") is not None:
        return int(overrides["image_size"])
    if (preprocess or default_mode(entry, checkpoint)) == "paper":
        return (entry.preprocessing if entry is not None else PAPER).crop
    return None


def load(
    spec: Spec,
    entry: Backbone | None,
    name: str,
    *,
    checkpoint: str | os.PathLike | None = None,
    pretrained: bool = True,
    device: str = "cpu",
    preprocess: str | None = None,
    overrides: dict | None = None,
) -> Built:
    """Build the backbone (see the module docstring). ``overrides``: resize, crop, interpolation,
    mean, std, image_size (any may be None)."""
    import torch

    overrides = dict(overrides or {})
    if preprocess not in (None, "paper", "model"):
        raise InvalidInputError(f"backbone: expected --preprocess paper or model, found {preprocess!r}")
    if checkpoint is None and not pretrained:
        torch.manual_seed(0)  # random initialisation is the same in every process (and every run)
    sha = sha256_file(checkpoint) if checkpoint is not None else None
    crop = _requested_crop(preprocess, entry, overrides, checkpoint)
    if spec.loader == "timm":
        _check_timm_name(spec.model, name)
    fn = {"timm": _timm, "open_clip": _open_clip, "torch_hub": _torch_hub, "checkpoint": _converted}[spec.loader]
    model, kind, weights, model_default = fn(spec, entry, checkpoint, pretrained, crop)
    base = choose_preprocessing(spec, entry, preprocess, model_default, checkpoint)
    prep = base.with_overrides(
        resize=overrides.get("resize"),
        crop=overrides.get("crop"),
        interpolation=overrides.get("interpolation"),
        mean=overrides.get("mean"),
        std=overrides.get("std"),
        image_size=overrides.get("image_size"),
    )
    model = _finish(model, device)
    if kind == "timm":
        dim = int(model.num_features)
    elif kind == "open_clip":
        dim = int(model.visual.output_dim)
    else:
        with torch.inference_mode():
            out = model(torch.zeros(1, 3, prep.crop, prep.crop, device=device))
        out = out[:, 0] if out.ndim == 3 else out
        if out.ndim != 2:
            raise InvalidInputError(
                f"backbone: expected {spec.text} to return (B, D) or (B, tokens, D) features, found shape "
                f"{tuple(out.shape)}"
            )
        dim = int(out.shape[1])
    if entry is not None and dim != entry.dim:
        raise InvalidInputError(f"backbone: expected {entry.name} to give {entry.dim}-dim features, found {dim}")
    if checkpoint is not None:
        weights = Path(checkpoint).name + (weights if weights and weights.startswith("[") else "")
    record = {
        "name": entry.name if entry is not None else name,
        "spec": spec.text,
        "loader": spec.loader,
        "weights": weights,
        "checkpoint_sha256": sha,
        "pretrained": bool(pretrained or checkpoint is not None),
        "dim": dim,
    }
    return Built(model, kind, dim, prep, record)


def _check_timm_name(model: str, typed: str) -> None:
    """An unknown timm name: one line with the near timm names (and near registry names for a bare name)."""
    import difflib

    import timm

    base = model.split(".", 1)[0]
    if timm.is_model(base):
        return
    near = difflib.get_close_matches(base, timm.list_models(), n=3, cutoff=0.6)
    hint = f"near timm names: {', '.join(near)}" if near else "no near timm name"
    if typed.startswith("timm:"):
        raise InvalidInputError(f"backbone: expected a timm model name, found {model!r} (unknown model; {hint})")
    raise unknown_backbone_error(typed, f"not a timm model either; {hint}")


def _timm(spec: Spec, entry, checkpoint, pretrained: bool, crop: int | None):
    import timm

    base = spec.model.split(".", 1)[0]
    kwargs: dict = {"num_classes": 0}
    size = crop if crop is not None else (entry.options.get("img_size") if entry is not None else None)
    if size and any(s in base for s in VIT_LIKE):
        cfg = timm.get_pretrained_cfg(spec.model)
        default = int(cfg.input_size[-1]) if cfg is not None and getattr(cfg, "input_size", None) else None
        if default != int(size):
            kwargs["img_size"] = int(size)
    if checkpoint is not None:
        model = timm.create_model(
            spec.model, pretrained=True, pretrained_cfg_overlay={"file": str(checkpoint)}, **kwargs
        )
        weights = None
    else:
        model = timm.create_model(spec.model, pretrained=pretrained, **kwargs)
        cfg = getattr(model, "pretrained_cfg", None) or {}
        arch, tag = cfg.get("architecture") or base, cfg.get("tag")
        weights = (f"{arch}.{tag}" if tag else arch) if pretrained else None
    return model, "timm", weights, _timm_model_default(model)


def _open_clip(spec: Spec, entry, checkpoint, pretrained: bool, crop: int | None):
    import logging

    import open_clip

    schema = spec.model.startswith(("hf-hub:", "local-dir:"))
    if not schema and spec.model not in open_clip.list_models():
        raise unknown_backbone_error(spec.text, "not an open_clip architecture")
    if checkpoint is not None:
        if schema:
            raise InvalidInputError(
                f"backbone: expected --checkpoint with open_clip:<arch>, found {spec.text} (its weights come with it)"
            )
        pre, weights = str(checkpoint), None
    elif schema:
        pre, weights = None, spec.model  # the schema names the weights
    else:
        pre = spec.tag if pretrained else None
        if pretrained and not pre:
            raise InvalidInputError(
                f"backbone: expected open_clip:<arch>:<pretrained tag> (tags of {spec.model}: "
                f"{', '.join(open_clip.list_pretrained_tags_by_model(spec.model)) or 'none'}), found {spec.text}"
            )
        weights = pre
    kwargs = {"force_image_size": int(crop)} if crop else {}
    previous = logging.root.manager.disable
    if pre is None and not schema:
        logging.disable(logging.WARNING)  # "initialized randomly" is what was asked for
    try:
        model = open_clip.create_model(spec.model, pretrained=pre, **kwargs)
    finally:
        logging.disable(previous)
    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    size = cfg.get("size", getattr(model.visual, "image_size", 224))
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    interp = cfg.get("interpolation") or "bicubic"
    default = Preprocessing(
        resize=size,
        crop=size,
        interpolation=interp,
        mean=tuple(cfg.get("mean") or PAPER_CLIP.mean),
        std=tuple(cfg.get("std") or PAPER_CLIP.std),
        mode="model",
    )
    return model, "open_clip", weights, default


def _torch_hub(spec: Spec, entry, checkpoint, pretrained: bool, crop: int | None):
    import torch

    local = spec.local_hub
    repo = str(Path(spec.model).expanduser()) if local else spec.model
    kwargs = {} if (pretrained and checkpoint is None) else {"pretrained": False}
    try:
        if local:
            model = torch.hub.load(repo, spec.tag, source="local", **kwargs)
        else:
            model = torch.hub.load(repo, spec.tag, source="github", trust_repo=True, **kwargs)
    except TypeError as exc:
        if kwargs and "pretrained" in str(exc):
            raise InvalidInputError(
                f"backbone: expected hub entry point {spec.tag} to accept pretrained=False (needed for --checkpoint "
                f"and --random-init), found it does not"
            ) from None
        raise
    except ModuleNotFoundError as exc:
        raise InvalidInputError(
            f"backbone: expected the packages {spec.text} imports to be installed, found {exc.name} missing"
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            f"backbone: expected {spec.text} to return a torch module, found {type(model).__name__}"
        )
    if checkpoint is not None:
        ck = _read_checkpoint(checkpoint)
        sd = ck
        for key in ("state_dict", "model"):
            if isinstance(ck, dict) and isinstance(ck.get(key), dict):
                sd = ck[key]
                break
        model.load_state_dict(sd, strict=True)
    weights = f"{spec.model}:{spec.tag}" if pretrained or checkpoint is not None else None
    return model, "tokens", weights, None


def _converted(spec: Spec, entry, checkpoint, pretrained: bool, crop: int | None):
    import timm

    if not timm.is_model(spec.model):
        raise unknown_backbone_error(spec.text, "not a timm architecture to convert into")
    if checkpoint is None and pretrained:
        where = f" (download it from {entry.source})" if entry is not None and entry.source else ""
        raise InvalidInputError(
            f"backbone: expected --checkpoint for {entry.name if entry else spec.text}: its weights are a released "
            f"{spec.tag} checkpoint, not a library download{where}; found none"
        )
    kwargs: dict = {"num_classes": 0}
    if crop and any(s in spec.model for s in VIT_LIKE):
        kwargs["img_size"] = int(crop)
    model = timm.create_model(spec.model, pretrained=False, **kwargs)
    used = None
    if checkpoint is not None:
        sd, used = convert_ibot_state_dict(_read_checkpoint(checkpoint))
        pe = sd.get("pos_embed")
        if pe is not None and tuple(pe.shape) != tuple(model.pos_embed.shape):
            from timm.layers import resample_abs_pos_embed

            sd["pos_embed"] = resample_abs_pos_embed(
                pe, new_size=model.patch_embed.grid_size, num_prefix_tokens=1 if model.cls_token is not None else 0
            )
        model.load_state_dict(sd, strict=True)
    weights = f"[{used}]" if used in ("teacher", "student") else None
    return model, "timm", weights, None
