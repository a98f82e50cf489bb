"""``python -m lib.features``: a run's test features exported to an .npz and scored back to the run's metrics; any
toolbox's features scored on answers known by hand; bad files refused with the file, key, expected and found; our
evaluator against torchreid's on the same file (skipped with a reason where torchreid is not installed)."""

from __future__ import annotations

import importlib
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.features import FeatureFile, FeatureFileError, evaluate_features, export_run
from lib.features.__main__ import main
from lib.metrics import DISTANCES, distance_matrix

# ------------------------------------------------------------------------------------------------ a known answer
# Two queries (camera 0) and five gallery images on a line, squared euclidean distance:
#   gallery x:   a=0.1 (pid 0, cam 1)  b=0.2 (pid 1, cam 1)  c=0.3 (pid 0, cam 2)  d=5.0 (pid 1, cam 2)
#                e=0.05 (pid 0, cam 0: the same identity under q0's own camera — junk for q0)
#   q0 (pid 0) at 0.0:  e junk, then a ✓ b ✗ c ✓ d ✗  → first match rank 1, AP = (1/1 + 2/3) / 2
#   q1 (pid 1) at 0.31: c ✗ b ✓ a ✗ e ✗ d ✓         → first match rank 2, AP = (1/2 + 2/5) / 2
KNOWN = dict(qf=np.array([[0.0], [0.31]], np.float32), gf=np.array([[0.1], [0.2], [0.3], [5.0], [0.05]], np.float32),
             q_pids=np.array([0, 1]), g_pids=np.array([0, 1, 0, 1, 0]), q_camids=np.array([0, 0]),
             g_camids=np.array([1, 1, 2, 2, 0]))
KNOWN_MAP = ((1 + 2 / 3) / 2 + (1 / 2 + 2 / 5) / 2) / 2


def _known(**kw) -> FeatureFile:
    return FeatureFile(**(KNOWN | {"metric": {"distance": "euclidean"}} | kw))


def test_evaluate_gives_the_answer_known_by_hand(tmp_path):
    f = _known().save(tmp_path / "known.npz")
    r = evaluate_features(FeatureFile.load(f))
    assert r["rank1"] == 0.5 and r["rank5"] == 1.0 and r["cmc"] == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert r["mAP"] == pytest.approx(KNOWN_MAP) and r["num_query"] == 2 and r["num_gallery"] == 5
    assert r["protocol"] == {"name": "multi_shot"} and r["metric"] == {"distance": "euclidean"}
    # the file's distance is the one used: cosine on 1-D positive features ties everything (0 distance), and the
    # ties go by gallery index: q0 → a ✓ first, q1 → a ✗ b ✓: another answer than euclidean's
    cos = evaluate_features(FeatureFile.load(f), metric={"distance": "cosine"})
    assert cos["cmc"][:2] == [0.5, 1.0] and cos["mAP"] != pytest.approx(KNOWN_MAP)
    # the junk is removed: without camera labels (every gallery image another camera) e becomes q0's first match
    nojunk = evaluate_features(_known(q_camids=np.array([9, 9])))
    assert nojunk["mAP"] != pytest.approx(KNOWN_MAP)


def test_single_shot_of_one_image_per_identity_is_the_multi_shot_answer():
    ff = _known(gf=KNOWN["gf"][2:4], g_pids=np.array([0, 1]), g_camids=np.array([2, 2]))  # c, d only
    multi = evaluate_features(ff)
    single = evaluate_features(ff, protocol={"name": "single_shot", "num_repeats": 3, "seed": 5})
    assert multi["cmc"] == single["cmc"] == [0.5, 1.0] and multi["mAP"] == single["mAP"] == pytest.approx(0.75)
    assert single["protocol"] == {"name": "single_shot", "num_repeats": 3, "seed": 5}


def test_cosine_normalises_the_rows_unless_told_they_are():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(7, 6)).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    d = distance_matrix(3 * q, 0.5 * g, {"distance": "cosine"})
    assert d == pytest.approx(distance_matrix(unit(q), unit(g), {"distance": "cosine", "normalize": False}), abs=1e-6)
    assert d == pytest.approx(1 - unit(q) @ unit(g).T, abs=1e-6)
    e = distance_matrix(q, g, {"distance": "euclidean"})
    assert e == pytest.approx(((q[:, None] - g[None]) ** 2).sum(-1), rel=1e-5, abs=1e-5)
    with pytest.raises(ValueError, match=r"'cosine' has no parameter 'p' \(it takes: normalize\)"):
        distance_matrix(q, g, {"distance": "cosine", "p": 2})
    with pytest.raises(ValueError, match="unknown distance 'hamming'; registered: cosine, euclidean, ftwa"):
        distance_matrix(q, g, {"distance": "hamming"})
    with pytest.raises(ValueError, match="'ftwa' needs the parameter 'match'"):
        distance_matrix(q, g, {"distance": "ftwa"})
    with pytest.raises(ValueError, match="normalize: expected true or false, found 'yes'"):
        distance_matrix(q, g, {"distance": "cosine", "normalize": "yes"})


def test_ftwa_packed_rows_give_every_matching_s_distance():
    from lib.methods.ftwa.matching import MATCHES, match_distance, pack_features

    gen = torch.Generator().manual_seed(0)
    unit = lambda n: torch.nn.functional.normalize(torch.randn(n, 5, generator=gen), dim=1)  # noqa: E731
    logw = lambda n: 3 * torch.randn(n, generator=gen)  # noqa: E731
    q = {"lr": unit(3), "hr_p": unit(3), "lw_lr": logw(3), "lw_hr_p": logw(3)}
    g = {"hr": unit(4), "lr_p": unit(4), "lw_hr": logw(4), "lw_lr_p": logw(4)}
    qf, gf = pack_features(q, "query"), pack_features(g, "gallery")
    assert qf.shape == (3, 12) and gf.shape == (4, 12) and qf.dtype == np.float32
    for m in MATCHES:
        want = match_distance(q, g, m, 0.1)
        got = distance_matrix(qf, gf, {"distance": "ftwa", "match": m, "weight_floor": 0.1})
        assert np.array_equal(got, want), m  # bit for bit
    with pytest.raises(ValueError, match=r"2C \+ 2 columns"):
        distance_matrix(qf[:, :5], gf[:, :5], {"distance": "ftwa", "match": "swa"})


def test_a_file_written_with_numpy_alone_is_read(tmp_path):
    """What a torchreid / fast-reid user writes: the six required arrays, nothing else."""
    rng = np.random.default_rng(1)
    path = tmp_path / "theirs.npz"
    np.savez(path, qf=rng.normal(size=(6, 16)), gf=rng.normal(size=(20, 16)), q_pids=np.arange(6, dtype=np.int32),
             g_pids=np.repeat(np.arange(10), 2), q_camids=np.zeros(6, np.int64), g_camids=np.tile([1, 2], 10),
             extra=np.ones(3))
    ff = FeatureFile.load(path)
    assert ff.metric == {"distance": "cosine"} and ff.protocol == {"name": "multi_shot"} and ff.ignored == ("extra",)
    assert ff.q_pids.dtype == np.int64 and ff.qf.dtype == np.float64
    r = evaluate_features(ff)
    want = distance_matrix(ff.qf, ff.gf, {"distance": "cosine"})
    from lib.metrics import evaluate_ranking

    assert r["mAP"] == pytest.approx(evaluate_ranking(want, ff.q_pids, ff.g_pids, ff.q_camids, ff.g_camids)["mAP"])


def test_evaluate_cli_prints_and_writes_json(tmp_path, capsys):
    f = _known().save(tmp_path / "known.npz")
    out = tmp_path / "m" / "metrics.json"
    assert main(["evaluate", str(f), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 queries × 5 gallery images" in text and "Rank-1 50.0 %" in text and "distance euclidean" in text
    rec = json.loads(out.read_text())
    assert rec["rank1"] == 0.5 and rec["mAP"] == pytest.approx(KNOWN_MAP) and rec["file"] == str(f)
    # command-line replacements of the file's distance and protocol
    assert main(["evaluate", str(f), "--distance", "cosine", "--protocol", "single_shot", "--num-repeats", "2",
                 "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["metric"] == {"distance": "cosine"} and rec["protocol"] == {"name": "single_shot", "num_repeats": 2,
                                                                          "seed": 0}


# ------------------------------------------------------------------------------------------------ bad files
def _write(path: Path, **over) -> Path:
    arrays = {k: v for k, v in (_known().arrays() | over).items() if v is not None}
    np.savez(path, **arrays)
    return path


class _RunsCode:
    """Unpickling it would create a marker file: loading a feature file must never do that."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


BAD = [
    ({"g_camids": None}, "missing key 'g_camids' (required: qf, gf, q_pids, g_pids, q_camids, g_camids; found:"),
    ({"qf": np.array([0.0, 0.31], np.float32)}, "key 'qf': expected a non-empty 2-D float16/32/64 array (num_query, D), found "
                                               "dtype float32 shape (2,)"),
    ({"gf": np.ones((5, 1), np.int64)}, "key 'gf': expected a non-empty 2-D float16/32/64 array (num_gallery, D), found dtype "
                                       "int64"),
    ({"gf": np.ones((5, 1), np.longdouble)}, "key 'gf': expected a non-empty 2-D float16/32/64 array (num_gallery, D), "
                                            "found dtype float128"),
    ({"gf": np.ones((5, 3), np.float32)}, "key 'gf': expected 1 columns (the feature dimension of 'qf'), found shape "
                                         "(5, 3)"),
    ({"q_pids": np.array([0, 1, 2])}, "key 'q_pids': expected shape (2,) to match the rows of 'qf', found shape (3,)"),
    ({"g_camids": np.array([1.5, 1, 2, 2, 0])}, "key 'g_camids': expected integer labels, found dtype float64"),
    ({"g_pids": np.array(["a", "b", "a", "b", "a"])}, "key 'g_pids': expected integer labels, found dtype <U1"),
    ({"qf": np.array([[0.0], [np.nan]], np.float32)}, "key 'qf': expected finite features, found NaN or inf in row 1"),
    ({"q_paths": np.array(["a.png"])}, "key 'q_paths': expected a string array of shape (2,) (one per row of 'qf'), "
                                       "found dtype <U5 shape (1,)"),
    ({"metric": np.array("{distance: cosine}")}, "key 'metric': not JSON"),
    ({"protocol": np.array('["multi_shot"]')}, "key 'protocol': expected a JSON object, found list"),
    ({"metric": np.array(3.0)}, "key 'metric': expected a 0-d string holding a JSON object"),
    ({"format": np.array("lib.features/0")}, "key 'format': expected 'lib.features/1'"),
]


@pytest.mark.parametrize("over,message", BAD, ids=[b[1].split(":")[0][:30] for b in BAD])
def test_bad_files_name_the_key_what_was_expected_and_found(tmp_path, capsys, over, message):
    f = _write(tmp_path / "bad.npz", **over)
    with pytest.raises(FeatureFileError) as e:
        FeatureFile.load(f)
    assert str(e.value).startswith(f"{f}: ") and message in str(e.value)
    assert main(["evaluate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("metric,protocol,message", [
    ({"distance": "hamming"}, None, "unknown distance 'hamming'; registered: cosine, euclidean, ftwa"),
    ({"distance": "cosine", "squared": True}, None, "distance 'cosine' has no parameter 'squared'"),
    (None, {"name": "cuhk03"}, "protocol: expected the name 'multi_shot' or 'single_shot', found {'name': 'cuhk03'}"),
    (None, {"name": "multi_shot", "num_repeats": 3}, "protocol 'multi_shot' has no parameter 'num_repeats'"),
    (None, {"name": "single_shot", "num_repeats": 0}, "num_repeats: expected a positive integer, found 0"),
])
def test_bad_metric_or_protocol_is_named(tmp_path, metric, protocol, message):
    over = {"metric": np.array(json.dumps(metric))} if metric else {"protocol": np.array(json.dumps(protocol))}
    f = _write(tmp_path / "bad.npz", **over)
    with pytest.raises(FeatureFileError, match=None) as e:
        evaluate_features(FeatureFile.load(f), where=str(f))
    assert str(e.value).startswith(str(f)) and message in str(e.value)


def test_no_query_with_a_match_is_named(tmp_path):
    f = _write(tmp_path / "nomatch.npz", q_pids=np.array([7, 8]))
    with pytest.raises(FeatureFileError, match="nomatch.npz: evaluate_ranking: no query has a valid match"):
        evaluate_features(FeatureFile.load(f), where=str(f))


def test_a_file_that_would_run_code_is_refused_unrun(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    _RunsCode.marker = marker
    evil = np.empty(1, dtype=object)
    evil[0] = _RunsCode()
    f = _write(tmp_path / "evil.npz", qf=evil)  # np.savez pickles the object array
    with pytest.raises(FeatureFileError, match=r"evil.npz: key 'qf' holds Python objects .* never loaded"):
        FeatureFile.load(f)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(FeatureFileError, match="pickled.npz: not a feature file .*found another format"):
        FeatureFile.load(pickled)
    text = tmp_path / "scores.json"
    text.write_text('{"rank1": 0.5}')  # numpy would read it as a pickle and say so
    with pytest.raises(FeatureFileError, match=r"scores.json: not a feature file \(expected a numpy .npz archive .*"
                                               r"found a JSON file, starting b'\{\"rank1"):
        FeatureFile.load(text)
    assert not marker.exists()
    one = tmp_path / "one.npz"
    with open(one, "wb") as fh:
        np.save(fh, np.ones((2, 3)))
    with pytest.raises(FeatureFileError, match=r"one.npz: a single .npy array of shape \(2, 3\)"):
        FeatureFile.load(one)
    assert main(["evaluate", str(tmp_path / "absent.npz")]) == 2
    assert "absent.npz: no such file" in capsys.readouterr().err


def test_export_cli_checks_its_out_before_any_work(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path), "--out", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'f.csv'}: expected a file name ending in .npz" in err
    (tmp_path / "file").write_text("")
    assert main(["export", "--run", str(tmp_path), "--out", str(tmp_path / "file" / "f.npz")]) == 2
    assert "cannot write to the folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ torchreid
def _torchreid_rank():
    """torchreid's ``metrics.rank`` module (deep-person-reid from source: ``torchreid.metrics``; the PyPI package
    0.2.5: ``torchreid.reid.metrics``), or a skip saying why."""
    errors = []
    for name in ("torchreid.metrics.rank", "torchreid.reid.metrics.rank"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Cython evaluation … unavailable": its Python evaluator is used
                return importlib.import_module(name)
        except ImportError as e:
            errors.append(f"{name}: {e}")
    pytest.skip("torchreid is not installed (not a dependency of lib; `pip install --no-deps torchreid==0.2.5` plus "
                f"its imports opencv-python-headless gdown tensorboard to run this cross-check): {'; '.join(errors)}")


def _index_tie_break(d: np.ndarray) -> np.ndarray:
    """``d`` (float64) plus ``eps · gallery index``, ``eps`` below half the smallest gap between distinct distances
    of a row over the gallery size: every order of distinct distances kept, every exact tie broken by gallery index
    — the rule of our evaluator — so that an evaluator that sorts unstably (torchreid's ``np.argsort``) sees it."""
    d = d.astype(np.float64)
    srt = np.sort(d, axis=1)
    gaps = np.diff(srt, axis=1)
    gap = gaps[gaps > 0].min() if (gaps > 0).any() else 1.0
    return d + (gap / (2 * d.shape[1])) * np.arange(d.shape[1])[None, :]


def _torchreid_agrees(ff: FeatureFile) -> dict:
    """torchreid's Market-1501 evaluation (``eval_market1501``: a query's same-pid same-camid gallery images removed)
    and ours under the same protocol (``multi_shot``) on the same distance matrix, its exact ties broken by gallery
    index as ours breaks them: the same CMC and mAP."""
    rank = _torchreid_rank()
    d = distance_matrix(ff.qf, ff.gf, ff.metric)
    ours = evaluate_features(ff, protocol={"name": "multi_shot"})
    d_t = _index_tie_break(d)
    from lib.metrics import evaluate_ranking

    same = evaluate_ranking(d_t, ff.q_pids, ff.g_pids, ff.q_camids, ff.g_camids, max_rank=len(ours["cmc"]))
    assert same["cmc"] == pytest.approx(ours["cmc"]) and same["mAP"] == pytest.approx(ours["mAP"])  # ours: unchanged
    cmc, m_ap = rank.evaluate_rank(d_t, ff.q_pids, ff.g_pids, ff.q_camids, ff.g_camids, max_rank=len(ours["cmc"]),
                                   use_metric_cuhk03=False, use_cython=False)
    assert ours["cmc"] == pytest.approx(np.asarray(cmc, np.float64), abs=1e-6)
    assert ours["mAP"] == pytest.approx(float(m_ap), abs=1e-9)
    return ours


def test_torchreid_and_ours_agree_on_a_file(tmp_path):
    rng = np.random.default_rng(3)
    pids = np.repeat(np.arange(15), 4)
    cams = np.tile(np.arange(4), 15)
    feats = rng.normal(size=(60, 32)).astype(np.float32) + 0.8 * rng.normal(size=(15, 32)).astype(np.float32)[pids]
    q = np.arange(60) % 4 == 0  # one query per identity (camera 0); the gallery keeps its same-camera images: junk
    # and five distractors that duplicate gallery images: exact ties (an unstable sort may order them either way)
    gf, g_pids, g_cams = np.concatenate([feats, feats[1:20:4]]), np.r_[pids, 100 + np.arange(5)], np.r_[cams, [1] * 5]
    f = FeatureFile(qf=feats[q], gf=gf, q_pids=pids[q], g_pids=g_pids, q_camids=cams[q], g_camids=g_cams).save(
        tmp_path / "f.npz")
    ours = _torchreid_agrees(FeatureFile.load(f))
    assert 0 < ours["rank1"] < 1  # neither trivial nor hopeless: the comparison means something


# ------------------------------------------------------------------------------------------------ trained runs (slow)
def _variant(profile: Path, method: str, variant: str = "default") -> Path:
    return profile / "runs" / method / "synthetic" / "variants" / variant


@pytest.mark.parametrize("method,where,output,key", [
    ("pshrnet", "", None, "lr"),  # the variant folder with --split: its main output, the student with G
    ("pshrnet", "split0/phase1", "teacher_hr", "hr"),  # HR queries: the HR originals
    ("pshrnet", "split0/baseline", "baseline", "lr"),  # bicubic up-sampling
    ("ftwa", "", None, "lr"),  # LR stream + T, its weighted distance
])
def test_an_exported_run_scores_its_recorded_metrics(trained_profile, tmp_path, capsys, method, where, output, key):
    from lib.inference import QuerySource, load_run
    from lib.models import ReIDEmbedder

    profile, ds = trained_profile
    f = tmp_path / "feats.npz"
    argv = ["export", "--run", str(_variant(profile, method) / where), "--split", "0", "--out", str(f)]
    assert main(argv + (["--output", output] if output else [])) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    with np.load(f, allow_pickle=False) as z:  # plain arrays only
        assert {"qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids", "q_paths", "g_paths", "metric", "protocol",
                "run"} <= set(z.files)
    ff = FeatureFile.load(f)
    info = ff.run
    stage = load_run(info["run_dir"])
    rec = stage.metrics[key]
    r = evaluate_features(ff)
    assert r["rank1"] == pytest.approx(rec["rank1"]) and r["mAP"] == pytest.approx(rec["mAP"], abs=1e-6)
    assert r["cmc"] == pytest.approx(rec["cmc"], abs=1e-6) and r["mINP"] == pytest.approx(rec["mINP"], abs=1e-6)
    assert info["recorded"]["rank1"] == rec["rank1"] and info["identity"] == stage.identity and info["queries"] == key
    assert "note:" not in printed and "the run recorded" in printed
    sp = ds.split(0)
    assert ff.q_pids.tolist() == [im.pid for im in sp.query] and ff.num_gallery == len(sp.gallery)
    want_q = [str(im.hr_path if key == "hr" else im.path) for im in sp.query]
    assert ff.q_paths.tolist() == want_q and ff.g_paths.tolist() == [str(im.hr_path) for im in sp.gallery]
    m = stage.matcher(info["output"])
    if method == "ftwa":
        assert ff.metric == {"distance": "ftwa", "match": m.match, "weight_floor": m.weight_floor}
    else:
        assert ff.metric == {"distance": "cosine", "normalize": False}
        if output is None:  # the student's queries pass through G: not the features of the plain student
            plain = ReIDEmbedder(stage.modules["student"], feature=stage.cfg.test.feature)
            assert not np.allclose(m._features(plain, sp.query, use="stored", interpolation=m.interpolation), ff.qf)
    # the same features under the single-shot protocol: what the run's own test gives on a single-shot dataset
    proto = {"name": "single_shot", "num_repeats": 4, "seed": 7}
    single = evaluate_features(ff, protocol=proto)
    want = m.evaluate(sp, protocol="single_shot", num_repeats=4, seed=7,
                      source=QuerySource(1) if key == "hr" else QuerySource())
    assert single["rank1"] == pytest.approx(want["rank1"]) and single["mAP"] == pytest.approx(want["mAP"], abs=1e-6)
    # and `evaluate` on the command line says the same as the record
    assert main(["evaluate", str(f)]) == 0
    out = capsys.readouterr().out
    assert f"Rank-1 {100 * rec['rank1']:.1f} %" in out.splitlines()[1] and "the run recorded" in out


def test_export_refuses_another_split_and_a_variant_folder_without_one(trained_profile, tmp_path, capsys):
    profile, _ = trained_profile
    run = _variant(profile, "pshrnet")
    f = str(tmp_path / "f.npz")
    assert main(["export", "--run", str(run / "split0"), "--split", "1", "--out", f]) == 2
    err = capsys.readouterr().err
    assert "--split 1: the run" in err and "trained and tested on split 0" in err
    assert main(["export", "--run", str(run), "--out", f]) == 2
    assert "a variant folder holding split0; pass --split K" in capsys.readouterr().err
    assert main(["export", "--run", str(run), "--split", "3", "--out", f]) == 2
    assert "it has no split3" in capsys.readouterr().err
    assert not Path(f).exists()


def test_torchreid_and_ours_agree_on_an_exported_file(trained_profile, tmp_path):
    profile, _ = trained_profile
    ff = export_run(_variant(profile, "pshrnet"), split=0, progress=False)
    _torchreid_agrees(ff)
    ff = export_run(_variant(profile, "ftwa"), split=0, progress=False)  # FTWA's own distance, the same evaluators
    _torchreid_agrees(ff)
