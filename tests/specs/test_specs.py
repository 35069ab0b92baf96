"""Experiment specs: every shipped spec validates, errors name the path, round trips are exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.errors import SpecError
from floodlab.specs import (
    ExperimentSpec,
    dump_spec,
    json_schema,
    load_spec,
    spec_hash,
    validate_data,
    with_values,
)

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


def test_experiments_folder_has_every_seed_system():
    names = {p.stem for p in EXPERIMENTS}
    kinds = {load_spec(p).model.kind for p in EXPERIMENTS}
    assert kinds == {"flora", "resunet", "sarkd", "cyclegan", "cloud_unet"}
    assert "quickstart" in names
    bands = {load_spec(p).model.bands for p in EXPERIMENTS if load_spec(p).model.kind == "cyclegan"}
    assert bands == {"rgb", "nir_swir_re", "rgb_nir"}
    sweeps = [load_spec(p) for p in EXPERIMENTS if load_spec(p).tune is not None]
    searched = set().union(*(s.tune.space for s in sweeps))
    assert {"loss.distill.weight", "distill.temperature", "distill.alpha"} <= searched
    assert any(k.startswith("model.fusion.") for k in searched)
    assert any(k.startswith("loss.seg.") for k in searched)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_validates_and_round_trips(path: Path):
    spec = load_spec(path)
    again = validate_data(yaml.safe_load(dump_spec(spec)))
    assert again == spec
    assert spec_hash(again) == spec_hash(spec)


def test_hash_ignores_key_order_and_formatting(tmp_path: Path):
    data = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    reordered = dict(reversed(list(data.items())))
    p = tmp_path / "q.yaml"
    p.write_text(yaml.safe_dump(reordered, default_flow_style=True))
    assert spec_hash(load_spec(p)) == spec_hash(load_spec(ROOT / "experiments" / "quickstart.yaml"))
    changed = load_spec(p, ["loss.seg.dice=0.25"])
    assert spec_hash(changed) != spec_hash(load_spec(p))


def test_overrides_are_typed_by_the_schema():
    spec = load_spec(
        ROOT / "experiments" / "quickstart.yaml",
        [
            "loss.seg.dice=0.5",
            "trainer.use_gpu=false",
            "model.widths=[8, 16, 32]",
            "trainer.epochs=3",
        ],
    )
    assert spec.loss.seg.dice == 0.5
    assert spec.trainer.use_gpu is False
    assert spec.model.widths == [8, 16, 32]
    assert spec.trainer.epochs == 3


def test_family_loss_defaults_fill_unset_weights():
    spec = load_spec(ROOT / "experiments" / "cloud_unet_cloudsen12.yaml")
    assert (spec.loss.seg.focal, spec.loss.seg.dice) == (0.25, 0.75)
    resunet = load_spec(ROOT / "experiments" / "resunet_sen1floods11.yaml")
    assert resunet.loss.seg.focal_tversky == 1.0 and resunet.loss.seg.dice == 0.0


def _problems(tmp_path: Path, text: str) -> list[str]:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(p)
    return info.value.problems


def test_every_problem_is_reported_with_its_dotted_path(tmp_path: Path):
    problems = _problems(
        tmp_path,
        """
name: bad
data: {dataset: sen1floods11, image_bandz: [VV, VH, RATIO]}
model: {kind: resunet, se_reduktion: 4}
loss: {seg: {focal_tversky: -1.0}}
trainer: {epochs: many}
""",
    )
    text = "\n".join(problems)
    assert "bad.yaml: data.image_bandz: unknown key; did you mean 'image_bands'?" in text
    assert "bad.yaml: model.se_reduktion: unknown key; did you mean 'se_reduction'?" in text
    assert "bad.yaml: loss.seg.focal_tversky:" in text and "greater than or equal to 0" in text
    assert "bad.yaml: trainer.epochs:" in text
    assert len(problems) == 5


def test_kd_student_without_teacher_is_refused(tmp_path: Path):
    problems = _problems(
        tmp_path,
        """
name: kd
data: {dataset: sarkd, image_bands: [VV], band_agnostic: true, normalize: sarkd_clip}
model: {kind: sarkd, arch: unet_light}
distill: {temperature: 3.0}
""",
    )
    assert problems == [
        f"{tmp_path / 'bad.yaml'}: distill.teacher: a KD student needs a teacher: set distill.teacher.run "
        "or distill.teacher.checkpoint (or distill.alpha: 0 to train without distillation)"
    ]


def test_multi_objective_asha_must_name_its_pruning_metric():
    spec = load_spec(ROOT / "experiments" / "sweep_flora_pareto.yaml")
    data = json.loads(spec.model_dump_json())
    data["tune"]["scheduler"]["metric"] = None
    with pytest.raises(SpecError) as info:
        validate_data(data)
    assert "tune.scheduler.metric" in info.value.problems[0]


def test_unused_loss_term_and_unknown_space_path_are_refused():
    spec = load_spec(ROOT / "experiments" / "sweep_flora.yaml")
    with pytest.raises(SpecError) as info:
        with_values(spec, {"loss.gan.cycle": 10.0})
    assert "loss.gan.cycle: not used by model kind 'flora'" in info.value.problems[0]
    data = json.loads(spec.model_dump_json())
    data["tune"]["space"]["loss.seg.dicee"] = {"type": "float", "low": 0.0, "high": 1.0}
    with pytest.raises(SpecError) as info:
        validate_data(data)
    assert "did you mean 'loss.seg.dice'?" in info.value.problems[0]


def test_space_bounds_are_checked():
    spec = load_spec(ROOT / "experiments" / "sweep_flora.yaml")
    data = json.loads(spec.model_dump_json())
    data["tune"]["space"]["loss.seg.dice"] = {"type": "float", "low": 2.0, "high": 1.0}
    with pytest.raises(SpecError) as info:
        validate_data(data)
    assert "`low <= high` must hold, but got (low=2.0, high=1.0)" in info.value.problems[0]
    assert "tune.space.loss.seg.dice" in info.value.problems[0]


def test_band_count_must_match_model_inputs():
    spec = load_spec(ROOT / "experiments" / "resunet_sen1floods11.yaml")
    with pytest.raises(SpecError) as info:
        with_values(spec, {"data.image_bands": ["VV", "VH"]})
    assert info.value.problems[0].endswith(
        "data.image_bands: `len(data.image_bands) == model input channels` must hold, but got "
        "(data.image_bands=['VV', 'VH'], model input channels=3)"
    )


def test_cli_validate_success_and_failure(tmp_path: Path):
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(ROOT / "experiments" / "quickstart.yaml")])
    assert ok.exit_code == 0 and "quickstart.yaml: ok (flora on sen1floods11" in ok.output
    bad = tmp_path / "syntax.yaml"
    bad.write_text("name: x\ndata: [\n")
    res = runner.invoke(main, ["validate", str(bad), str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2
    assert "syntax.yaml: line 3, column 1: YAML syntax error" in res.output
    assert "missing.yaml: no such file" in res.output
    assert "Traceback" not in res.output


def test_cli_exit_code_and_no_traceback_in_a_real_process(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {dataset: nope, image_bands: [VV]}\nmodel: {kind: flora}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "floodlab.cli", "validate", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "data.dataset" in proc.stderr and "Traceback" not in proc.stderr


def test_schema_is_json_schema_with_the_model_union(tmp_path: Path):
    schema = json_schema()
    assert schema["title"] == "ExperimentSpec"
    out = tmp_path / "schema.json"
    res = CliRunner().invoke(main, ["schema", "-o", str(out)])
    assert res.exit_code == 0
    written = json.loads(out.read_text())
    assert set(written["properties"]) == set(ExperimentSpec.model_fields)
    assert "discriminator" in json.dumps(written["properties"]["model"])


def test_specs_import_no_torch():
    code = "import sys, floodlab.specs; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_version_and_help_list_verbs():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0 and "validate" in res.output and "schema" in res.output
    assert CliRunner().invoke(main, ["--version"]).output.startswith("floodlab, version")


NOT_UTF8_TEXT = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "binary": bytes(range(256)) * 4,
    "utf16": "name: x\ndata: {dataset: sen1floods11}\n".encode("utf-16"),
}


@pytest.mark.parametrize("kind", sorted(NOT_UTF8_TEXT))
def test_a_spec_that_is_not_utf8_text_is_refused_by_name(tmp_path: Path, kind: str):
    path = tmp_path / f"spec-{kind}.yaml"
    path.write_bytes(NOT_UTF8_TEXT[kind])
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert f"{path}: not a UTF-8 YAML text file" in res.output
    if kind == "utf16":
        assert "re-save it as UTF-8" in res.output


def test_train_refuses_a_png_given_as_its_spec(tmp_path: Path):
    path = tmp_path / "flood.png"
    path.write_bytes(NOT_UTF8_TEXT["png"])
    res = CliRunner().invoke(main, ["train", str(path)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert f"{path}: not a UTF-8 YAML text file (it is a PNG image)" in res.output


@pytest.mark.parametrize(
    ("spec", "override", "path"),
    [
        ("quickstart", "optim.lr=.inf", "optim.lr"),
        ("quickstart", "optim.lr=inf", "optim.lr"),
        ("quickstart", "optim.lr=nan", "optim.lr"),
        ("quickstart", "loss.seg.dice=.nan", "loss.seg.dice"),
        ("quickstart", "trainer.grad_clip=.inf", "trainer.grad_clip"),
        ("quickstart", "trainer.cpus_per_worker=.inf", "trainer.cpus_per_worker"),
        ("quickstart", "optim.betas=[0.9, .nan]", "optim.betas.1"),
        ("sarkd_student_kd", "distill.temperature=.inf", "distill.temperature"),
        ("sweep_flora", "tune.space.loss.seg.dice.high=.inf", "tune.space.loss.seg.dice.high"),
    ],
)
def test_non_finite_numbers_are_refused(spec: str, override: str, path: str):
    source = ROOT / "experiments" / f"{spec}.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(source, [override])
    assert f"{source}: {path}: Input should be a finite number" in "\n".join(info.value.problems)


def test_cli_refuses_an_infinite_learning_rate_in_the_file_and_in_set(tmp_path: Path):
    text = (ROOT / "experiments" / "quickstart.yaml").read_text()
    bad = tmp_path / "inf.yaml"
    bad.write_text(text.replace("lr: 0.003", "lr: .inf"))
    runner = CliRunner()
    for args in (["validate", str(bad)], ["validate", str(ROOT / "experiments" / "quickstart.yaml"),
                                          "--set", "optim.lr=.inf"]):  # fmt: skip
        res = runner.invoke(main, args)
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output
        assert "optim.lr: Input should be a finite number (got inf)" in res.output


def test_duplicate_keys_are_refused_with_their_line(tmp_path: Path):
    problems = _problems(
        tmp_path,
        """name: dup
data: {dataset: sen1floods11, image_bands: [VV, VH]}
model: {kind: resunet}
optim:
  lr: 0.1
  name: adamw
  lr: 0.2
""",
    )
    assert problems == [
        f"{tmp_path / 'bad.yaml'}: line 7: optim.lr: duplicate key 'lr' (first given on line 5); "
        "YAML would silently keep only the last value, so remove one"
    ]
    top = tmp_path / "top.yaml"
    top.write_text("name: a\nmodel: {kind: flora}\nname: b\n")
    res = CliRunner().invoke(main, ["validate", str(top)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"{top}: line 3: name: duplicate key 'name' (first given on line 1)" in res.output


def test_merge_keys_and_anchors_still_load(tmp_path: Path):
    from floodlab.specs.io import read_yaml

    p = tmp_path / "merge.yaml"
    p.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\nsame: *b\n")
    assert read_yaml(p) == {
        "base": {"x": 1, "y": 2},
        "other": {"x": 3, "y": 2},
        "same": {"x": 1, "y": 2},
    }
