"""Zero-shot classification modes, ECE, and the ``relabel`` / ``zeroshot`` CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from in21k_bench.errors import In21kError
from in21k_bench.zeroshot.classify import candidate_groups, expected_calibration_error, score_modes
from test_hzr import (
    GRASSHOPPER,
    KATYDID,
    LOCUST,
    MIGRATORY,
    SAND_CRICKET,
    SHORT_HORNED,
    make_root,
    taxonomy,
)


def test_ece_by_hand():
    ece, bins = expected_calibration_error(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 0, 1, 1]))
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    assert bins["count"][14] == 2 and bins["count"][8] == 2 and sum(bins["count"]) == 4
    assert bins["accuracy"][14] == 0.5 and bins["confidence"][8] == pytest.approx(0.55)
    assert bins["accuracy"][0] is None and len(bins["edges"]) == 16
    ece1, b1 = expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1]))  # 1.0 lands in the last bin
    assert ece1 == 0 and b1["count"][14] == 2


def test_candidate_sets_on_the_real_tree():
    tax = taxonomy()
    universe = np.array([GRASSHOPPER, SHORT_HORNED, LOCUST, MIGRATORY, KATYDID, SAND_CRICKET, 0, 1])
    true = np.array([KATYDID, LOCUST, GRASSHOPPER, MIGRATORY])
    # all
    [(rows, cands, fb)] = candidate_groups(tax, universe, true, "all")
    assert rows.tolist() == [0, 1, 2, 3] and cands.tolist() == sorted(universe.tolist()) and not fb
    # level: same hierarchy level as the true class, within the universe
    got = {tuple(r.tolist()): c.tolist() for r, c, _ in candidate_groups(tax, universe, true, "level")}
    for r, c in got.items():
        lv = {int(tax.level[true[i]]) for i in r}
        assert len(lv) == 1
        (level,) = lv
        assert c == sorted(u for u in universe.tolist() if tax.level[u] == level)
    assert sorted(i for r in got for i in r) == [0, 1, 2, 3]
    # siblings: katydid competes with short-horned and sand cricket; locust (an only child) and
    # migratory locust (an only child) fall back to their level; grasshopper's siblings are not in the universe
    groups = candidate_groups(tax, universe, true, "siblings")
    by_row = {int(i): (c.tolist(), fb) for r, c, fb in groups for i in r}
    assert by_row[0] == ([SHORT_HORNED, KATYDID, SAND_CRICKET], False)
    for i in (1, 2, 3):
        cands, fb = by_row[i]
        assert fb and cands == sorted(u for u in universe.tolist() if tax.level[u] == tax.level[true[i]])
    with pytest.raises(In21kError, match="inside the candidate universe"):
        candidate_groups(tax, np.array([KATYDID]), np.array([LOCUST]), "all")
    with pytest.raises(In21kError, match="expected a mode"):
        candidate_groups(tax, universe, true, "cousins")


def test_score_modes_softmax_and_ties():
    tax = taxonomy()
    universe = np.array([GRASSHOPPER, SHORT_HORNED, KATYDID, SAND_CRICKET])
    text = np.eye(4, dtype=np.float32)  # class at universe position j = basis vector j
    pos = np.full(tax.num_classes, -1)
    pos[universe] = np.arange(4)
    x = np.array([[0, 0, 1, 0], [0, 0.6, 0.8, 0], [0.5, 0.5, 0.5, 0.5]], dtype=np.float32)
    true = np.array([KATYDID, KATYDID, SAND_CRICKET])
    out = score_modes(x, true, text, pos, tax, universe, ["all", "siblings"], logit_scale=10.0)
    a = out["all"]
    assert a["pred"].tolist() == [KATYDID, KATYDID, GRASSHOPPER]  # full tie -> lowest class index
    z = 10 * x[1]
    np.testing.assert_allclose(a["confidence"][1], np.exp(z).max() / np.exp(z).sum())
    np.testing.assert_allclose(a["confidence"][2], 0.25)
    s = out["siblings"]  # candidates: short-horned, katydid, sand cricket
    assert s["pred"].tolist() == [KATYDID, KATYDID, SHORT_HORNED]
    np.testing.assert_allclose(s["confidence"][2], 1 / 3)
    z = 10 * x[0, 1:]
    np.testing.assert_allclose(s["confidence"][0], np.exp(z).max() / np.exp(z).sum())
    assert not s["fallback"].any()


def _runner_env(monkeypatch):
    import in21k_bench.registry.taxonomy as taxmod

    monkeypatch.setattr(taxmod, "load_taxonomy", lambda *a, **k: taxonomy())


def test_zeroshot_end_to_end_with_tiny_model(tmp_path):
    from in21k_bench.zeroshot.classify import zeroshot
    from in21k_bench.zeroshot.clip import TEST_ARCH

    root = make_root(tmp_path / "root", per_class=2)
    res = zeroshot(
        root,
        tmp_path / "zs",
        model=TEST_ARCH,
        pretrained=None,
        device="cpu",
        classes="present",
        cache_dir=tmp_path / "cache",
        taxonomy=taxonomy(),
        num_workers=0,
        chunk_rows=3,
        lemma_choice="vote",
    )
    preds = pd.read_parquet(tmp_path / "zs" / "predictions.parquet")
    assert len(preds) == res["num_samples"] == 8 and res["num_candidates_all"] == 4
    for m in ("all", "level", "siblings"):
        r = res["modes"][m]
        acc = (preds[f"pred_{m}"] == preds["true_wnid"]).mean()
        assert r["accuracy"] == pytest.approx(acc)
        assert r["mean_confidence"] == pytest.approx(preds[f"confidence_{m}"].mean())
        assert 0 <= r["ece"] <= 1 and sum(r["reliability"]["count"]) == 8
        assert (tmp_path / "zs" / f"reliability-{m}.png").stat().st_size > 1000
    # siblings among present classes: katydid vs short-horned; grasshopper and locust fall back
    assert res["modes"]["siblings"]["num_fallback"] == 4
    assert (
        json.loads((tmp_path / "zs" / "results.json").read_text())["modes"]["all"]["accuracy"]
        == res["modes"]["all"]["accuracy"]
    )


def _main(argv) -> int:
    from in21k_bench.cli import main

    try:
        main(argv)
    except SystemExit as e:  # typer's standalone mode exits, also on success
        return int(e.code or 0)
    return 0


def test_cli_relabel_and_zeroshot(tmp_path, monkeypatch, capsys):
    _runner_env(monkeypatch)
    root = make_root(tmp_path / "root", per_class=1)
    out = tmp_path / "p.parquet"
    assert (
        _main(
            [
                "relabel",
                "--mode",
                "p-hzr",
                "--root",
                str(root),
                "--model",
                "in21k-test-tiny",
                "--out",
                str(out),
                "--device",
                "cpu",
                "--num-workers",
                "0",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["mode"] == "p-hzr" and info["num_samples"] == 8 and "random" in captured.err
    assert out.is_file() and (tmp_path / "p.summary.json").is_file()

    assert (
        _main(
            [
                "zeroshot",
                "--root",
                str(root),
                "--model",
                "in21k-test-tiny",
                "--out",
                str(tmp_path / "zs"),
                "--classes",
                "present",
                "--modes",
                "all,siblings",
                "--device",
                "cpu",
                "--num-workers",
                "0",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "siblings" in text and "level" not in text.split("results:")[0]

    assert (
        _main(
            [
                "relabel",
                "--mode",
                "x-hzr",
                "--root",
                str(root),
                "--model",
                "in21k-test-tiny",
                "--out",
                str(tmp_path / "q.parquet"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "expected --mode in leaf-hzr, p-hzr" in err and "Traceback" not in err
    assert (
        _main(
            [
                "relabel",
                "--mode",
                "p-hzr",
                "--root",
                str(tmp_path / "nowhere"),
                "--model",
                "in21k-test-tiny",
                "--out",
                str(tmp_path / "q.parquet"),
            ]
        )
        == 2
    )
    assert "found no train/ folder" in capsys.readouterr().err
