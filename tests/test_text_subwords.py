"""Words read through their pieces (fastText's subwords): the hashed character n-grams by hand, the (L, 1 + S)
id tables and their batches, the model's mean of n-gram embeddings in float64, hiding for pretraining, and an
English run end to end (predict, export)."""

import csv
import json
import zlib

import numpy as np
import pytest
import torch

import attnlab
from attnlab.cli import main
from attnlab.models.text_ensemble import members_of
from attnlab.tasks.text.pretrain import hide_tokens
from attnlab.tasks.text.tokens import (
    MAX_SUBWORDS,
    UNK,
    Subwords,
    TokenizedTexts,
    Vocabulary,
    collate_padded,
    text_ids,
)

F64 = torch.float64


def crc(gram: str, buckets: int) -> int:
    return zlib.crc32(gram.encode()) % (buckets - 1) + 1


def test_subwords_are_the_words_character_3_to_5_grams_hashed_by_crc32():
    pieces = Subwords(101)
    # "<ab>": from position 0 the 3-, 4-grams "<ab", "<ab>", from position 1 the 3-gram "ab>"
    assert pieces("ab") == [crc("<ab", 101), crc("<ab>", 101), crc("ab>", 101)]
    assert pieces("a") == [crc("<a>", 101)]
    long = pieces("x" * 40)
    assert len(long) == MAX_SUBWORDS and all(1 <= i < 101 for i in long)  # bucket 0 is "no n-gram"
    assert Subwords(101)("ab") == pieces("ab")  # no per-process salt: the same ids in predict as in training


def test_id_tables_hold_the_token_then_its_pieces_and_pad_with_zeros():
    vocab = Vocabulary(["<pad>", "<unk>", "array", "the"])
    pieces = Subwords(997)
    table = text_ids(["the", "arrays", "x"], vocab, max_len=8, subwords=pieces)
    assert table.shape == (3, 1 + len(pieces("arrays")))
    assert table[:, 0].tolist() == [3, UNK, UNK]  # "arrays" is not in the vocabulary: its pieces still are
    assert table[1, 1:].tolist() == pieces("arrays")
    assert table[2, 1 + len(pieces("x")) :].eq(0).all()
    assert text_ids([], vocab, 8, pieces).tolist() == [[UNK]]  # an empty text: one unknown token, no pieces
    assert text_ids(["the", "the", "the"], vocab, max_len=2, subwords=pieces).shape[0] == 2  # cut to max_len
    ids, labels = collate_padded([(table, 0), (text_ids(["the"], vocab, 8, pieces), 1)])
    assert ids.shape == (2, 3, table.shape[1]) and labels.tolist() == [0, 1]
    assert ids[1, 1:].eq(0).all() and ids[1, 0, 1 + len(pieces("the")) :].eq(0).all()


def test_token_dropout_replaces_the_word_and_keeps_its_pieces():
    table = text_ids(["alpha", "beta"], Vocabulary(["<pad>", "<unk>", "alpha", "beta"]), 8, Subwords(97))
    texts = TokenizedTexts([table], [0], token_dropout=0.999999)
    torch.manual_seed(0)
    dropped, _ = texts[0]
    assert dropped[:, 0].tolist() == [UNK, UNK] and torch.equal(dropped[:, 1:], table[:, 1:])
    assert table[:, 0].tolist() == [2, 3]  # the stored ids are not changed


def subword_model(**kwargs):
    torch.manual_seed(0)
    args = dict(vocab_size=20, num_classes=3, dim=8, depth=1, heads=2, max_len=16, subword_buckets=31, dropout=0.0)
    return attnlab.create_model("text_transformer", **(args | kwargs)).double().eval()


def test_each_token_adds_the_mean_of_its_pieces_embeddings():
    model = subword_model()
    ids = torch.tensor([[[5, 3, 7, 0], [UNK, 4, 0, 0], [9, 0, 0, 0]]])  # (B, L, 1 + S): 2, 1 and 0 pieces
    x, pad = model.embeddings(ids)
    table, embed = model.subword.weight.detach(), model.embed.weight.detach()
    expected = torch.stack([embed[5] + (table[3] + table[7]) / 2, embed[UNK] + table[4], embed[9]])
    torch.testing.assert_close(x[0], expected + model.pos[0, :3].detach(), rtol=1e-12, atol=1e-12)
    assert not pad.any()
    # two unknown words with different pieces are told apart; without pieces they would be the same token
    a = model(torch.tensor([[[UNK, 4, 5, 0]]]))
    b = model(torch.tensor([[[UNK, 11, 12, 0]]]))
    assert not torch.allclose(a, b)


def test_scores_do_not_depend_on_padding_of_either_axis():
    model = subword_model(head="capsule")
    text = torch.tensor([[[5, 3, 7], [6, 2, 0], [9, 0, 0]]])
    alone = model(text)
    batch = torch.zeros(2, 6, 5, dtype=torch.int64)
    batch[0, :3, :3] = text[0]
    batch[1, :, 0] = torch.arange(2, 8)
    batch[1, :, 1:] = 13
    with torch.no_grad():
        torch.testing.assert_close(model(batch)[0], alone[0], rtol=1e-10, atol=1e-12)


def test_a_table_of_the_wrong_kind_is_refused_by_name():
    with pytest.raises(ValueError, match=r"ids: this model reads subwords, expected \(B, L, 1 \+ S\)"):
        subword_model()(torch.tensor([[5, 6]]))
    with pytest.raises(ValueError, match=r"ids: expected \(B, L\) token ids \(this model has no subwords\)"):
        subword_model(subword_buckets=0)(torch.tensor([[[5, 1]]]))


def test_hiding_a_token_hides_its_pieces_too():
    table = text_ids(["one", "two", "three", "four"] * 5, Vocabulary(["<pad>", "<unk>"]), 32, Subwords(97))
    table[:, 0] = torch.arange(2, 22)
    inputs, targets = hide_tokens(table, 0.3, 50, torch.Generator().manual_seed(0))
    hidden = targets != -100
    assert hidden.any() and inputs.shape == table.shape
    assert torch.equal(targets[hidden], table[hidden, 0])
    assert inputs[hidden, 1:].eq(0).all()  # no n-gram tells a hidden word
    assert torch.equal(inputs[~hidden], table[~hidden])


WORDS = {
    "plot": "figure axes plot line colour legend marker subplot",
    "array": "array shape dtype broadcast reshape index slice ndarray",
}


@pytest.fixture(scope="module")
def english_run(tmp_path_factory):
    """A textfile of two topics in English, trained with the defaults but short (the words tokenizer, subwords)."""
    root = tmp_path_factory.mktemp("english")
    rng = np.random.default_rng(0)
    for name, n in (("train", 120), ("val", 40)):
        with open(root / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            for i in range(n):
                label = ("plot", "array")[i % 2]
                words = rng.choice(WORDS[label].split(), 6).tolist() + [f"word{rng.integers(1000)}"]
                w.writerow([" ".join(words).capitalize() + ".", label])
    out = root / "run"
    args = ["train", "--task", "text", "--data", "textfile", "--data-dir", str(root), "--out", str(out)]
    args += ["--dim", "16", "--heads", "2", "--epochs", "6", "--batch-size", "16", "--lr", "0.01"]
    assert main([*args, "--subword-buckets", "4096"]) == 0
    return out


def test_an_english_run_reads_pieces_learns_and_predicts_unseen_words(english_run, capsys):
    from attnlab.engine.run_folder import load_run

    run = load_run(english_run)
    assert run.task.meta["tokenizer"] == "words" and run.task.meta["subword_buckets"] == 4096
    assert all(network.subword.num_embeddings == 4096 for network in members_of(run.model))
    assert json.loads((english_run / "summary.json").read_text())["test_acc"] >= 0.9
    # "subplots" and "reshaped" are not words of the training texts: their pieces are
    assert main(["predict", "--checkpoint", str(english_run), "--text", "subplots", "--text", "reshaped"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("plot probability ") and lines[1].startswith("array probability ")


def test_an_english_run_exports_with_a_dynamic_number_of_pieces(english_run, tmp_path):
    from attnlab.engine.run_folder import load_run

    ort = pytest.importorskip("onnxruntime")
    onnx = tmp_path / "text.onnx"
    assert main(["export", "--checkpoint", str(english_run), "--format", "onnx", "--out", str(onnx)]) == 0
    session = ort.InferenceSession(str(onnx))
    model = load_run(english_run).model
    for shape in ((1, 5, 4), (3, 9, 12)):  # dynamic batch, length and pieces
        ids = torch.randint(0, 10, shape)
        ids[..., 0] = ids[..., 0].clamp(min=1)
        got = session.run(None, {"input": ids.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, model(ids).numpy(), rtol=1e-4, atol=1e-5)
