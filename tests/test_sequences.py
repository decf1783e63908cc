"""Sequence views of images, padding + lengths + masks, batch columns and TBPTT chunks."""

import pytest
import torch

from rnnlab.data.sequences import (
    batchify,
    images_to_sequences,
    lengths_to_mask,
    pad_sequences,
    pixel_permutation,
    tbptt_chunks,
)


def test_images_to_sequences_modes():
    images = torch.rand(3, 4, 5)
    rows = images_to_sequences(images, "rows")
    assert rows.shape == (3, 4, 5) and torch.equal(rows, images)
    pixels = images_to_sequences(images, "pixels")
    assert pixels.shape == (3, 20, 1)
    assert pixels[1, 7, 0] == images[1, 1, 2]  # raster order: row 1, column 2
    perm = images_to_sequences(images, "permuted", seed=3)
    assert perm.shape == (3, 20, 1)
    assert torch.equal(perm, images_to_sequences(images, "permuted", seed=3))
    assert not torch.equal(perm, images_to_sequences(images, "permuted", seed=4))
    order = pixel_permutation(20, seed=3)
    assert torch.equal(perm[:, :, 0], pixels[:, order, 0])
    assert sorted(order.tolist()) == list(range(20))
    # the same permutation for every image and every batch
    assert torch.equal(images_to_sequences(images[1:2], "permuted", seed=3), perm[1:2])


def test_images_to_sequences_errors():
    with pytest.raises(ValueError, match="`mode` must be one of"):
        images_to_sequences(torch.rand(1, 2, 2), "columns")
    with pytest.raises(ValueError, match=r"`images` must be \(N, H, W\)"):
        images_to_sequences(torch.rand(1, 1, 2, 2))


def test_pad_sequences_and_mask():
    seqs = [torch.ones(3, 2), torch.full((1, 2), 2.0), torch.full((5, 2), 3.0)]
    padded, lengths = pad_sequences(seqs, value=-1.0)
    assert padded.shape == (3, 5, 2) and lengths.tolist() == [3, 1, 5]
    assert lengths.dtype == torch.int64
    assert torch.equal(padded[0, :3], seqs[0]) and (padded[0, 3:] == -1).all()
    assert (padded[1, 1:] == -1).all() and torch.equal(padded[2], seqs[2])
    mask = lengths_to_mask(lengths, 6)
    assert mask.dtype == torch.bool and mask.shape == (3, 6)
    assert mask.sum(1).tolist() == [3, 1, 5] and mask[0].tolist() == [1, 1, 1, 0, 0, 0]
    assert lengths_to_mask(lengths).shape == (3, 5)
    with pytest.raises(ValueError, match="`max_len` must be >= max"):
        lengths_to_mask(lengths, 4)
    with pytest.raises(ValueError, match="item 1"):
        pad_sequences([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([])


def test_batchify_columns_and_tbptt():
    stream = torch.arange(26)
    cols = batchify(stream, 4)
    assert cols.shape == (6, 4)
    assert cols[:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # each column is contiguous
    assert cols[:, 3].tolist() == [18, 19, 20, 21, 22, 23]  # the tail 24, 25 is dropped
    batch_first = cols.transpose(0, 1)
    chunks = tbptt_chunks(batch_first, 4)
    assert [c.shape for c in chunks] == [(4, 4), (4, 2)]
    assert torch.equal(torch.cat(chunks, dim=1), batch_first)
    assert [c.shape for c in tbptt_chunks(cols, 4, dim=0)] == [(4, 4), (2, 4)]
    feats = batchify(torch.rand(10, 3), 2)
    assert feats.shape == (5, 2, 3)
    with pytest.raises(ValueError, match="`batch_size` = 11"):
        batchify(stream[:10], 11)
    with pytest.raises(ValueError, match="`k` must be >= 1"):
        tbptt_chunks(batch_first, 0)
