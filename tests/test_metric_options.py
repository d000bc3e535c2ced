"""Metric options end to end: declared tables, the CLI, validation before any work, records and custody."""
import json

import numpy as np
import pytest
from test_runner import Blobs, Counting, registered, runner_plugins

from radiobench import InputError, Metric, MetricContext, MetricResult, get_preset
from radiobench.cli import main
from radiobench.evaluators.cache import current_fingerprint, fingerprint_payload
from radiobench.options import EVALUATOR_SEED, Option, Options
from radiobench.registry import registry
from radiobench.runner import RunConfig, run
from radiobench.store import stable_hash


class Scaled(Metric):
    """Test metric: scale × mean pixel of the generated set, with declared options."""

    name = "scaled"
    description = "test metric with options"
    OPTIONS = Options(scale=Option(float, default=1.0, presets={"cpu": 3.0}, low=0.0, low_open=True),
                      label=Option(str, default="a", choices=("a", "b")))
    computed = 0

    def compute(self, real, generated, context):
        type(self).computed += 1
        v = self.options["scale"] * float(np.mean(generated.images))
        return MetricResult(self.name, v, v, v, "lower", len(real), len(generated))


class SeededReferee(Metric):
    """Test metric recording the fingerprint of the classifier its context names (without training it)."""

    name = "seeded_referee"
    description = "test metric with an evaluator seed"
    OPTIONS = Options(evaluator_seed=EVALUATOR_SEED)
    computed = 0

    def compute(self, real, generated, context):
        type(self).computed += 1
        return MetricResult(self.name, 1.0, 0.5, 1.5, "higher", len(real), len(generated),
                            fingerprints={"classifier": current_fingerprint("classifier", context),
                                          "dataset": context.dataset_fingerprint})


@pytest.fixture
def plugins():
    Scaled.computed = SeededReferee.computed = 0
    with runner_plugins(), registered(("metrics", Scaled), ("metrics", SeededReferee)):
        yield


def config(tmp_path, **kw):
    return RunConfig(**{"generators": ["counting"], "dataset": "blobs", "out": tmp_path / "run",
                        "metrics": ["scaled"], "progress": False, **kw})


@pytest.mark.parametrize("options, message", [
    ({"nope": {"x": 1}}, "metrics not evaluated here"),
    ({"scaled": {"nope": 1}}, "has no option"),
    ({"scaled": {"scale": -1.0}}, "'scale' must be a number > 0"),
    ({"scaled": {"scale": "big"}}, "'scale' must be"),
    ({"scaled": {"label": "c"}}, "'label' must be one of 'a', 'b'"),
    ({"crashing": {"x": 1}}, "declares no options"),
    ({"scaled": 3}, "must map metric names"),
])
def test_a_bad_metric_option_is_refused_before_any_work(plugins, tmp_path, options, message):
    metrics = ["scaled", "crashing"]
    with pytest.raises(InputError, match=message):
        run(config(tmp_path, metrics=metrics, metric_options=options))
    assert not (tmp_path / "run").exists() and Counting.fits == 0


@pytest.mark.parametrize("options, message", [
    ({"n_bootstrap": -1}, "'n_bootstrap' must be an integer ≥ 0"),
    ({"against": "test"}, "'against' must be one of 'reference', 'train'"),
    ({"evaluator_seed": 1.5}, "'evaluator_seed' must be an integer"),
    ({"n": 1}, "'n' must be an integer ≥ 2"),
])
def test_fid_byol_options_are_checked(plugins, tmp_path, options, message):
    with pytest.raises(InputError, match=message):
        run(config(tmp_path, metrics=["fid_byol"], metric_options={"fid_byol": options}))
    assert not (tmp_path / "run").exists()


def test_options_resolve_per_preset():
    assert Scaled(preset="smoke").options == {"scale": 1.0, "label": "a"}
    assert Scaled(preset="cpu").options == {"scale": 3.0, "label": "a"}
    assert Scaled(preset="cpu", scale=2).options == {"scale": 2, "label": "a"}
    fid = registry.metric("fid_byol")(preset="cpu", n_bootstrap=1000)
    assert fid.options == {"n": None, "n_bootstrap": 1000, "against": "reference", "evaluator_seed": 0}
    assert fid.against == "reference" and registry.metric("kid_byol")(against="train").against == "train"
    for learned in ("fid_byol", "kid_byol", "ramis", "classifier_accuracy"):  # the referee's seed, each
        assert registry.metric(learned)(preset="cpu", evaluator_seed=2).options["evaluator_seed"] == 2


def test_a_changed_option_is_reevaluated_the_same_reused(plugins, tmp_path):
    cfg = config(tmp_path)
    run(cfg)
    assert Scaled.computed == 2  # the reference row and the generator's row
    path = tmp_path / "run" / "counting" / "seed-0" / "metrics" / "scaled.json"
    first = json.loads(path.read_text())
    assert first["options"] == {"scale": 1.0, "label": "a"}
    summary = run(cfg)
    assert Scaled.computed == 2 and "counting/seed-0:scaled" in summary.reused
    summary = run(config(tmp_path, metric_options={"scaled": {"scale": 2.0}}))
    assert Scaled.computed == 4 and "counting/seed-0:scaled" in summary.done
    second = json.loads(path.read_text())
    assert second["options"] == {"scale": 2.0, "label": "a"}
    assert second["result"]["value"] == pytest.approx(2 * first["result"]["value"])
    assert Counting.fits == 1  # only the metric is redone
    summary = run(config(tmp_path, metric_options={"scaled": {"scale": 2}}))  # 2 and 2.0: the same value
    assert Scaled.computed == 4 and "counting/seed-0:scaled" in summary.reused


def test_a_record_written_before_options_reads_as_the_defaults(plugins, tmp_path):
    cfg = config(tmp_path)
    run(cfg)
    path = tmp_path / "run" / "counting" / "seed-0" / "metrics" / "scaled.json"
    record = json.loads(path.read_text())
    del record["options"]
    path.write_text(json.dumps(record))
    assert "counting/seed-0:scaled" in run(cfg).reused and Scaled.computed == 2
    summary = run(config(tmp_path, metric_options={"scaled": {"label": "b"}}))
    assert "counting/seed-0:scaled" in summary.done


def test_the_evaluator_seed_picks_the_evaluator_and_custody_follows_it(plugins, tmp_path):
    cfg = config(tmp_path, metrics=["seeded_referee"], metric_options={"seeded_referee": {"evaluator_seed": 1}})
    run(cfg)
    path = tmp_path / "run" / "counting" / "seed-0" / "metrics" / "seeded_referee.json"
    recorded = json.loads(path.read_text())["result"]["fingerprints"]["classifier"]
    ctx = MetricContext("blobs", "fp", Blobs().load("train"), get_preset("smoke"))
    assert stable_hash(fingerprint_payload("classifier", ctx, seed=1), 16) != current_fingerprint("classifier", ctx)
    summary = run(cfg)  # the stored fingerprint is seed 1's, which this metric's context names: reused
    assert SeededReferee.computed == 2 and "counting/seed-0:seeded_referee" in summary.reused
    summary = run(config(tmp_path, metrics=["seeded_referee"]))  # seed 0: other options, another evaluator
    assert SeededReferee.computed == 4 and "counting/seed-0:seeded_referee" in summary.done
    assert json.loads(path.read_text())["result"]["fingerprints"]["classifier"] != recorded


def test_in_context_shares_the_memo():
    ctx = MetricContext("blobs", "fp", None, get_preset("smoke"))  # type: ignore[arg-type]
    metric = SeededReferee(evaluator_seed=3)
    inner = metric.in_context(ctx)
    assert inner.evaluator_seed == 3 and ctx.evaluator_seed == 0 and inner.memo is ctx.memo
    assert SeededReferee().in_context(ctx) is ctx


def test_the_cli_passes_metric_options_and_n_generated(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cfg):
        seen["cfg"] = cfg
        raise InputError("stop here")

    monkeypatch.setattr("radiobench.runner.run", fake_run)
    code = main(["run", "--generators", "replay", "--dataset", "first", "--out", str(tmp_path / "r"),
                 "--n-generated", "2000", "--metric-option", "fid_byol.against=train",
                 "--metric-option", "fid_byol.n_bootstrap=1000", "--metric-option", "kid_byol.against=train"])
    assert code == 2
    cfg = seen["cfg"]
    assert cfg.n_generated == 2000
    assert cfg.metric_options == {"fid_byol": {"against": "train", "n_bootstrap": 1000},
                                  "kid_byol": {"against": "train"}}


@pytest.mark.parametrize("args", [["--metric-option", "fid_byol=3"], ["--metric-option", "against"],
                                  ["--n-generated", "1"]])
def test_the_cli_refuses_malformed_metric_options(args, tmp_path, capsys):
    argv = ["run", "--generators", "replay", "--dataset", "first", "--out", str(tmp_path / "r"), *args]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusal (a bad --n-generated)
        code = exit_.code
    assert code == 2 and not (tmp_path / "r").exists()
    assert "metric" in capsys.readouterr().err or "--n-generated" in " ".join(args)
