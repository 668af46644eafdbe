"""The text encoder pretrained as a masked language model (task ``text_mlm``) and the text task starting from it
(``--backbone``): BERT's hiding by its shares, the hidden positions' logits, the texts both runs hold out, the
weights that load, and the runs that do not fit refused by name."""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from sentiment import write_sentiment

from attnlab.cli import main
from attnlab.models.text_ensemble import members_of
from attnlab.models.text_mlm import IGNORE, MaskedLanguageModel
from attnlab.tasks.text import task as text_task
from attnlab.tasks.text.pretrain import MaskedTexts, TextMLM, collate_masked, hide_tokens
from attnlab.tasks.text.tokens import PAD, UNK


def test_hiding_follows_berts_shares():
    ids = torch.randint(2, 50, (200_000,), generator=torch.Generator().manual_seed(0))
    inputs, targets = hide_tokens(ids, 0.15, 50, torch.Generator().manual_seed(1))
    chosen = targets != IGNORE
    assert chosen.float().mean().item() == pytest.approx(0.15, abs=0.005)
    assert torch.equal(targets[chosen], ids[chosen])  # the targets are the hidden tokens themselves
    assert torch.equal(inputs[~chosen], ids[~chosen])  # the others untouched
    unknown = (inputs[chosen] == UNK).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()  # 10 % stay, plus random draws that hit the token
    assert unknown == pytest.approx(0.8, abs=0.01) and kept == pytest.approx(0.1 + 0.1 / 48, abs=0.01)
    assert not (inputs == PAD).any()
    one, t = hide_tokens(torch.tensor([7, 8]), 1e-9, 50, torch.Generator().manual_seed(0))
    assert (t != IGNORE).sum() == 1  # at least one token of every text is hidden: no text without a target


def test_evaluation_texts_are_hidden_by_a_fixed_draw_and_batches_padded():
    texts = MaskedTexts([torch.arange(2, 12), torch.arange(2, 6)], 0.3, 20, fixed=True)
    first, again = texts[0], texts[0]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    inputs, targets = collate_masked([texts[0], texts[1]])
    assert inputs.shape == targets.shape == (2, 10)
    assert (inputs[1, 4:] == PAD).all() and (targets[1, 4:] == IGNORE).all()


def test_the_hidden_positions_logits_are_those_of_the_full_output():
    torch.manual_seed(0)
    model = MaskedLanguageModel(vocab_size=30, dim=16, heads=2, depth=1, max_len=12, ngram_buckets=64).double().eval()
    ids = torch.randint(2, 30, (3, 12))
    ids[2, 7:] = PAD
    targets = torch.full_like(ids, IGNORE)
    targets[0, 3], targets[2, 6], targets[1, 0] = 5, 9, 4
    full = model(ids)  # (B, L, V): the tied embedding plus a bias per token
    assert full.shape == (3, 12, 30)
    h, _, _ = model.encoder.features(ids)
    assert torch.allclose(full, h @ model.encoder.embed.weight.T + model.bias)
    hidden = model(ids, targets)  # (M, V), in row-major order of the hidden positions
    assert torch.allclose(hidden, full[[0, 1, 2], [3, 0, 6]])


def write_texts(root, n=200):
    write_sentiment(root, n, n * 4 // 5)


SMALL = ["--dim", "16", "--heads", "2"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlm")
    write_texts(root)
    data = ["--data", "textfile", "--data-dir", str(root)]
    out = root / "mlm"
    assert main(["train", "--task", "text_mlm", *data, *SMALL, "--epochs", "3", "--out", str(out)]) == 0
    return root, data, out


def test_pretraining_holds_out_the_text_tasks_validation_and_learns(pretrained):
    root, data, out = pretrained
    summary = json.loads((out / "summary.json").read_text())
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # it learns which tokens were hidden
    assert summary["splits"] == {"train": 144, "val": 16, "test": 40}  # the text task's carve of 160 texts
    from attnlab.engine.config import TrainConfig
    from attnlab.engine.trainer import build_data

    mlm_config = TrainConfig.create("text_mlm", data="textfile", data_dir=str(root))
    mlm = build_data(mlm_config, mlm_config.new_task())
    text_config = TrainConfig.create("text", data="textfile", data_dir=str(root))
    text = build_data(text_config, text_config.new_task())
    assert mlm.split == text.split  # the same texts held out: the encoder never trains on a text validated on


def test_the_text_task_starts_from_the_pretrained_encoder(pretrained, tmp_path, capsys):
    root, data, out = pretrained
    run = tmp_path / "run"
    args = ["train", "--task", "text", *data, *SMALL, "--epochs", "1", "--backbone", str(out), "--out", str(run)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"encoder: 21 pretrained tensors loaded from --backbone {out}" in printed
    from attnlab.engine.config import TrainConfig
    from attnlab.engine.run_folder import RUNS

    config = TrainConfig.create("text", data="textfile", data_dir=str(root), dim=16, heads=2, backbone=str(out))
    task = config.new_task(runs=RUNS)
    from attnlab.engine.trainer import build_data, build_model

    build_data(config, task)
    model = build_model(config, task)
    task.initialize(model)
    networks = members_of(model)  # 3: the ensemble of a run on few texts, each network from the same encoder
    assert len(networks) == 3 and "(into each of the ensemble's 3 networks; their heads from scratch)" in printed
    encoder = {
        k.removeprefix("model.encoder."): v
        for k, v in load_file(out / "best.safetensors").items()
        if k.startswith("model.encoder.") and not k.startswith("model.encoder.head.")
    }
    assert len(encoder) == 21 and {"embed.weight", "bigram.weight", "pos", "norm.weight"} <= set(encoder)
    for state in (network.state_dict() for network in networks):
        for name, value in encoder.items():  # the best pretrained checkpoint's, every one
            assert torch.equal(state[name], value), name


def test_a_backbone_that_does_not_fit_is_refused_by_name(pretrained, tmp_path, capsys):
    root, data, out = pretrained
    base = ["train", "--task", "text", *data, "--heads", "2", "--epochs", "1", "--out", str(tmp_path / "r")]
    other = tmp_path / "classify"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "classify"}))
    for flags, message in [
        (["--dim", "32", "--backbone", str(out)], "--dim 16 (here 32)"),
        (["--dim", "16", "--backbone", str(tmp_path / "missing")], "attnlab train --task text_mlm"),
        (["--dim", "16", "--backbone", str(other)], "expected a text_mlm run"),
        # it trained on texts that this run's carve would validate on
        (["--dim", "16", "--backbone", str(out), "--val-fraction", "0.3"], "--val-fraction 0.1, this run 0.3"),
    ]:
        assert main([*base, *flags]) == 2, flags
        assert message in capsys.readouterr().err, flags


def test_backbone_auto_starts_from_scratch_on_few_texts(tmp_path, monkeypatch, capsys):
    write_texts(tmp_path, n=100)
    monkeypatch.chdir(tmp_path)
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(tmp_path), *SMALL, "--epochs", "1"]
    assert main([*args, "--backbone", "auto", "--out", "run"]) == 0
    assert (
        "--backbone auto: 80 training texts, fewer than 5,000: the encoder starts from scratch"
        in capsys.readouterr().out
    )
    assert not (tmp_path / "runs").exists()  # nothing pretrained


def test_the_default_starts_from_scratch_however_many_texts(tmp_path, monkeypatch, capsys):
    """--backbone none is the default (measured best on validation at reviews_zh's 14,064 texts): no pretraining
    is made even where auto would make one."""
    write_texts(tmp_path, n=100)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(text_task, "PRETRAIN_FROM", 50)  # auto would pretrain on these 80 training texts
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(tmp_path), *SMALL, "--epochs", "1"]
    assert main([*args, "--out", "run"]) == 0
    assert "--backbone" not in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["backbone"] is None


def test_backbone_auto_pretrains_first_with_the_runs_validation(tmp_path, monkeypatch, capsys):
    write_texts(tmp_path, n=100)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(TextMLM, "recipe", {**TextMLM.recipe, "samples_seen": 200})  # a short pretraining
    monkeypatch.setattr(text_task, "PRETRAIN_FROM", 50)  # these 80 training texts are many enough
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(tmp_path), *SMALL, "--epochs", "1"]
    assert main([*args, "--backbone", "auto", "--val-fraction", "0.2", "--out", "run"]) == 0
    printed = capsys.readouterr().out
    folder = next((tmp_path / "runs").glob("text_mlm-textfile-*"))
    assert "--backbone auto: the encoder pretrained on these training texts" in printed
    assert json.loads((folder / "config.json").read_text())["val_fraction"] == 0.2
    assert "pretrained tensors loaded from --backbone runs/text_mlm-textfile-" in printed


def test_compare_makes_a_missing_pretrained_run_before_its_rows(tmp_path, monkeypatch):
    write_texts(tmp_path, n=100)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(TextMLM, "recipe", {**TextMLM.recipe, "samples_seen": 200})
    monkeypatch.setattr(text_task, "PRETRAIN_FROM", 50)
    args = ["compare", "--task", "text", "--data", "textfile", "--data-dir", str(tmp_path), *SMALL, "--epochs", "1"]
    args += ["--vary", "head=mean", "--seeds", "1", "--backbone", "auto", "--no-latency", "--out", "cmp"]
    assert main(args) == 0  # its check of the rows waits for the pretrained run that the first row makes
    assert len(list((tmp_path / "runs").glob("text_mlm-textfile-*/summary.json"))) == 1
