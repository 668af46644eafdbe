"""``attnlab bench profile``: the default run's step split into phases that sum to the step, bf16 against fp32 from
the same weights and batch, the estimate built from the plan, and the video default profiled without another run."""

import json

import pytest

from attnlab.bench import profile


def _table_rows(text: str, task: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in ``text`` (the phase table) whose task is ``task``."""
    lines = text[text.index("\n| task |") + 1 :].split("\n\n")[0].splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[1:]]
    return [r for r in rows if r.get("task") == task]


def test_text_profile_phases_sum_to_the_step_and_bf16_stays_close(tmp_path, capsys, monkeypatch):
    from attnlab.tasks.text.task import Text

    monkeypatch.setattr(Text, "eval_batch_size", 16)  # a cheaper evaluation batch (the estimate counts more of them)
    out = tmp_path / "profile.json"
    argv = ["--tasks", "text", "--steps", "1", "--warmup", "0", "--val-batches", "1", "--top", "2", "--json", str(out)]
    assert profile.main(argv) == 0
    printed = capsys.readouterr().out
    rows = _table_rows(printed, "text")
    assert [r["precision"] for r in rows] == ["fp32", "bf16"]
    for r in rows:
        phases = sum(float(r[p]) for p in profile.PHASES)
        assert phases == pytest.approx(float(r["step"]), abs=0.05 * len(profile.PHASES) + 0.1)
    assert rows[0]["bf16 speed-up"] == "" and rows[1]["bf16 speed-up"].endswith("×")
    assert float(rows[1]["bf16 loss rel. diff"]) < 0.05  # same weights, batch and dropout masks
    assert "text, bf16: top ops of one forward + backward" in printed

    doc = json.loads(out.read_text())
    assert "avx512f" in doc["cpu"]["flags"] and doc["cpu"]["threads"] >= 1
    task = doc["tasks"]["text"]
    plan = task["plan"]
    for r in task["precisions"].values():
        assert sum(r["ms"].values()) == pytest.approx(r["step_ms"], rel=1e-6)
        ops = r["top_ops"]["ops"]
        assert len(ops) == 2 and 0 < ops[1]["share"] <= ops[0]["share"] <= 1
        est = r["estimate_s"]
        assert est["train"] == pytest.approx(plan["epochs"] * plan["steps_per_epoch"] * r["step_ms"] / 1e3)
        assert est["total"] == pytest.approx(est["build"] + est["train"] + est["val"] + est["test"])


def test_video_default_is_the_default_frame_resnet_from_scratch():
    config, note = profile.default_config("video")
    image, _ = profile.default_config("classify")
    assert config.options.backbone is None and "--backbone none" in note
    assert (config.options.frame_model, config.options.attention) == (image.options.model, image.options.attention)


def test_unknown_task_or_precision_is_refused(capsys):
    for argv in (["--tasks", "nope"], ["--precision", "fp16"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            profile.main(argv)
    assert "--tasks" in capsys.readouterr().err
