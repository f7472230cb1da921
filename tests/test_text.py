"""The shipped texts, the character tokenizer, the splits and the seeded batch sampler."""

from importlib import resources

import numpy as np
import pytest

from tinylora.text.corpus import (
    FINETUNE_TEXT,
    PRETRAIN_TEXT,
    TEXTS,
    BatchSampler,
    CharTokenizer,
    eval_windows,
    load_text,
    shipped_tokenizer,
    train_val_split,
)


def test_shipped_texts_are_small_distinct_and_documented():
    """Both texts ship in the package (no download), stay under ~1 MB together, and differ."""
    sizes = {name: len(load_text(name)) for name in TEXTS}
    assert all(n > 50_000 for n in sizes.values()), sizes
    assert sum(sizes.values()) < 1_000_000
    assert load_text(PRETRAIN_TEXT) != load_text(FINETUNE_TEXT)
    sources = resources.files("tinylora.text").joinpath("data", "SOURCES.md").read_text()
    assert "public domain" in sources.lower() and all(f in sources for f in TEXTS.values())


def test_tokenizer_round_trips_both_texts():
    """decode(encode(text)) == text for every shipped text: no character is lost or changed."""
    tok = shipped_tokenizer()
    for name in TEXTS:
        text = load_text(name)
        ids = tok.encode(text)
        assert ids.dtype == np.int64 and ids.shape == (len(text),)
        assert tok.decode(ids) == text


def test_vocabulary_is_the_sorted_union_of_both_texts():
    """One vocabulary covers both texts, so a base trained on one can read the other."""
    tok = shipped_tokenizer()
    union = set(load_text(PRETRAIN_TEXT)) | set(load_text(FINETUNE_TEXT))
    assert tok.chars == "".join(sorted(union)) and tok.vocab_size == len(union)


def test_tokenizer_refuses_unknown_characters_and_ids():
    """An out-of-vocabulary character or id is a clear error, never a silent wrong id."""
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="ids"):
        tok.decode([0, 3])


def test_split_is_contiguous_and_disjoint():
    """Validation is the tail of the text: together the two splits are the text, in order."""
    ids = np.arange(1000)
    train, val = train_val_split(ids, 0.1)
    assert len(val) == 100 and np.array_equal(np.concatenate([train, val]), ids)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(ids, 1.5)


def test_sampler_is_deterministic_under_a_seed():
    """Same seed, same batches (runs compared across learning rates see the same data);
    another seed, other batches."""
    ids = shipped_tokenizer().encode(load_text(FINETUNE_TEXT))
    a, b, c = (BatchSampler(ids, 8, 32, seed=s) for s in (3, 3, 4))
    batches_a = [a.sample() for _ in range(3)]
    batches_b = [b.sample() for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(batches_a, batches_b))
    assert not np.array_equal(batches_a[0], c.sample())
    assert batches_a[0].shape == (8, 33)


def test_sampler_windows_are_contiguous_pieces_of_the_text():
    """Each row is a real window of the text, so row[1:] is the next-character target."""
    ids = np.arange(500) * 7
    batch = BatchSampler(ids, 16, 10, seed=0).sample()
    start = batch[:, 0] // 7
    assert np.array_equal(batch, (start[:, None] + np.arange(11)) * 7)


def test_eval_windows_are_fixed_and_span_the_split():
    """The evaluation set is the same every call and reaches both ends of the split."""
    ids = np.arange(300)
    w = eval_windows(ids, 20, 5)
    assert np.array_equal(w, eval_windows(ids, 20, 5))
    assert w[0, 0] == 0 and w[-1, -1] == 299 and w.shape == (5, 21)
    with pytest.raises(ValueError, match="context"):
        eval_windows(ids[:10], 20, 5)
