"""Feature extraction with a small randomly initialised timm model on generated JPEGs; a real
subprocess is killed mid-run and the re-run must neither lose nor duplicate rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
IMG = 32


def _make_images(root: Path, n_train=8, n_val=2, classes=("n0002", "n0001", "n0003")):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(d / f"{c}_{i:03d}.JPEG")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import timm
    import torch

    root = tmp_path_factory.mktemp("ext")
    _make_images(root / "img")
    torch.manual_seed(0)
    model = timm.create_model("test_vit", pretrained=False, num_classes=0, img_size=IMG)
    torch.save(model.state_dict(), root / "w.pth")
    return root


def _direct(setup, paths):
    """Reference: the checkpoint's model applied image by image."""
    import torch

    from in21k_bench.features.extract import load_backbone

    emb, tf, _ = load_backbone("timm:test_vit", checkpoint=setup / "w.pth", device="cpu", image_size=IMG)
    from PIL import Image

    with torch.inference_mode():
        return np.concatenate([emb(tf(Image.open(p).convert("RGB"))[None]).numpy() for p in paths])


def test_extract_order_labels_values(setup, tmp_path):
    from in21k_bench.features.extract import extract_features

    stores = extract_features(
        setup / "img",
        tmp_path / "f",
        "timm:test_vit",
        checkpoint=setup / "w.pth",
        batch_size=5,
        workers=1,
        shard_rows=7,
        device="cpu",
        image_size=IMG,
    )
    train, val = stores["train"], stores["val"]
    assert (train.num_rows, val.num_rows, train.dim) == (24, 6, 64)
    ids = list(train.sample_ids)
    assert ids[0] == "train/n0001/n0001_000.JPEG" and ids[8] == "train/n0002/n0002_000.JPEG" and ids == sorted(ids)
    np.testing.assert_array_equal(train.labels, np.repeat([0, 1, 2], 8))
    np.testing.assert_array_equal(val.labels, np.repeat([0, 1, 2], 2))
    ref = _direct(setup, [setup / "img" / s for s in val.sample_ids])
    np.testing.assert_allclose(
        val.to_array(normalize=False), ref.astype(np.float16).astype(np.float32), rtol=2e-3, atol=2e-3
    )
    assert json.loads((tmp_path / "f" / "classes.json").read_text())["classes"] == ["n0001", "n0002", "n0003"]
    # a second run finds complete stores and does nothing
    again = extract_features(
        setup / "img",
        tmp_path / "f",
        "timm:test_vit",
        checkpoint=setup / "w.pth",
        shard_rows=7,
        workers=0,
        device="cpu",
        image_size=IMG,
    )
    assert again["train"].num_rows == 24


SLOW_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import in21k_bench.features.extract as ex
    real = ex.load_backbone
    def slow(*a, **kw):
        emb, tf, dim = real(*a, **kw)
        inner = emb.__class__.__call__
        class Slow(emb.__class__):
            def __call__(self, x):
                time.sleep(0.25)
                return inner(self, x)
        emb.__class__ = Slow
        return emb, tf, dim
    ex.load_backbone = slow
    ex.extract_features(sys.argv[1], sys.argv[2], "timm:test_vit", checkpoint=sys.argv[3], splits=("train",),
                        batch_size=2, workers=0, shard_rows=4, device="cpu", image_size=32)
    """
)


@pytest.mark.slow
def test_killed_extraction_resumes_without_loss_or_duplicates(setup, tmp_path):
    from in21k_bench.features.extract import extract_features

    out = tmp_path / "f"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SCRIPT, str(setup / "img"), str(out), str(setup / "w.pth")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    part = out / "train"
    deadline = time.time() + 60
    shards = 0
    while time.time() < deadline and proc.poll() is None:
        shards = len(list(part.glob("shard-*.done.json"))) if part.is_dir() else 0
        if shards >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"extraction ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    m = json.loads((part / "meta.json").read_text())
    done = len(list(part.glob("shard-*.done.json")))
    assert not m["complete"] and 2 <= done < 6

    store = extract_features(
        setup / "img",
        out,
        "timm:test_vit",
        checkpoint=setup / "w.pth",
        splits=("train",),
        batch_size=3,
        workers=0,
        shard_rows=4,
        device="cpu",
        image_size=IMG,
    )["train"]
    assert store.num_rows == 24
    ids = list(store.sample_ids)
    assert len(set(ids)) == 24 and ids == sorted(ids)
    ref = _direct(setup, [setup / "img" / s for s in ids])
    np.testing.assert_allclose(
        store.to_array(normalize=False), ref.astype(np.float16).astype(np.float32), rtol=2e-3, atol=2e-3
    )


def test_cli_extract_and_errors(setup, tmp_path, capsys):
    from in21k_bench.cli import main

    with pytest.raises(SystemExit) as e:
        main(
            [
                "features",
                "extract",
                "--images",
                str(setup / "img" / "val"),
                "--out",
                str(tmp_path / "one"),
                "--split",
                "",
                "--backbone",
                "timm:test_vit",
                "--random-init",
                "--image-size",
                "32",
                "--workers",
                "0",
                "--device",
                "cpu",
                "--json",
            ]
        )
    assert e.value.code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["all"]["num_rows"] == 6 and (tmp_path / "one" / "meta.json").is_file()
    with pytest.raises(SystemExit) as e:
        main(
            [
                "features",
                "extract",
                "--images",
                str(setup / "img"),
                "--out",
                str(tmp_path / "x"),
                "--split",
                "test",
                "--backbone",
                "timm:test_vit",
                "--random-init",
                "--device",
                "cpu",
            ]
        )
    assert e.value.code == 2
    assert "expected split folders test" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(
            [
                "features",
                "extract",
                "--images",
                str(setup / "img"),
                "--out",
                str(tmp_path / "x"),
                "--backbone",
                "foo:bar",
                "--device",
                "cpu",
            ]
        )
    assert e.value.code == 2
