"""Loss weights: explicit beats merged, term lists derived from the fields, family declarations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from floodlab.errors import SpecError
from floodlab.specs import ExperimentSpec, dump_spec, load_spec, validate_data
from floodlab.specs.loss import (
    LOSS_SECTIONS,
    TERM_PATHS,
    WEIGHT_FIELDS,
    FamilyLoss,
    SegLossSpec,
    active_weights,
    resolve_loss,
)
from floodlab.specs.model import MODEL_KINDS, family_spec

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"

RESUNET: dict[str, Any] = {
    "name": "r",
    "data": {"dataset": "sen1floods11", "image_bands": ["VV", "RATIO", "MAGNITUDE"]},
    "model": {"kind": "resunet"},
}
FLORA: dict[str, Any] = {
    "name": "f",
    "data": {
        "dataset": "sen1floods11",
        "image_bands": ["VV", "VH"],
        "optical_bands": ["B4", "B3", "B2", "NDVI"],
        "target_bands": ["B4", "B3", "B2"],
    },
    "model": {"kind": "flora"},
}
CYCLEGAN: dict[str, Any] = {
    "name": "c",
    "data": {
        "dataset": "sen12ms",
        "image_bands": ["VV", "VH"],
        "target_bands": ["B4", "B3", "B2"],
        "label": "none",
    },
    "model": {"kind": "cyclegan"},
}


def spec(base: dict[str, Any], **loss: Any) -> ExperimentSpec:
    return validate_data({**base, "loss": loss})


def problem(base: dict[str, Any], **loss: Any) -> str:
    with pytest.raises(SpecError) as info:
        spec(base, **loss)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_naming_a_term_replaces_the_family_defaults_of_that_section() -> None:
    # ResUNet's default is focal_tversky: 1; naming dice alone trains dice alone.
    s = spec(RESUNET, seg={"dice": 1.0})
    assert active_weights(s.loss.seg) == {"dice": 1.0}
    assert spec(RESUNET).loss.seg.focal_tversky == 1.0


def test_a_section_left_out_keeps_the_family_defaults() -> None:
    s = spec(FLORA, seg={"dice": 2.0})
    assert active_weights(s.loss.seg) == {"dice": 2.0}
    assert active_weights(s.loss.rec) == {"charbonnier": 0.8, "ssim": 0.15, "fft": 0.1, "edge": 0.2}
    assert active_weights(s.loss.distill) == {"weight": 0.03}


def test_parameters_do_not_count_as_naming_a_term() -> None:
    s = spec(RESUNET, seg={"tversky_alpha": 0.4, "tversky_gamma": 1.0})
    assert active_weights(s.loss.seg) == {"focal_tversky": 1.0}
    assert (s.loss.seg.tversky_alpha, s.loss.seg.tversky_gamma) == (0.4, 1.0)


def test_a_default_term_is_dropped_by_not_naming_it() -> None:
    # FLoRA without the boundary term: name the two terms it keeps.
    s = spec(FLORA, seg={"dice": 1.0, "bce": 1.0})
    assert active_weights(s.loss.seg) == {"dice": 1.0, "bce": 1.0}


def test_the_resolved_spec_resolves_to_itself() -> None:
    import yaml

    s = spec(FLORA, seg={"dice": 1.0}, rec={"ssim": 1.0})
    assert validate_data(yaml.safe_load(dump_spec(s))) == s


def test_an_all_zero_section_states_the_rule_and_the_defaults() -> None:
    msg = problem(RESUNET, seg={"focal_tversky": 0.0, "dice": 0.0})
    assert msg.endswith(
        "loss.seg: no term of loss.seg has a weight > 0; naming a term in a section replaces "
        "the family's defaults for that section (explicit beats merged): the family's "
        "defaults are loss.seg: {'focal_tversky': 1.0}"
    )
    msg = problem(CYCLEGAN, gan={"identity": 0.0})
    assert "loss.gan: no term of loss.gan has a weight > 0" in msg
    assert "loss.gan: {'adversarial': 1.0, 'cycle': 10.0}" in msg


def test_flora_needs_a_segmentation_or_pixel_reconstruction_term() -> None:
    # Either section alone is enough (reconstruction only is a valid FLoRA run) ...
    assert not active_weights(spec(FLORA, seg={"dice": 0.0}).loss.seg)
    # ... but not neither; the adversarial term alone does not count.
    msg = problem(
        {**FLORA, "model": {"kind": "flora", "discriminator": True}},
        seg={"dice": 0.0},
        rec={"adversarial": 0.1},
    )
    assert "loss: no term of loss.seg or loss.rec has a weight > 0" in msg
    assert "explicit beats merged" in msg
    msg = problem(FLORA, rec={"ssim": 0.0}, decouple="pcgrad")
    assert "loss.decouple: pcgrad" in msg and "explicit beats merged" in msg


def test_set_edits_the_spec_as_the_file_resolves_it() -> None:
    # quickstart.yaml leaves loss.seg to FLoRA's defaults: --set changes one weight.
    s = load_spec(QUICKSTART, ["loss.seg.dice=0.5"])
    assert active_weights(s.loss.seg) == {"dice": 0.5, "bce": 0.2, "boundary": 0.05}
    # Setting a whole section names exactly its weights.
    s = load_spec(QUICKSTART, ["loss.seg={dice: 0.5}"])
    assert active_weights(s.loss.seg) == {"dice": 0.5}
    # A parameter override keeps the defaults too.
    s = load_spec(QUICKSTART, ["loss.seg.tversky_alpha=0.4"])
    assert active_weights(s.loss.seg) == {"dice": 1.0, "bce": 0.2, "boundary": 0.05}


def test_set_uses_the_defaults_of_the_family_the_overrides_leave(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(
        "name: s\ndata: {dataset: sen1floods11, image_bands: [VV, RATIO, MAGNITUDE]}\n"
        "model: {kind: cloud_unet}\n"
    )
    s = load_spec(p, ["model.kind=resunet", "loss.seg.dice=0.5"])
    assert active_weights(s.loss.seg) == {"focal_tversky": 1.0, "dice": 0.5}


def test_term_lists_come_from_the_weight_fields() -> None:
    seg = WEIGHT_FIELDS["seg"]
    assert seg[:7] == (
        "dice",
        "dice_image",
        "lovasz",
        "bce",
        "boundary",
        "focal_tversky",
        "focal",
    )  # declaration order
    params = {"tversky_alpha", "tversky_beta", "tversky_gamma", "focal_gamma", "focal_alpha"}
    assert params <= set(SegLossSpec.model_fields) and not params & set(seg)
    assert set(WEIGHT_FIELDS) == {"seg", "rec", "distill", "gan"}
    assert "rec.charbonnier" in TERM_PATHS and "rec.charbonnier_eps" not in TERM_PATHS


def test_every_weight_defaults_to_zero() -> None:
    # "The others are 0" in explicit-beats-merged is each weight field's own default.
    for section, cls in LOSS_SECTIONS.items():
        for name in WEIGHT_FIELDS[section]:
            assert cls.model_fields[name].default == 0.0, f"loss.{section}.{name}"


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_family_declares_terms_defaults_and_check(kind: str) -> None:
    cls = family_spec(kind)
    losses = cls.losses
    assert losses.terms and losses.terms <= set(TERM_PATHS)
    assert losses.defaults, f"{kind} declares no default loss weights"
    for section, values in losses.defaults.items():
        assert {f"{section}.{name}" for name in values} <= losses.terms
    assert callable(cls.check)


def test_family_declarations_are_checked_when_written() -> None:
    with pytest.raises(ValueError, match=r"no loss section or term 'seg\.dise'"):
        FamilyLoss(reads=("seg.dise",))
    with pytest.raises(ValueError, match=r"\['rec.ssim'\] are not among the terms read"):
        FamilyLoss(reads=("seg",), defaults={"rec": {"ssim": 1.0}})


def test_unknown_family_kind_lists_the_available_ones() -> None:
    with pytest.raises(KeyError, match=r"Unknown model 'x'; available: \['cloud_unet', 'cyclegan'"):
        family_spec("x")


def test_resolve_loss_leaves_its_input_alone() -> None:
    raw = {"seg": {"tversky_alpha": 0.4}}
    out = resolve_loss(raw, family_spec("resunet").losses)
    assert raw == {"seg": {"tversky_alpha": 0.4}}
    assert out == {"seg": {"focal_tversky": 1.0, "tversky_alpha": 0.4}}
