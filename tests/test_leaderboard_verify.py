"""A verified leaderboard entry must carry prediction files that `leaderboard check` re-scores:
committed beside the entry, or remote (URL / hf:// path with sha256) and fetched by `check --fetch`
(from the local test hub server). Without them it is refused, or downgraded to 'unchecked'."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli
from in21k_bench import leaderboard as lb
from in21k_bench.fileio import sha256_file
from test_hub import hub_env  # noqa: F401 -- the local hub server fixture
from test_leaderboard import fake_eval, fake_evaluate, runs  # noqa: F401 -- fixtures


def _seeded(tmp_path):
    """A leaderboard folder with one reported entry (the seeds are covered elsewhere; this keeps tests fast)."""
    root = tmp_path / "lb"
    seed = next(s for s in lb.paper_seed_submissions() if s.benchmark == "tiny" and s.method == "TEMI")
    lb.write_submission(seed, root)
    return root


def test_submit_copy_predictions_is_rescored_anywhere(fake_eval, runs, tmp_path, monkeypatch, capsys):
    root = _seeded(tmp_path)
    code, out, err = run_cli(
        ["submit", *map(str, runs), "-b", "tiny", "-m", "Mine", "--root", str(root), "--copy-predictions", "--json"],
        capsys,
    )
    assert code == 0, err
    rec = json.loads(out)
    side = root / "submissions" / "tiny" / "mine-unspecified"
    assert rec["predictions"] == [f"mine-unspecified/run-{i}.npy" for i in (1, 2, 3)]
    assert [sha256_file(side / f"run-{i}.npy") for i in (1, 2, 3)] == rec["predictions_sha256"]
    for p in runs:  # the originals are gone: only the committed copies can be re-scored
        p.unlink()
    monkeypatch.chdir(tmp_path.parent)
    lb.build(root)
    code, out, err = run_cli(["leaderboard", "check", "--root", str(root)], capsys)
    assert code == 0, err
    assert "re-scored 1 of 1 verified entries (3 runs)" in out
    report = lb.run_checks(root)
    assert report.ok and (report.verified, report.rescored, report.rescored_runs) == (1, 1, 3)


def test_submit_outside_the_repository_warns(fake_eval, runs, tmp_path, capsys):
    root = _seeded(tmp_path / "repo")
    code, _, err = run_cli(["submit", *map(str, runs), "-b", "tiny", "-m", "Mine", "--root", str(root)], capsys)
    assert code == 0 and "outside" in err and "--copy-predictions" in err


def _hand_edited(root, runs, **over):
    """A verified entry written by hand (metrics copied from a real submit) without its prediction files."""
    sub = lb.make_submission(
        [fake_evaluate(p, "tiny", "v1") for p in runs], method="Hand", predictions=[f"hand/{p.name}" for p in runs]
    )
    d = dict(sub.to_json_dict(), slug="hand-unspecified", **over)
    path = root / "submissions" / "tiny" / "hand-unspecified.json"
    path.write_text(json.dumps(d))
    return path


def test_verified_entry_without_predictions_is_refused_then_downgraded(fake_eval, runs, tmp_path, capsys):
    root = _seeded(tmp_path)
    path = _hand_edited(root, runs)  # locations recorded, files absent
    lb.build(root)
    code, out, err = run_cli(["leaderboard", "check", "--root", str(root)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert (
        "verified entry: expected a prediction file per run that check can re-score" in err
        and "run 1 (hand/run0.npy)" in err
    )
    assert "re-scored 0 of 1 verified entries" in out
    # no locations at all: the schema refuses it
    d = json.loads(path.read_text())
    d["predictions"] = []
    path.write_text(json.dumps(d))
    code, _, err = run_cli(["leaderboard", "check", "--root", str(root)], capsys)
    assert code == 2 and "expected one prediction file location per run" in err
    # explicit downgrade: status unchecked, shown apart
    code, out, err = run_cli(["leaderboard", "check", "--root", str(root), "--downgrade", "--no-rendered"], capsys)
    assert code == 0, err
    assert "downgraded to unchecked" in err and "re-scored 0 of 0 verified entries" in out
    assert json.loads(path.read_text())["status"] == "unchecked"
    lb.build(root)
    assert lb.check_leaderboard(root) == []
    readme = (root / "README.md").read_text()
    tiny = readme.split("## tiny (v1)")[1].split("\n## ")[0]
    assert "### Unchecked" in tiny and "| Hand |" in tiny.split("### Unchecked")[1].split("###")[0]
    page_entry = [e for e in lb.page_data(lb.load_submissions(root))["entries"] if e["method"] == "Hand"]
    assert [e["status"] for e in page_entry] == ["unchecked"]
    html = (root / "site" / "index.html").read_text()
    assert ".badge.unchecked" in html and "tr.unchecked td" in html


def test_downgrade_keeps_entries_with_predictions(fake_eval, runs, tmp_path):
    root = _seeded(tmp_path)
    lb.submit(runs, benchmark="tiny", method="Kept", root=root, copy_predictions=True)
    assert lb.downgrade_unverifiable(root) == []
    assert lb.load_submission(root / "submissions/tiny/kept-unspecified.json").status == "verified"


def _remote_entry(root, runs, locations):
    sub = lb.make_submission([fake_evaluate(p, "tiny", "v1") for p in runs], method="Remote", predictions=locations)
    path = root / "submissions" / "tiny" / f"{sub.slug}.json"
    path.write_text(json.dumps(sub.to_json_dict()))
    return path


@pytest.mark.parametrize("kind", ["hf", "url"])
def test_check_fetch_rescores_remote_predictions(fake_eval, runs, hub_env, tmp_path, capsys, kind):
    folder = tmp_path / "preds"
    folder.mkdir()
    for p in runs:
        shutil.copy(p, folder / p.name)
    hub_env.add_commit("org/preds", folder, tags=["r1"], repo_type="dataset")
    if kind == "hf":
        locations = [f"hf://datasets/org/preds@r1/{p.name}" for p in runs]
    else:
        locations = [f"{hub_env.url}/datasets/org/preds/resolve/r1/{p.name}" for p in runs]
    root = _seeded(tmp_path)
    path = _remote_entry(root, runs, locations)
    for p in runs:
        p.unlink()
    lb.build(root)
    # without --fetch: accepted, nothing re-scored, said so
    code, out, err = run_cli(["leaderboard", "check", "--root", str(root)], capsys)
    assert code == 0, err
    assert "re-scored 0 of 1 verified entries (0 runs); 1 with remote predictions not fetched (run with --fetch)" in out
    # with --fetch: downloaded, sha256-checked, re-scored
    code, out, err = run_cli(["leaderboard", "check", "--root", str(root), "--fetch"], capsys)
    assert code == 0, err
    assert "re-scored 1 of 1 verified entries (3 runs)" in out
    # a tampered per-run metric is caught only by the re-scoring
    d = json.loads(path.read_text())
    d["metrics"]["acc"] = lb.MetricStat.from_runs([0.01, *d["metrics"]["acc"]["runs"][1:]]).model_dump()
    path.write_text(json.dumps(d))
    assert lb.check_leaderboard(root, check_rendered=False) == []
    problems = lb.check_leaderboard(root, check_rendered=False, fetch=True)
    assert len(problems) == 1 and "run 1 metric acc expected" in problems[0]


def test_check_fetch_refuses_bytes_that_differ_from_the_recorded_sha256(fake_eval, runs, hub_env, tmp_path):
    folder = tmp_path / "preds"
    folder.mkdir()
    for p in runs:
        shutil.copy(p, folder / p.name)
    np.save(folder / runs[1].name, np.zeros(100, dtype=np.int64))  # the published run 2 is not the scored one
    hub_env.add_commit("org/preds", folder, tags=["r1"], repo_type="dataset")
    root = _seeded(tmp_path)
    _remote_entry(root, runs, [f"hf://datasets/org/preds@r1/{p.name}" for p in runs])
    problems = lb.check_leaderboard(root, check_rendered=False, fetch=True)
    assert len(problems) == 1 and "run 2 fetch hf://datasets/org/preds@r1/run1.npy: expected sha256" in problems[0]
    # a location the server does not have
    d = json.loads((root / "submissions/tiny/remote-unspecified.json").read_text())
    d["predictions"][0] = "hf://datasets/org/preds@r1/missing.npy"
    (root / "submissions/tiny/remote-unspecified.json").write_text(json.dumps(d))
    problems = lb.check_leaderboard(root, check_rendered=False, fetch=True)
    assert any(
        "run 1 fetch hf://datasets/org/preds@r1/missing.npy: expected to download it from the hub" in p
        for p in problems
    )


def test_v2_entries_are_submitted_and_checked(fake_eval, runs, tmp_path, capsys):
    """The paper's coarse seeds point at v2; a verified v2 entry sits beside them and is re-scored."""
    root = tmp_path / "lb"
    seeds = [s for s in lb.paper_seed_submissions() if s.benchmark == "coarse-d4"]
    assert {s.benchmark_version for s in seeds} == {"v2"}
    for s in seeds:
        lb.write_submission(s, root)
    sub, _ = lb.submit(runs, benchmark="coarse-d4", version="v2", method="Mine", root=root, copy_predictions=True)
    assert sub.benchmark_version == "v2"
    lb.build(root)
    code, out, err = run_cli(["leaderboard", "check", "--root", str(root)], capsys)
    assert code == 0, err
    assert "re-scored 1 of 1 verified entries (3 runs)" in out
    readme = (root / "README.md").read_text()
    section = readme.split("## coarse-d4 (v2)")[1].split("\n## ")[0]
    assert "### Verified" in section and "### Reported" in section and "Mine" in section


def test_copy_predictions_refuses_oversized_files(fake_eval, runs, tmp_path, capsys, monkeypatch):
    from in21k_bench.leaderboard import submitter

    monkeypatch.setattr(submitter, "MAX_PREDICTION_BYTES", 10)
    root = _seeded(tmp_path)
    code, _, err = run_cli(
        ["submit", *map(str, runs), "-b", "tiny", "-m", "Big", "--root", str(root), "--copy-predictions"], capsys
    )
    assert code == 2 and "expected prediction files of at most 10 bytes" in err and err.count("\n") == 1
    assert not (root / "submissions" / "tiny" / "big-unspecified.json").exists()
    assert not (root / "submissions" / "tiny" / "big-unspecified").exists()
