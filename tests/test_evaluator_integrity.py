"""Evaluator identity (issue 20, issue 18): a network is its training fingerprint *and* the sha256 of its
weights; metric results record both, ``stale_evaluators`` flags results computed with other weights;
imports refuse hostile or malformed archives with one clear error each and leave the cache unchanged."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import pickle
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from radiobench import MetricContext, get_preset
from radiobench.checkpoint import save_weights
from radiobench.evaluators import cache as evaluator_cache
from radiobench.evaluators import get_evaluator, import_evaluators, load_entry
from radiobench.evaluators.cache import MAX_FILE_BYTES, evaluator_root, stale_evaluators
from radiobench.interfaces import default_cache_dir
from radiobench.store import sha256_file, stable_hash
from radiobench.types import InputError
from radiobench_plugins.metrics.ramis import RAMIS

torch.set_num_threads(1)
SMOKE = dataclasses.replace(get_preset("smoke"), n_bootstrap=20)


@pytest.fixture(scope="session")
def synth():
    """The context of test_evaluators.py / test_learned_metrics.py: radio_cnn trains once per session."""
    from radiobench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(resolution=32, n_train=256, n_valid=8, n_test=96)
    ctx = MetricContext("synthetic", "synthetic-smoke-test", ds.load("train"), SMOKE, cache_dir=default_cache_dir())
    return ctx, ds


@pytest.fixture
def entry(synth, tmp_path):
    """A private copy of the trained radio_cnn entry (tests tamper with it) and a context on its cache."""
    ctx, _ = synth
    ev = get_evaluator("radio_cnn", ctx)
    cache = tmp_path / "cache"
    shutil.copytree(ev.path, evaluator_root(cache) / ev.path.name)
    return evaluator_root(cache) / ev.path.name, ev, dataclasses.replace(ctx, memo={}, cache_dir=cache)


def files_of(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in path.iterdir()}


def forged(ev, path: Path, tmp: Path, **payload_changes) -> tuple[str, dict[str, bytes]]:
    """A self-consistent entry (fingerprint and weights sha256 recomputed): the entry at ``path`` with other
    weights (one parameter shifted) and the payload changes; its name and files."""
    files = files_of(path)
    meta = json.loads(files["metadata.json"])
    meta["payload"] = {**meta["payload"], **payload_changes}
    meta["fingerprint"] = stable_hash(meta["payload"], 16)
    module = copy.deepcopy(ev.module)
    with torch.no_grad():
        next(module.parameters()).add_(0.5)
    save_weights(tmp, {"module": module})
    weights = (tmp / "weights.safetensors").read_bytes()
    meta["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    return f"radio_cnn-{meta['fingerprint']}", {**files, "weights.safetensors": weights,
                                                   "metadata.json": json.dumps(meta).encode()}


def write_tar(path: Path, members: list[tuple[str, bytes | tarfile.TarInfo]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            if isinstance(data, tarfile.TarInfo):
                data.name = name
                tar.addfile(data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def snapshot(root: Path) -> dict[str, bytes] | None:
    """Every file and directory under ``root`` (None: no root)."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"" for p in root.rglob("*")}


# -- identity in results and staleness -------------------------------------------------------------
def test_results_record_weights_and_stale_evaluators(synth, entry, tmp_path):
    ctx, ds = synth
    path, ev, mine = entry
    test = ds.load("test")
    r = RAMIS().compute(test, ctx.train.subset(range(len(test))), mine)
    fps = r.fingerprints
    assert fps["radio_cnn"] == ev.fingerprint and len(fps["radio_cnn"]) == 16  # the published key, unchanged
    assert fps["radio_cnn_weights"] == sha256_file(path / "weights.safetensors") == ev.weights_sha256
    assert stale_evaluators(fps, mine) == []
    fresh = dataclasses.replace(mine, memo={})  # a new run: hashes the cached file
    assert stale_evaluators(fps, fresh) == []
    assert stale_evaluators({k: v for k, v in fps.items() if k != "radio_cnn_weights"}, fresh) == ["radio_cnn"]
    assert stale_evaluators({**fps, "radio_cnn_weights": "0" * 64}, fresh) == ["radio_cnn"]
    assert stale_evaluators({**fps, "radio_cnn": "0" * 16}, fresh) == ["radio_cnn"]
    assert stale_evaluators({"dataset": "x", "radio_cnn_weights": "y"}, fresh) == []
    other_cache = dataclasses.replace(mine, memo={}, cache_dir=tmp_path / "empty")  # would train afresh
    assert stale_evaluators(fps, other_cache) == ["radio_cnn"]
    # another network under the same fingerprint (metadata.json updated to match): loads, as another identity
    _, files = forged(ev, path, tmp_path)
    for f in ("weights.safetensors", "metadata.json"):
        (path / f).write_bytes(files[f])
    meta = json.loads(files["metadata.json"])
    swapped = dataclasses.replace(mine, memo={})
    assert stale_evaluators(fps, swapped) == ["radio_cnn"]
    assert get_evaluator("radio_cnn", swapped, train=False).identity == {
        "radio_cnn": ev.fingerprint, "radio_cnn_weights": meta["weights_sha256"]}


def test_cache_refuses_replaced_weights(entry, tmp_path):
    path, ev, mine = entry
    _, files = forged(ev, path, tmp_path)
    (path / "weights.safetensors").write_bytes(files["weights.safetensors"])  # metadata.json left as it was
    assert stale_evaluators(ev.identity, mine) == ["radio_cnn"]  # results made with the real weights are redone ...
    with pytest.raises(InputError, match=r"weights\.safetensors: sha256 .* does not match.*delete .* to retrain"):
        get_evaluator("radio_cnn", mine, train=False)  # ... and the replaced weights are refused, not used


# -- archives ------------------------------------------------------------------------------------
def good_members(path: Path) -> list[tuple[str, bytes]]:
    return [(f"{path.name}/{f}", data) for f, data in sorted(files_of(path).items())]


def link(kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo()
    info.type, info.linkname = kind, target
    return info


def hostile_archives(path: Path, ev, tmp_path: Path) -> dict[str, tuple[list, str, str]]:
    """name -> (members, tar mode, what the error must say)."""
    good = good_members(path)  # losses.csv, metadata.json, weights.safetensors
    n, files = path.name, files_of(path)
    meta = json.loads(files["metadata.json"])
    second, second_files = forged(ev, path, tmp_path, seed=1)  # a valid second entry
    pkl = pickle.dumps({"module.weight": bytes(len(files["weights.safetensors"]))})
    pkl_meta = {**meta, "weights_sha256": hashlib.sha256(pkl).hexdigest()}
    pickle_weights = [(f"{n}/metadata.json", json.dumps(pkl_meta).encode()), (f"{n}/weights.safetensors", pkl)]
    wide = dict(meta["payload"], config=dict(meta["payload"]["config"], width=1.0, hidden=512))
    wide_name = f"radio_cnn-{stable_hash(wide, 16)}"
    wide_meta = {**meta, "payload": wide, "fingerprint": stable_hash(wide, 16)}
    no_losses = [m for m in good if "losses" not in m[0]]
    pad = b"0" * (15 << 20)  # under the losses.csv limit; two of them from a small archive are not
    return {
        "not a tar": ([], "raw", "not a tar archive"),
        "truncated": (good, "truncated", "damaged tar archive"),
        "missing weights": (good[:2], "w", "no weights.safetensors"),
        "missing metadata": ([good[0], good[2]], "w", "no metadata.json"),
        "bad json": ([(f"{n}/metadata.json", b"{not json"), good[2]], "w", "metadata.json: not valid JSON"),
        "json not an object": ([(f"{n}/metadata.json", b"[1, 2]"), good[2]], "w", "does not describe"),
        "pickle inside": ([*good, (f"{n}/model.pkl", pkl)], "w:gz", "unexpected member"),
        "pickle as weights": (pickle_weights, "w", "weights do not fit"),
        "forged weights": ([*good[:2], (f"{n}/weights.safetensors", second_files["weights.safetensors"])], "w",
                           "weights.safetensors: sha256 .* does not match"),
        "config wider than weights": ([(f"{wide_name}/metadata.json", json.dumps(wide_meta).encode()),
                                       (f"{wide_name}/weights.safetensors", files["weights.safetensors"])], "w",
                                      "config describes .* bytes"),
        "symlink": ([*good, (f"{n}/losses.csv", link(tarfile.SYMTYPE, "/etc/passwd"))], "w", "is a link"),
        "hard link": ([(f"{n}/losses.csv", link(tarfile.LNKTYPE, f"{n}/metadata.json")), *good[1:]], "w", "is a link"),
        "outside the root": ([(f"../{m}", d) for m, d in good], "w", "unexpected member"),
        "absolute": ([(f"/tmp/{m}", d) for m, d in good], "w", "unexpected member"),
        "duplicate": ([*good, good[0]], "w", "appears twice"),
        "empty": ([], "w", "holds no evaluators"),
        "oversized member": (good, "header",
                             f"declares {300 << 20} bytes.*at most {MAX_FILE_BYTES['weights.safetensors']}"),
        "losses bomb": ([*no_losses, (f"{n}/losses.csv", b"1" * (MAX_FILE_BYTES["losses.csv"] + 1))], "w:gz",
                        "losses.csv' declares"),
        "ratio bomb": ([*no_losses, (f"{n}/losses.csv", pad), *[(f"{second}/{f}", d) for f, d in second_files.items()
                                                              if f != "losses.csv"], (f"{second}/losses.csv", pad)],
                       "w:gz", "unpacks to more than"),
        "partial": ([*good, *[(f"{second}/{f}", d) for f, d in second_files.items() if f != "metadata.json"],
                     (f"{second}/metadata.json", files["metadata.json"])], "w", "directory name does not match"),
    }


def test_hostile_archives_refused_and_cache_unchanged(entry, tmp_path):
    path, ev, _ = entry
    for name, (members, mode, message) in hostile_archives(path, ev, tmp_path).items():
        archive = tmp_path / f"{name.replace(' ', '_')}.tar"
        if mode == "raw":
            archive.write_bytes(b"\x00not a tar archive" * 100)
        elif mode == "truncated":
            archive.write_bytes(write_tar(archive, members).read_bytes()[:-20000])
        elif mode == "header":  # a 300 MB weights file announced, none written: sizes are checked before data is read
            big = tarfile.TarInfo(f"{path.name}/weights.safetensors")
            big.size = 300 << 20
            archive.write_bytes(big.tobuf())
        else:
            write_tar(archive, members, mode)
        for cache in (tmp_path / f"new-{name}", path.parents[1]):  # an empty cache, and one holding the entry
            before = snapshot(cache)
            with pytest.raises(InputError, match=message):
                import_evaluators(archive, cache)
            assert snapshot(cache) == before, name


def test_import_refuses_other_weights_under_a_cached_fingerprint(entry, tmp_path):
    path, ev, mine = entry
    _, files = forged(ev, path, tmp_path)  # the same fingerprint, other weights: as if retrained elsewhere
    archive = write_tar(tmp_path / "retrained.tar",
                        [(f"{path.name}/{f}", files[f]) for f in ("weights.safetensors", "metadata.json")])
    meta = json.loads(files["metadata.json"])
    before = snapshot(path.parents[1])
    with pytest.raises(InputError, match="already holds this evaluator with other weights.*--overwrite"):
        import_evaluators(archive, path.parents[1])
    assert snapshot(path.parents[1]) == before
    assert import_evaluators(write_tar(tmp_path / "same.tar", good_members(path)), path.parents[1]) == [path.name]
    assert import_evaluators(archive, path.parents[1], overwrite=True) == [path.name]
    assert load_entry(path).weights_sha256 == meta["weights_sha256"] != ev.weights_sha256
    assert not list(path.parent.glob(".*"))  # no staging left behind


def test_loaded_weights_are_the_hashed_ones(entry, tmp_path, monkeypatch):
    """Weights swapped in between the sha256 check and the load (a concurrent import --overwrite) are not
    used under the old sha256: the file is read once."""
    path, ev, _ = entry
    _, files = forged(ev, path, tmp_path)
    build = evaluator_cache._build

    def swap_then_build(*args, **kwargs):  # runs after the hash, before the tensors are loaded
        (path / "weights.safetensors").write_bytes(files["weights.safetensors"])
        return build(*args, **kwargs)

    monkeypatch.setattr(evaluator_cache, "_build", swap_then_build)
    loaded = load_entry(path)
    assert sha256_file(path / "weights.safetensors") != ev.weights_sha256  # the swap happened
    assert loaded.weights_sha256 == ev.weights_sha256
    for p, q in zip(loaded.module.state_dict().values(), ev.module.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_long_member_names_refused_before_they_are_read(entry, tmp_path, monkeypatch):
    """tarfile holds a GNU long-name or pax header in memory before the member can be checked: the stream is
    not read past the archive limit, and a long name is refused without being copied into the message."""
    path, _, _ = entry
    monkeypatch.setattr(evaluator_cache, "MAX_UNPACKED_BYTES", 64 << 10)  # read at most 64 KiB, 16 KiB of
    monkeypatch.setattr(evaluator_cache, "MAX_ENTRIES", 4)  # member headers and 20 KiB for the end: 100 KiB
    weights = (path / "weights.safetensors").read_bytes()
    for fmt, n, message in ((tarfile.GNU_FORMAT, 1 << 20, "unpacks to more than 65536 bytes"),
                            (tarfile.PAX_FORMAT, 1 << 20, "unpacks to more than 65536 bytes"),
                            (tarfile.GNU_FORMAT, 2000, r"'a{64}'\.\.\. has a 2000-character name")):
        archive = tmp_path / f"long-{fmt}-{n}.tar.gz"
        with tarfile.open(archive, "w:gz", format=fmt) as tar:
            info = tarfile.TarInfo("a" * n)
            info.size = len(weights)
            tar.addfile(info, io.BytesIO(weights))
        assert archive.stat().st_size < 64 << 10  # the limit is about what it unpacks to
        before = snapshot(path.parents[1])
        with pytest.raises(InputError, match=message) as err:
            import_evaluators(archive, path.parents[1])
        assert len(str(err.value)) < 600
        assert snapshot(path.parents[1]) == before
