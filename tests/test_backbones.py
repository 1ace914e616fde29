"""Backbone registry, spec parsing, every loader's code path (architectures built without weights,
no downloads), the iBOT key conversion, and the backbone / preprocessing records in meta.json."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import PAPER_PREPROCESSING, run_cli
from in21k_bench.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[1]


# --- registry and specs (torch-free) ------------------------------------------------------------------


def test_registry_entries_and_import_is_torch_free():
    import in21k_bench
    from in21k_bench.features.backbones import get_backbone

    rows = in21k_bench.list_backbones()
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    dims = {r["name"]: r["dim"] for r in rows}
    assert dims["supervised-vitl16-in21k"] == 1024 and dims["ibot-vitl16-in21k"] == 1024
    assert dims["dinov2-vitg14"] == 1536 and dims["clip-vitbigg14"] == 1280 and dims["mae-refined-vith14"] == 1280
    sup = get_backbone("supervised-vitl16-in21k")
    assert sup.spec == "timm:vit_large_patch16_224.augreg_in21k"  # not the bare (IN-1K fine-tuned) name
    assert get_backbone("iBOT ViT-L (IN-21K)").name == "ibot-vitl16-in21k"  # the paper / leaderboard label
    assert get_backbone("MAE-R ViT-H").spec == "torch_hub:ml-jku/MIM-Refiner:mae_refined_h14"
    p = sup.preprocessing.to_dict()
    assert p == PAPER_PREPROCESSING  # resize 256, crop 224, bicubic, ImageNet mean / std
    assert get_backbone("clip-vitbigg14").preprocessing.mean[0] == pytest.approx(0.48145466)
    code = "import sys, in21k_bench; in21k_bench.list_backbones(); import in21k_bench.features.backbones; " + (
        "print([m for m in ('torch', 'timm', 'open_clip', 'PIL', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_facts_match_the_libraries_and_the_paper_labels():
    """Weights tags exist in timm / open_clip, dims match the architectures (built on the meta device: no
    weights, no memory), and every backbone of the paper's reported numbers resolves to an entry."""
    import csv

    import open_clip
    import timm
    import torch

    from in21k_bench.features.backbones import REGISTRY, get_backbone, parse_spec

    for b in REGISTRY:
        spec = parse_spec(b.spec)
        assert spec.loader == b.loader, b.name
        if b.loader in ("timm", "checkpoint"):
            if b.loader == "timm":
                cfg = timm.get_pretrained_cfg(b.weights)
                assert cfg is not None and cfg.tag == b.weights.split(".", 1)[1], b.name
            with torch.device("meta"):
                m = timm.create_model(spec.model, pretrained=False, num_classes=0, **b.options)
            assert m.num_features == b.dim, b.name
        elif b.loader == "open_clip":
            assert b.weights in open_clip.list_pretrained_tags_by_model(spec.model)
            assert open_clip.get_model_config(spec.model)["embed_dim"] == b.dim
    assert timm.get_pretrained_cfg("vit_giant_patch14_dinov2.lvd142m").input_size[-1] == 518  # why img_size=224
    assert timm.get_pretrained_cfg("vit_large_patch16_224").tag == "augreg_in21k_ft_in1k"  # the bare name is IN-1K
    with open(REPO / "in21k_bench" / "leaderboard" / "assets" / "paper_reported.csv", newline="") as f:
        labels = {row["backbone"] for row in csv.DictReader(f)}
    assert labels and all(get_backbone(label) is not None for label in labels), labels


def test_parse_specs():
    from in21k_bench.features.extract import parse_backbone

    assert parse_backbone("vit_small_patch16_224") == ("timm", "vit_small_patch16_224", None)
    assert parse_backbone("timm:vit_large_patch16_224.augreg_in21k") == (
        "timm",
        "vit_large_patch16_224.augreg_in21k",
        None,
    )
    assert parse_backbone("open_clip:ViT-bigG-14:laion2b_s39b_b160k") == (
        "open_clip",
        "ViT-bigG-14",
        "laion2b_s39b_b160k",
    )
    # the hub schema keeps its colon (it used to become arch 'hf-hub', tag 'org/repo')
    assert parse_backbone("open_clip:hf-hub:laion/CLIP-ViT-bigG-14-laion2B-39B-b160k") == (
        "open_clip",
        "hf-hub:laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",
        None,
    )
    assert parse_backbone("torch_hub:ml-jku/MIM-Refiner:mae_refined_h14") == (
        "torch_hub",
        "ml-jku/MIM-Refiner",
        "mae_refined_h14",
    )
    assert parse_backbone("torch_hub:facebookresearch/dinov2:main:dinov2_vitg14")[1] == "facebookresearch/dinov2:main"
    assert parse_backbone("ibot:vit_large_patch16_224") == ("checkpoint", "vit_large_patch16_224", "ibot")
    assert parse_backbone("dinov2-vitg14") == ("timm", "vit_giant_patch14_dinov2.lvd142m", None)
    for bad in ("open_clip:hf-hub:no-slash", "torch_hub:onlyrepo", "caffe:alexnet", ""):
        with pytest.raises(InvalidInputError):
            parse_backbone(bad)


def test_preprocessing_overrides_and_validation():
    from in21k_bench.features.backbones import PAPER, Preprocessing

    assert PAPER.with_overrides() is PAPER
    assert PAPER.with_overrides(resize=256, interpolation="bicubic").mode == "paper"  # same values: still paper
    c = PAPER.with_overrides(image_size=112)
    assert (c.resize, c.crop, c.mode) == (128, 112, "custom")  # keeps 256/224
    m = PAPER.with_overrides(mean="0.5,0.5,0.5", std=[0.5, 0.5, 0.5])
    assert m.mean == (0.5, 0.5, 0.5) and m.mode == "custom"
    for kw in ({"crop": 300, "resize": 256}, {"interpolation": "fancy"}, {"mean": "1,2"}, {"std": "0,1,1"}):
        with pytest.raises(InvalidInputError):
            PAPER.with_overrides(**kw)
    with pytest.raises(InvalidInputError):
        Preprocessing(resize=0, crop=0)


# --- loaders ------------------------------------------------------------------------------------------


def _digit_images(root: Path, n_per_class: int = 3, classes: int = 3) -> list[Path]:
    """Real images: scikit-learn's handwritten digits, upscaled and written as PNG class folders."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    paths = []
    for c in range(classes):
        idx = np.flatnonzero(d.target == c)[:n_per_class]
        folder = root / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in idx:
            img = (d.images[i] * (255 / 16)).astype(np.uint8)
            p = folder / f"digit_{i:04d}.png"
            Image.fromarray(img).resize((40, 36), Image.BICUBIC).convert("RGB").save(p)
            paths.append(p)
    return paths


def _run(emb, tf, paths):
    import torch
    from PIL import Image

    with torch.inference_mode():
        return torch.stack([tf(Image.open(p).convert("RGB")) for p in paths]), emb


def test_timm_loader_paper_model_and_transform(tmp_path):
    import torch
    from PIL import Image

    from in21k_bench.features.extract import load_backbone

    paths = _digit_images(tmp_path / "img")
    emb, tf, dim = load_backbone("timm:test_vit", pretrained=False, preprocess="paper", crop=32, resize=40)
    assert dim == 64 and emb.record == {
        "name": "timm:test_vit",
        "spec": "timm:test_vit",
        "loader": "timm",
        "weights": None,
        "checkpoint_sha256": None,
        "pretrained": False,
        "dim": 64,
    }
    assert emb.preprocessing["mode"] == "custom" and emb.preprocessing["crop"] == 32
    # the transform is the record: resize shorter side, centre crop, normalise with the recorded stats
    img = Image.open(paths[0]).convert("RGB")
    x = tf(img)
    assert tuple(x.shape) == (3, 32, 32)
    arr = np.asarray(img.resize((44, 40), Image.BICUBIC), dtype=np.float32) / 255  # 40x36 -> shorter side 40
    top, left = (40 - 32) // 2, (44 - 32) // 2
    ref = (arr[top : top + 32, left : left + 32] - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), ref, atol=0.05)
    with torch.inference_mode():
        assert tuple(emb(x[None]).shape) == (1, 64)
    # model mode: timm's own configuration for this architecture, recorded
    emb2, _, _ = load_backbone("timm:test_vit", pretrained=False, preprocess="model")
    p = emb2.preprocessing
    assert (
        p["mode"] == "model" and p["interpolation"] == "bicubic" and p["crop"] == 160 and p["resize"] == 168
    )  # floor(160 / crop_pct 0.95)


def test_timm_vit_built_at_the_requested_crop():
    from in21k_bench.features.extract import load_backbone

    # DINOv2 in timm defaults to 518 px; the paper's crop builds it at the crop size instead
    emb, _, dim = load_backbone("timm:vit_small_patch14_dinov2", pretrained=False, preprocess="paper", image_size=56)
    assert dim == 384 and tuple(emb.model.patch_embed.grid_size) == (4, 4)
    assert emb.preprocessing["crop"] == 56 and emb.preprocessing["resize"] == 64


def test_timm_checkpoint_recorded_with_sha256(tmp_path):
    import timm
    import torch

    from in21k_bench.features.extract import load_backbone

    torch.manual_seed(3)
    m = timm.create_model("test_vit", pretrained=False, num_classes=0, img_size=32)
    torch.save(m.state_dict(), tmp_path / "w.pth")
    emb, _, _ = load_backbone("timm:test_vit", checkpoint=tmp_path / "w.pth", image_size=32)
    assert emb.record["weights"] == "w.pth" and emb.record["pretrained"] is True
    # with a checkpoint the default is the paper's preprocessing (timm's config describes timm's weights)
    assert (emb.preprocessing["resize"], emb.preprocessing["crop"]) == (36, 32)  # 256/224 ratio, not timm's 0.95
    assert emb.record["checkpoint_sha256"] == hashlib.sha256((tmp_path / "w.pth").read_bytes()).hexdigest()


def _tiny_clip_dir(root: Path) -> Path:
    import open_clip
    import torch

    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    d = root / "tiny-clip"
    d.mkdir()
    pre = {"mean": [0.4, 0.4, 0.4], "std": [0.3, 0.3, 0.3], "interpolation": "bilinear", "size": 32}
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pre}))
    torch.manual_seed(1)
    model = open_clip.CLIP(**cfg)
    torch.save(model.state_dict(), d / "open_clip_pytorch_model.bin")
    return d


def test_open_clip_loader_schema_path(tmp_path):
    """``open_clip:local-dir:`` takes the same code path as ``open_clip:hf-hub:`` (weights come with the name)."""
    import open_clip
    import torch

    from in21k_bench.features.extract import load_backbone

    d = _tiny_clip_dir(tmp_path)
    emb, tf, dim = load_backbone(f"open_clip:local-dir:{d}", preprocess="model")
    assert dim == 32 and emb.kind == "open_clip"
    assert emb.record["weights"] == f"local-dir:{d}" and emb.record["loader"] == "open_clip"
    p = emb.preprocessing
    assert (p["resize"], p["crop"], p["interpolation"], p["mean"]) == (32, 32, "bilinear", [0.4, 0.4, 0.4])
    ref = open_clip.create_model(f"local-dir:{d}").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        np.testing.assert_allclose(emb(x).numpy(), ref.encode_image(x).numpy(), atol=1e-5)
    # an architecture name with random weights; no tag with pretrained weights is a one-line error
    emb2, _, dim2 = load_backbone("open_clip:ViT-B-32", pretrained=False, preprocess="paper", image_size=32)
    assert dim2 == 512 and emb2.preprocessing["mean"][0] == pytest.approx(0.48145466)
    with pytest.raises(InvalidInputError, match="laion2b"):
        load_backbone("open_clip:ViT-B-32")


HUBCONF = textwrap.dedent(
    '''
    dependencies = ["torch"]
    import torch


    class TokenNet(torch.nn.Module):
        """Returns all tokens (B, 1 + patches, D), like MIM-Refiner's ViTs."""

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Conv2d(3, 24, 8, 8)
            self.cls = torch.nn.Parameter(torch.randn(1, 1, 24))

        def forward(self, x):
            t = self.proj(x).flatten(2).transpose(1, 2)
            return torch.cat([self.cls.expand(len(x), -1, -1), t], 1)


    def tiny_tokens(pretrained=True):
        torch.manual_seed(5)
        return TokenNet()


    def no_flag():
        return TokenNet()
    '''
)


def test_torch_hub_loader_local_repo(tmp_path):
    import torch

    from in21k_bench.features.extract import load_backbone

    repo = tmp_path / "hubrepo"
    repo.mkdir()
    (repo / "hubconf.py").write_text(HUBCONF)
    emb, _, dim = load_backbone(f"torch_hub:{repo}:tiny_tokens", pretrained=False, image_size=32)
    assert dim == 24 and emb.record["loader"] == "torch_hub" and emb.record["weights"] is None
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        out = emb(x)
        np.testing.assert_allclose(out.numpy(), emb.model(x)[:, 0].numpy())  # the class token
    p = emb.preprocessing  # raw spec: model mode (the paper's values for hub models), --image-size makes it custom
    assert (p["mode"], p["resize"], p["crop"]) == ("custom", 36, 32)
    # a local checkpoint loaded into the hub architecture
    sd = {k: v + 1 for k, v in emb.model.state_dict().items()}
    torch.save({"state_dict": sd}, tmp_path / "hub.pth")
    emb2, _, _ = load_backbone(f"torch_hub:{repo}:tiny_tokens", checkpoint=tmp_path / "hub.pth", image_size=32)
    assert torch.equal(emb2.model.cls, sd["cls"]) and emb2.record["weights"] == "hub.pth"
    with pytest.raises(InvalidInputError, match="pretrained=False"):
        load_backbone(f"torch_hub:{repo}:no_flag", pretrained=False)
    with pytest.raises(InvalidInputError):
        load_backbone(f"torch_hub:{repo}:missing_entry", pretrained=False)


def test_torch_hub_loader_github_ref_from_the_hub_cache(tmp_path):
    """``owner/repo:ref`` goes through torch.hub's GitHub path; with the repository already in the hub
    cache (as after a first online run) it loads without network."""
    import torch

    from in21k_bench.features.extract import load_backbone

    cache = tmp_path / "hub"
    (cache / "someone_tinyrepo_main").mkdir(parents=True)
    (cache / "someone_tinyrepo_main" / "hubconf.py").write_text(HUBCONF)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(cache))
    try:
        emb, _, dim = load_backbone("torch_hub:someone/tinyrepo:main:tiny_tokens", pretrained=False)
    finally:
        torch.hub.set_dir(old)
    assert dim == 24 and emb.record["spec"] == "torch_hub:someone/tinyrepo:main:tiny_tokens"
    assert emb.preprocessing["mode"] == "model" and emb.preprocessing["resize"] == 256


def test_ibot_key_conversion_round_trip(tmp_path):
    import timm
    import torch

    from in21k_bench.features.extract import load_backbone
    from in21k_bench.features.loaders import convert_ibot_state_dict

    torch.manual_seed(7)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=64).eval()
    orig = ref.state_dict()
    # the release layout: a full training checkpoint, student under DDP ('module.backbone.'), teacher
    # ('backbone.'), each with its projection head, and the MIM mask token
    head = {"head.mlp.0.weight": torch.randn(8, 192), "head.last_layer.weight_g": torch.randn(8, 1)}
    student = {f"module.backbone.{k}": v.clone() for k, v in orig.items()}
    student.update({f"module.{k}": v for k, v in head.items()})
    student["module.backbone.masked_embed"] = torch.zeros(1, 192)
    teacher = {f"backbone.{k}": v.clone() + 1 for k, v in orig.items()}
    teacher.update(head)
    full = {"student": student, "teacher": teacher, "epoch": 800}
    conv, used = convert_ibot_state_dict({"student": student})
    assert used == "student" and conv.keys() == orig.keys()
    assert all(torch.equal(conv[k], orig[k]) for k in orig)
    # the released backbone file: {"state_dict": stripped keys}
    conv2, used2 = convert_ibot_state_dict({"state_dict": {**orig, "masked_embed": torch.zeros(1, 192)}})
    assert used2 == "state_dict" and conv2.keys() == orig.keys()

    torch.save({"student": student}, tmp_path / "checkpoint_student_full.pth")
    torch.save(full, tmp_path / "checkpoint.pth")
    emb, _, dim = load_backbone(
        "ibot:vit_tiny_patch16_224", checkpoint=tmp_path / "checkpoint_student_full.pth", image_size=64
    )
    assert dim == 192 and emb.record["loader"] == "checkpoint"
    assert emb.record["weights"] == "checkpoint_student_full.pth[student]"
    loaded = emb.model.state_dict()
    assert all(torch.equal(loaded[k], orig[k]) for k in orig)
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(emb(x).numpy(), ref(x).numpy(), atol=1e-6)
    # a full checkpoint: the teacher (first in the documented order after state_dict)
    emb_t, _, _ = load_backbone("ibot:vit_tiny_patch16_224", checkpoint=tmp_path / "checkpoint.pth", image_size=64)
    assert emb_t.record["weights"] == "checkpoint.pth[teacher]"
    assert torch.equal(emb_t.model.state_dict()["cls_token"], orig["cls_token"] + 1)
    # the registered iBOT entry without a checkpoint says where its weights are
    with pytest.raises(InvalidInputError, match="checkpoint_student.pth"):
        load_backbone("ibot-vitl16-in21k")
    # keys of another architecture: one-line error, not a traceback
    with pytest.raises(InvalidInputError):
        load_backbone("ibot:vit_small_patch16_224", checkpoint=tmp_path / "checkpoint.pth", image_size=64)


# --- meta.json records and resume ---------------------------------------------------------------------


def test_meta_records_and_resume_refuses_other_preprocessing(tmp_path):
    import timm
    import torch

    from in21k_bench.features.extract import extract_features
    from in21k_bench.features.store import FeatureStore

    _digit_images(tmp_path / "img")
    torch.manual_seed(0)
    m = timm.create_model("test_vit", pretrained=False, num_classes=0, img_size=32)
    torch.save(m.state_dict(), tmp_path / "w.pth")
    kw = dict(splits=("",), checkpoint=tmp_path / "w.pth", workers=0, device="cpu", shard_rows=4)
    store = extract_features(tmp_path / "img", tmp_path / "f", "timm:test_vit", preprocess="paper", crop=32, **kw)[
        "all"
    ]
    meta = json.loads((tmp_path / "f" / "meta.json").read_text())
    assert meta["backbone"] == {
        "name": "timm:test_vit",
        "spec": "timm:test_vit",
        "loader": "timm",
        "weights": "w.pth",
        "checkpoint_sha256": hashlib.sha256((tmp_path / "w.pth").read_bytes()).hexdigest(),
        "pretrained": True,
        "dim": 64,
    }
    assert meta["preprocessing"] == {
        "mode": "custom",
        "resize": 256,
        "crop": 32,
        "interpolation": "bicubic",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert (
        store.backbone == "timm:test_vit" and FeatureStore.open(tmp_path / "f").preprocessing == meta["preprocessing"]
    )
    # the same command: complete, nothing to do; another preprocessing is another store
    again = extract_features(tmp_path / "img", tmp_path / "f", "timm:test_vit", preprocess="paper", crop=32, **kw)
    assert again["all"].num_rows == 9
    with pytest.raises(InvalidInputError, match="preprocessing.*resize: expected 64, found 256") as e:
        extract_features(
            tmp_path / "img", tmp_path / "f", "timm:test_vit", preprocess="paper", crop=32, resize=64, **kw
        )
    assert "\n" not in str(e.value)


def test_partial_store_resume_refuses_other_preprocessing_or_weights(tmp_path):
    from in21k_bench.features.parts import ShardedBuild

    rec = {"name": "x", "spec": "timm:x", "loader": "timm", "weights": "a", "checkpoint_sha256": None}
    prep = {"mode": "paper", "resize": 256, "crop": 224, "interpolation": "bicubic", "mean": [0.1] * 3, "std": [1] * 3}
    ids = [f"s{i}" for i in range(5)]
    b = ShardedBuild(tmp_path / "s", 5, 2)
    assert b.prepare(ids, 8, rec, preprocessing=prep) is False
    assert json.loads((tmp_path / "s" / "meta.json").read_text())["preprocessing"] == prep
    assert b.prepare(ids, 8, rec, preprocessing=dict(prep)) is False  # same records: resume
    with pytest.raises(InvalidInputError, match="same preprocessing.*interpolation: expected 'bilinear'"):
        b.prepare(ids, 8, rec, preprocessing={**prep, "interpolation": "bilinear"})
    with pytest.raises(InvalidInputError, match="same backbone.*weights"):
        b.prepare(ids, 8, {**rec, "weights": "b"}, preprocessing=prep)


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_backbones_json_and_table(capsys):
    code, out, _ = run_cli(["backbones", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert {r["name"] for r in rows} >= {"dinov2-vitg14", "clip-vitbigg14", "ibot-vitl16-in21k", "mae-refined-vith14"}
    assert all({"loader", "weights", "dim", "preprocessing", "spec"} <= r.keys() for r in rows)
    code, out, _ = run_cli(["backbones"], capsys)
    assert code == 0 and "vit_giant_patch14_dinov2.lvd142m" in out and "1536" in out


def test_cli_bad_backbone_name_one_line_with_near_names(tmp_path, capsys):
    _digit_images(tmp_path / "img")
    argv = ["features", "extract", "--images", str(tmp_path / "img"), "--split", "", "--out", str(tmp_path / "o")]
    code, _, err = run_cli([*argv, "--backbone", "dinov2-vitg"], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0 and len(lines) == 1 and "dinov2-vitg14" in lines[0] and "Traceback" not in err
    code, _, err = run_cli([*argv, "--backbone", "ibot-vitl16"], capsys)
    assert code != 0 and "ibot-vitl16-in21k" in err
    code, _, err = run_cli([*argv, "--backbone", "timm:test_vit", "--random-init", "--interpolation", "fancy"], capsys)
    assert code != 0 and "interpolation" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "meta.json").exists()
