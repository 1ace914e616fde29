"""The three real layouts of a download (image folders, HF parquet shards, webdataset tars) built from
scikit-learn's digits as real JPEG files: same sample ids, same order, same features; resume after a
killed run; corrupt and truncated inputs give one-line errors or, with --skip-bad, counted skips."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
IMG = 32
N_TRAIN, N_VAL = 6, 2
CLASS_POS = (3, 0, 7, 1)  # positions in the winter-21 class list (label index of parquet / .cls)


def _wnids():
    from in21k_bench.images.readers import winter21_wnids

    return winter21_wnids()


def _samples():
    """``[(split, wnid, label, file name, JPEG bytes)]`` from real digits images (upscaled to 32 px)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    wn = _wnids()
    out = []
    for split, n, start in (("train", N_TRAIN, 0), ("val", N_VAL, 40)):
        for digit, pos in enumerate(CLASS_POS):
            idx = np.flatnonzero(d.target == digit)[start : start + n]
            for j, k in enumerate(idx):
                a = (d.images[k] * (255 / 16)).astype(np.uint8)
                im = Image.fromarray(a).resize((IMG, IMG), Image.BILINEAR).convert("RGB")
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=90)
                out.append((split, wn[pos], pos, f"{wn[pos]}_{j + 10 * digit:04d}.JPEG", buf.getvalue()))
    return out


def _folder(root: Path, samples, official: bool):
    for split, wnid, _, name, data in samples:
        sd = f"imagenet21k_{split}" if official else split
        d = root / sd / wnid
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)


def _parquet(root: Path, samples, corrupt: str | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    (root / "data").mkdir(parents=True)
    for split, hf, nfiles in (("train", "train", 2), ("val", "validation", 1)):
        rows = [s for s in samples if s[0] == split]
        rows = [rows[i] for i in rng.permutation(len(rows))]  # the file order is not the canonical order
        for f in range(nfiles):
            part = rows[f::nfiles]
            img = [
                {"bytes": b"not a jpeg" if name == corrupt else data, "path": f"{wnid}/{name}"}
                for _, wnid, _, name, data in part
            ]
            t = pa.table(
                {
                    "image": pa.array(img, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                    "label": pa.array([p for _, _, p, _, _ in part], type=pa.int64()),
                }
            )
            pq.write_table(t, root / "data" / f"{hf}-{f:05d}-of-{nfiles:05d}.parquet", row_group_size=4)


def _tars(root: Path, samples, meta: str):
    rng = np.random.default_rng(2)
    root.mkdir(parents=True)
    for split in ("train", "val"):
        rows = [s for s in samples if s[0] == split]
        rows = [rows[i] for i in rng.permutation(len(rows))]
        for f in range(2):
            with tarfile.open(root / f"{split}-{f:06d}.tar", "w") as tf:
                for k, (_, wnid, pos, name, data) in enumerate(rows[f::2]):
                    if meta == "cls":
                        key, side = name.rsplit(".", 1)[0], {"cls": str(pos).encode()}
                        members = {f"{key}.JPEG": data, **{f"{key}.{e}": v for e, v in side.items()}}
                    else:
                        key = f"{f:02d}{k:06d}"
                        doc = json.dumps({"wnid": wnid, "filename": name, "width": IMG}).encode()
                        members = {f"{key}.jpg": data, f"{key}.json": doc}
                    for n, v in members.items():
                        ti = tarfile.TarInfo(n)
                        ti.size = len(v)
                        tf.addfile(ti, io.BytesIO(v))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    base = tmp_path_factory.mktemp("layouts")
    samples = _samples()
    _folder(base / "plain", samples, official=False)
    _folder(base / "release" / "imagenet21k_resized", samples, official=True)
    _parquet(base / "hf", samples)
    _tars(base / "wds-cls", samples, "cls")
    _tars(base / "wds-json", samples, "json")
    return base, samples


def _extract(images, out, **kw):
    from in21k_bench.features.extract import extract_features

    args = dict(pretrained=False, batch_size=5, workers=0, shard_rows=7, device="cpu", image_size=IMG)
    args.update(kw)
    return extract_features(images, out, "timm:test_vit", **args)


def test_detection(layouts):
    from in21k_bench.images.readers import open_source

    base, _ = layouts
    got = {k: open_source(base / k) for k in ("plain", "release", "hf", "wds-cls")}
    assert [s.format for s in got.values()] == ["folder", "folder", "parquet", "webdataset"]
    assert got["release"].root == base / "release" / "imagenet21k_resized"
    assert open_source(base / "release" / "imagenet21k_resized").splits["val"].name == "imagenet21k_val"
    assert [p.name for p in got["hf"].splits["val"]] == ["validation-00000-of-00001.parquet"]
    assert len(got["hf"].splits["train"]) == 2 and len(got["wds-cls"].splits["train"]) == 2


def test_layouts_same_ids_order_features(layouts, tmp_path):
    base, samples = layouts
    stores = {k: _extract(base / k, tmp_path / k) for k in ("plain", "release", "hf", "wds-cls", "wds-json")}
    ref = stores["plain"]
    want = sorted(f"{s}/{w}/{n}" for s, w, _, n, _ in samples if s == "train")
    assert list(ref["train"].sample_ids) == want  # sorted wnids = class-index order, then file name
    assert ref["train"].num_rows == 4 * N_TRAIN and ref["val"].num_rows == 4 * N_VAL
    for k, st in stores.items():
        for split in ("train", "val"):
            assert list(st[split].sample_ids) == list(ref[split].sample_ids), (k, split)
            np.testing.assert_array_equal(st[split].labels, ref[split].labels)
            np.testing.assert_array_equal(st[split].to_array(normalize=False), ref[split].to_array(normalize=False))
        assert st["train"].meta["image_format"] == (
            "folder" if k in ("plain", "release") else ("parquet" if k == "hf" else "webdataset")
        )
        assert json.loads((tmp_path / k / "classes.json").read_text())["classes"] == sorted({s[1] for s in samples})


def test_benchmark_listing_all_layouts(layouts, tmp_path):
    base, samples = layouts
    wn = _wnids()
    got = {}
    for k in ("plain", "hf", "wds-json"):
        st = _extract(base / k, tmp_path / k, benchmark="in21k", splits=("val",))["val"]
        got[k] = st
        assert st.meta["benchmark"] == "in21k"
        assert list(st.labels) == sorted(wn.index(s[1]) for s in samples if s[0] == "val")
    assert list(got["hf"].sample_ids) == list(got["plain"].sample_ids) == list(got["wds-json"].sample_ids)


def test_bad_layouts_one_line_errors(layouts, tmp_path):
    from in21k_bench.errors import InvalidInputError
    from in21k_bench.images.readers import open_source

    base, samples = layouts
    mixed = tmp_path / "mixed"
    _folder(mixed, samples[:3], official=False)
    _parquet(mixed, samples)
    with pytest.raises(InvalidInputError, match="mixed layouts") as e:
        open_source(mixed)
    assert "\n" not in str(e.value) and "folder" in str(e.value) and "parquet" in str(e.value)
    assert open_source(mixed, "parquet").format == "parquet"
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(InvalidInputError, match=r"expected a known layout.*found entries \['notes.txt'\]"):
        open_source(tmp_path / "junk")
    with pytest.raises(InvalidInputError, match="expected the webdataset layout"):
        open_source(base / "hf", "webdataset")
    # a label index outside the winter-21 list
    bad = tmp_path / "badlabel"
    _parquet(bad, samples)
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = bad / "data" / "validation-00000-of-00001.parquet"
    t = pq.read_table(f)
    t = t.set_column(1, "label", pa.array([99999] * len(t), pa.int64()))
    pq.write_table(t, f)
    with pytest.raises(
        InvalidInputError, match=r"validation-00000-of-00001.parquet row group 0 row 0: expected a class"
    ):
        open_source(bad).listing("val")
    # a class folder outside the benchmark's image set
    odd = tmp_path / "odd"
    _folder(odd, samples, official=False)
    (odd / "val" / "n99999999").mkdir()
    (odd / "val" / "n99999999" / "x.JPEG").write_bytes(samples[0][4])
    with pytest.raises(
        InvalidInputError, match=r"expected classes of benchmark in21k .* found 1 others \(first: n99999999\)"
    ):
        _extract(odd, tmp_path / "o", benchmark="in21k", splits=("val",))


def test_corrupt_image_and_skip_bad(layouts, tmp_path):
    from in21k_bench.errors import InvalidInputError

    base, samples = layouts
    victim = [s for s in samples if s[0] == "train"][5][3]
    hf = tmp_path / "hf"
    _parquet(hf, samples, corrupt=victim)
    with pytest.raises(InvalidInputError, match=r"parquet .*train-0000\d-of-00002.parquet row group \d row \d") as e:
        _extract(hf, tmp_path / "a", splits=("train",))
    assert "\n" not in str(e.value) and "--skip-bad" in str(e.value)
    st = _extract(hf, tmp_path / "b", splits=("train",), skip_bad=True)["train"]
    assert st.num_rows == 4 * N_TRAIN - 1 and not any(victim in s for s in st.sample_ids)
    sk = st.meta["skipped"]
    assert sk["count"] == 1 and victim in sk["examples"][0]["sample_id"] and "row group" in sk["examples"][0]["error"]
    ref = _extract(base / "plain", tmp_path / "ref", splits=("train",))["train"]
    keep = np.array([victim not in s for s in ref.sample_ids])
    np.testing.assert_array_equal(st.to_array(normalize=False), ref.to_array(normalize=False)[keep])
    again = _extract(hf, tmp_path / "b", splits=("train",), skip_bad=True)["train"]  # complete: nothing to do
    assert again.num_rows == st.num_rows


def test_truncated_tar(layouts, tmp_path):
    import shutil

    from in21k_bench.errors import InvalidInputError

    base, _ = layouts
    wds = tmp_path / "wds"
    shutil.copytree(base / "wds-json", wds)
    f = wds / "train-000001.tar"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=r"webdataset .*train-000001.tar: expected complete members") as e:
        _extract(wds, tmp_path / "a", splits=("train",))
    assert "\n" not in str(e.value)
    st = _extract(wds, tmp_path / "b", splits=("train",), skip_bad=True)["train"]
    sk = st.meta["skipped"]
    assert sk["damaged_files"][0]["file"].endswith("train-000001.tar") and 0 < st.num_rows < 4 * N_TRAIN


KILL_SCRIPT = """
import sys
from in21k_bench.features.extract import extract_features
extract_features(sys.argv[1], sys.argv[2], "timm:test_vit", pretrained=False, splits=("train",), batch_size=2,
                 workers=0, shard_rows=4, device="cpu", image_size=32, skip_bad=True)
"""


def test_killed_run_resumes(layouts, tmp_path):
    base, samples = layouts
    victim = [s for s in samples if s[0] == "train"][7][3]  # row 1: lands in shard 0: skips survive resume
    hf = tmp_path / "hf"
    _parquet(hf, samples, corrupt=victim)
    out = tmp_path / "f"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "IN21K_BENCH_FAULT_KILL_AFTER": "extract:2",
    }
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(hf), str(out)], env=env, capture_output=True)
    assert r.returncode != 0
    assert len(list((out / "train").glob("shard-*.done.json"))) == 3
    st = _extract(hf, out, splits=("train",), shard_rows=4, skip_bad=True)["train"]
    ref = _extract(base / "plain", tmp_path / "ref", splits=("train",))["train"]
    keep = np.array([victim not in s for s in ref.sample_ids])
    assert list(st.sample_ids) == list(ref.sample_ids[keep]) and st.meta["skipped"]["count"] == 1
    # batch composition differs between the killed run (2), the resumed one and the reference (5)
    np.testing.assert_allclose(st.to_array(normalize=False), ref.to_array(normalize=False)[keep], atol=2e-3)


def test_cli_format_and_exit_codes(layouts, tmp_path, capsys):
    from in21k_bench.cli import main

    base, _ = layouts
    common = ["--backbone", "timm:test_vit", "--random-init", "--image-size", "32", "--workers", "0"]
    common += ["--device", "cpu", "--split", "val"]
    with pytest.raises(SystemExit) as e:
        main(
            ["features", "extract", "--images", str(base / "wds-cls"), "--out", str(tmp_path / "a"), "--json"]
            + common
            + ["--format", "webdataset"]
        )
    assert e.value.code == 0 and json.loads(capsys.readouterr().out)["val"]["num_rows"] == 4 * N_VAL
    with pytest.raises(SystemExit) as e:
        main(
            ["features", "extract", "--images", str(base / "hf"), "--out", str(tmp_path / "b"), "--format", "folder"]
            + common
        )
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "expected the folder layout" in err


def test_torchrun_two_ranks_parquet_skip_bad(layouts, tmp_path):
    """Under torchrun each rank encodes its shards of the parquet stream; the store (skips included)
    is the one a single process writes."""
    from in21k_bench.features.store import FeatureStore
    from in21k_bench.runtime.distributed import FAULT_ENV

    base, samples = layouts
    victim = [s for s in samples if s[0] == "train"][7][3]
    hf = tmp_path / "hf"
    _parquet(hf, samples, corrupt=victim)
    cli = str(Path(sys.executable).parent / "in21k-bench")
    args = ["features", "extract", "--images", str(hf), "--split", "train", "--backbone", "timm:test_vit"]
    args += ["--random-init", "--image-size", "32", "--workers", "0", "--batch-size", "3", "--shard-rows", "5"]
    args += ["--device", "cpu", "--skip-bad"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", FAULT_ENV)
    }
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    one = subprocess.run([cli, *args, "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python", cli]
        + args
        + ["--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = FeatureStore.open(tmp_path / "one" / "train", verify=True)
    b = FeatureStore.open(tmp_path / "two" / "train", verify=True)
    assert list(a.sample_ids) == list(b.sample_ids) and a.num_rows == 4 * N_TRAIN - 1
    assert a.meta["skipped"] == b.meta["skipped"] and a.meta["skipped"]["count"] == 1
    np.testing.assert_allclose(a.to_array(normalize=False), b.to_array(normalize=False), atol=2e-3)
