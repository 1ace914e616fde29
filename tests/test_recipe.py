"""Budget-aware defaults (methods/recipe.py), health diagnostics (methods/health.py) and the library
entry point fit_features (methods/fit.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from in21k_bench.errors import InvalidInputError
from in21k_bench.methods import recipe as R
from in21k_bench.methods.head_training import paper_defaults
from in21k_bench.methods.health import cluster_usage, health_report, loss_tail_ratio


def _bench(name="imagenet-1k", family="imagenet-1k", num_train=1_281_167, num_classes=1000):
    return SimpleNamespace(name=name, family=family, num_train=num_train, num_classes=num_classes)


@pytest.mark.parametrize("method", ["temi", "scanv2"])
def test_paper_benchmarks_at_full_size_keep_the_paper_settings(method):
    for bench, epochs in ((_bench(), 50), (_bench("in21k", "full", 11_060_223, 10450), 25)):
        r = R.default_config(method, bench.num_train, bench.num_classes, benchmark=bench)
        assert r.regime == "paper" and r.min_steps == 0
        p = paper_defaults(method, bench.name, bench.num_classes)
        assert r.config.to_dict() == p.to_dict()
        assert (r.config.epochs, r.config.batch_size, r.config.num_heads, r.config.knn) == (
            epochs,
            512 if method == "temi" else 4096,
            32,
            50,
        )
        assert r.config.base_lr == 1e-4 and r.config.lr_schedule == "cosine" and r.config.freeze_last_layer_epochs == 0
        s = r.settings()
        assert s["regime"] == "paper" and all(v["source"] == "paper" for k, v in s["effective"].items())


@pytest.mark.parametrize("n,c", [(1442, 10), (10_000, 10), (6038, 155), (50_000, 1000), (300, 3)])
@pytest.mark.parametrize("method", ["temi", "scanv2"])
def test_adapted_defaults_guarantee_steps_and_a_batch_that_fits(method, n, c):
    r = R.default_config(method, n, c)
    cfg = r.config
    assert r.regime == "adapted"
    assert cfg.batch_size <= max(n // (R.MIN_STEPS_PER_EPOCH if method == "temi" else 8), min(R.MIN_BATCH, n))
    assert cfg.batch_size <= (512 if method == "temi" else 4096)
    steps = (n // cfg.batch_size) * cfg.epochs
    assert steps >= R.MIN_STEPS or cfg.epochs == R.MAX_EPOCHS
    assert cfg.epochs >= 25  # never fewer than the paper's epochs
    assert cfg.lr == pytest.approx(R.ADAPTED_PEAK_LR)
    assert cfg.lr_schedule == R.ADAPTED_SCHEDULE and cfg.freeze_last_layer_epochs == R.ADAPTED_FREEZE_EPOCHS
    assert R.K_MIN <= cfg.knn <= 50
    s = r.settings()
    assert s["min_steps"] == R.MIN_STEPS and "batch" in s["rule"]
    assert s["effective"]["lr_schedule"]["source"] == "adapted"


def test_scaled_benchmark_store_is_adapted_and_options_override():
    bench = _bench("tiny", "frequency", 1_177_333, 1060)
    r = R.default_config("temi", 23_000, 1060, benchmark=bench)
    assert r.regime == "adapted" and "2.0% of benchmark tiny" in r.reason
    # an explicit batch keeps the step guarantee through the epochs, and the peak lr
    r2 = R.default_config("temi", 10_000, 10, overrides={"batch_size": 500, "num_heads": 3, "knn": None})
    assert r2.config.batch_size == 500 and r2.sources["batch_size"] == "option"
    assert r2.config.epochs * 20 >= R.MIN_STEPS and r2.sources["epochs"] == "adapted"
    assert r2.config.lr == pytest.approx(R.ADAPTED_PEAK_LR) and r2.config.num_heads == 3
    r3 = R.default_config("scanv2", 10_000, 10, overrides={"epochs": 3, "base_lr": 2e-4, "lr_schedule": "cosine"})
    assert (r3.config.epochs, r3.config.base_lr, r3.config.lr_schedule) == (3, 2e-4, "cosine")
    assert r3.settings()["effective"]["epochs"]["source"] == "option"
    # even a full-size paper run takes options
    r4 = R.default_config("temi", bench.num_train, 1060, benchmark=bench, overrides={"epochs": 2})
    assert r4.regime == "paper" and r4.config.epochs == 2
    with pytest.raises(InvalidInputError, match="TrainConfig fields"):
        R.default_config("temi", 1000, 10, overrides={"nonsense": 1})
    with pytest.raises(InvalidInputError, match="lr_schedule"):
        R.default_config("temi", 1000, 10, overrides={"lr_schedule": "linear"})


def test_cluster_usage_and_health_warnings():
    u = cluster_usage([5, 5, 0, 0])
    assert u["empty_clusters"] == 2 and u["used_clusters"] == 2
    assert u["marginal_entropy"] == pytest.approx(np.log(2)) and u["marginal_entropy_fraction"] == pytest.approx(0.5)
    assert cluster_usage([3, 3, 3])["marginal_entropy_fraction"] == pytest.approx(1.0)
    flat = list(np.exp(-np.arange(20) / 2.0))  # converged early: no warning
    steep = list(1.0 - np.arange(20) / 20.0)  # still falling linearly
    assert loss_tail_ratio(flat) < 0.05 < loss_tail_ratio(steep)
    assert loss_tail_ratio([1.0, 2.0] * 10) is None  # rising loss: no verdict
    sizes = np.array([[10, 10, 10, 10, 10, 10, 10, 10, 10, 10], [100, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    ok = health_report(sizes, 0, flat, 5000, min_steps=2000)
    assert ok["warnings"] == [] and ok["chosen_head"]["empty_clusters"] == 0 and len(ok["heads"]) == 2
    bad = health_report(sizes, 1, steep, 5000, min_steps=2000, method="scanv2")
    assert len(bad["warnings"]) == 2
    assert bad["warnings"][0].startswith("collapse") and "--batch-size" in bad["warnings"][0]
    assert bad["warnings"][1].startswith("under-trained") and "--epochs" in bad["warnings"][1]
    short = health_report(sizes, 0, flat, 100, min_steps=2000)
    assert "only 100 optimizer steps" in short["warnings"][0]


def test_fit_json_records_settings_and_health_and_warns(tmp_path, capsys):
    from in21k_bench.features.digits import write_digits
    from in21k_bench.methods.fit import fit_features

    write_digits(tmp_path / "feats")
    run = fit_features(
        "temi",
        tmp_path / "feats",
        tmp_path / "run",
        num_clusters=10,
        device="cpu",
        progress=False,
        epochs=2,
        num_heads=2,
        knn=5,
    )
    err = capsys.readouterr().err
    assert "adapted" in err and "under-trained: only" in err  # 2 epochs < the step budget
    rec = json.loads((tmp_path / "run" / "fit.json").read_text())
    assert rec["settings"]["regime"] == "adapted"
    assert rec["settings"]["effective"]["batch_size"] == {"value": 64, "source": "adapted"}
    assert rec["settings"]["effective"]["epochs"] == {"value": 2, "source": "option"}
    h = rec["health"]
    assert len(h["heads"]) == 2 and sum(h["chosen_head"]["cluster_sizes"]) == 355
    assert h["chosen_head"]["head"] == rec["best_head"] == run.result.best_head
    assert 0 <= h["chosen_head"]["marginal_entropy_fraction"] <= 1 and len(h["loss_curve"]) == 20
    assert rec["total_steps"] == 2 * (1442 // 64) and h["warnings"]
    assert (tmp_path / "feats" / "train" / "knn-k5.npy").is_file()
    # a larger neighbour file is reused by the convention (first k columns)
    run2 = fit_features(
        "scanv2",
        tmp_path / "feats",
        tmp_path / "run2",
        num_clusters=10,
        device="cpu",
        progress=False,
        epochs=1,
        num_heads=2,
        knn=3,
    )
    assert run2.neighbors.name == "knn-k5.npy" and run2.summary()["knn"] == 3


def test_freeze_last_layer_and_raw_inputs_and_constant_lr():
    import torch

    from in21k_bench.methods.head_training import TrainConfig, fit, lr_at

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 8)) * 50).astype(np.float32)
    nbrs = np.stack([np.roll(np.arange(64), -i)[1:5] for i in range(64)])
    cfg = TrainConfig(
        method="temi",
        num_clusters=3,
        num_heads=2,
        epochs=2,
        batch_size=16,
        knn=4,
        hidden_dim=16,
        bottleneck_dim=8,
        freeze_last_layer_epochs=2,
        base_lr=1e-2,
    )
    torch.manual_seed(0)
    from in21k_bench.methods.heads import BatchedHeads

    init = BatchedHeads(8, 3, 2, 16, 8, generator=torch.Generator().manual_seed(0))
    seen = {}

    def grab(epoch, rec):
        seen[epoch] = rec

    res = fit(x, nbrs, cfg, progress=False, device="cpu", on_epoch_end=grab)
    assert res.top1.shape == (64,)
    # constant schedule: after the warm-up the lr stays at the peak
    c = TrainConfig(epochs=10, batch_size=256, base_lr=1e-3, lr_schedule="constant", warmup_epochs=1)
    assert [lr_at(s, 4, c) for s in (4, 20, 39)] == [pytest.approx(1e-3)] * 3
    s = TrainConfig(epochs=10, batch_size=512, base_lr=1e-3, min_lr=1e-6, scale_min_lr=True, warmup_epochs=1)
    assert lr_at(39, 4, s) == pytest.approx(2e-6)
    # raw inputs: predictions differ from L2-normalised ones on un-normalised features
    raw = fit(x, nbrs, TrainConfig(**{**cfg.to_dict(), "input_norm": "raw"}), progress=False, device="cpu")
    assert not np.allclose(raw.probs, res.probs)
    assert init.v.shape == (2, 8, 3)


def test_cli_fit_lists_only_given_options_as_option_sources(tmp_path, capsys):
    from conftest import run_cli
    from in21k_bench.features.digits import write_digits

    write_digits(tmp_path / "feats")
    argv = ["fit", "temi", "--features", str(tmp_path / "feats"), "--num-clusters", "10", "--epochs", "1"]
    argv += ["--heads", "1", "--k", "5", "--no-progress"]
    code, _, err = run_cli(argv + ["--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    eff = json.loads((tmp_path / "a" / "fit.json").read_text())["settings"]["effective"]
    assert eff["seed"]["source"] != "option" and eff["seed"]["value"] == 0  # not given: the default
    assert eff["num_heads"] == {"value": 1, "source": "option"}
    code, _, err = run_cli(argv + ["--seed", "3", "--out", str(tmp_path / "b")], capsys)
    assert code == 0, err
    eff = json.loads((tmp_path / "b" / "fit.json").read_text())["settings"]["effective"]
    assert eff["seed"] == {"value": 3, "source": "option"}
