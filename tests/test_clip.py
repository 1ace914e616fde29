"""The open_clip scorer with a tiny randomly initialised model (no weights are downloaded)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch

from in21k_bench.errors import In21kError
from in21k_bench.zeroshot.clip import (
    TEST_ARCH,
    EmbeddingChunks,
    TextEmbeddingCache,
    choose_lemmas,
    class_text_matrix,
    embed_images,
    load_clip,
    resolve_device,
    vote_lemmas,
)
from in21k_bench.zeroshot.prompts import PROMPT_TEMPLATES


@lru_cache(maxsize=1)
def tiny():
    return load_clip(TEST_ARCH, None, device="cpu", seed=0)


def test_load_tiny_model_and_errors():
    clip = tiny()
    assert clip.embed_dim == 64 and clip.device == "cpu" and clip.identity.startswith(TEST_ARCH + "|random-seed0")
    again = load_clip(TEST_ARCH, None, device="cpu", seed=0)
    e1, e2 = clip.encode_texts(["a photo of a dog."]), again.encode_texts(["a photo of a dog."])
    np.testing.assert_allclose(e1, e2)  # seeded random weights are reproducible
    np.testing.assert_allclose(np.linalg.norm(e1, axis=1), 1, rtol=1e-5)
    with pytest.raises(In21kError, match="did you mean ViT-B-32"):
        load_clip("ViT-B-33", "openai", device="cpu")
    with pytest.raises(In21kError, match="pretrained tag of ViT-B-32"):
        load_clip("ViT-B-32", "no-such-tag", device="cpu")
    with pytest.raises(In21kError, match="no pretrained weights"):
        load_clip(TEST_ARCH, "laion2b", device="cpu")
    with pytest.raises(In21kError, match="expected auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(In21kError, match="GPU visible to torch"):
            resolve_device("cuda")


def test_lemma_embedding_is_mean_of_normalised_prompt_embeddings_and_is_cached(tmp_path):
    clip = tiny()
    cache = TextEmbeddingCache(clip, "v1", tmp_path)
    wnids = ["n02226429", "n02228341"]
    lemmas = [["grasshopper", "hopper"], ["katydid"]]
    emb, ptr = cache.lemma_embeddings(wnids, lemmas)
    assert ptr.tolist() == [0, 2, 3] and emb.shape == (3, 64)
    # independent computation straight from open_clip
    with torch.inference_mode():
        for row, lem in enumerate(["grasshopper", "hopper", "katydid"]):
            tok = clip.tokenizer([t.format(lem) for t in PROMPT_TEMPLATES])
            e = clip.model.encode_text(tok).float()
            want = torch.nn.functional.normalize(e, dim=-1).mean(0).numpy()
            np.testing.assert_allclose(emb[row], want, rtol=1e-4, atol=1e-6)

    # a second cache object reads the file and never calls the model
    class NoEncode:
        def __getattr__(self, name):
            return getattr(clip, name)

        def encode_texts(self, *a, **k):
            raise AssertionError("should have come from the cache")

    cached = TextEmbeddingCache(NoEncode(), "v1", tmp_path)
    emb2, ptr2 = cached.lemma_embeddings(wnids[::-1], lemmas[::-1])
    assert ptr2.tolist() == [0, 1, 3]
    np.testing.assert_array_equal(emb2, emb[[2, 0, 1]])
    # another taxonomy version -> another key, computed afresh
    assert TextEmbeddingCache(clip, "v2", tmp_path).dir != cache.dir
    # a changed lemma list is recomputed (only that class)
    calls = []
    orig = clip.encode_texts

    class Counting(NoEncode):
        def encode_texts(self, texts, batch_size=256):
            calls.append(list(texts))
            return orig(texts, batch_size)

    c3 = TextEmbeddingCache(Counting(), "v1", tmp_path)
    emb3, ptr3 = c3.lemma_embeddings(wnids, [["grasshopper"], ["katydid"]])
    assert [len(c) for c in calls] == [7] and ptr3.tolist() == [0, 1, 2]
    np.testing.assert_allclose(emb3[0], emb[0], rtol=1e-5, atol=1e-6)


def test_lemma_vote_majority_ties_and_absent_classes():
    d = 4
    e = np.eye(d, dtype=np.float32)
    # class 0: lemmas A=e0, B=e1 ; class 1: lemmas C=e2, D=e3 ; class 2: single lemma e0
    lemma_emb = np.stack([e[0] * 0.5, e[1] * 0.5, e[2], e[3], e[0]])  # norms differ: cosine must not care
    ptr = np.array([0, 2, 4, 5])
    x = np.stack([e[1], e[1] + 0.1 * e[0], e[0], e[2], e[3], e[0]]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    class_pos = np.array([0, 0, 0, 1, 1, 2])
    counts = [np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(1, np.int64)]
    vote_lemmas(lemma_emb, ptr, class_pos[:3], x[:3], counts)  # chunk 1
    vote_lemmas(lemma_emb, ptr, class_pos[3:], x[3:], counts)  # chunk 2
    assert [c.tolist() for c in counts] == [[1, 2], [1, 1], [1]]
    choice = choose_lemmas(counts + [np.zeros(3, np.int64)])
    assert choice.tolist() == [1, 0, 0, 0]  # majority; tie -> first lemma; no images -> first lemma
    m = class_text_matrix(lemma_emb, ptr, choice[:3])
    np.testing.assert_allclose(m, np.stack([e[1], e[2], e[0]]))
    # -1 = not voting
    c2 = [np.zeros(2, np.int64)]
    vote_lemmas(lemma_emb[:2], ptr[:2], np.array([-1, 0]), x[:2], c2)
    assert c2[0].tolist() == [0, 1]


def _images(tmp_path, n=5):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = tmp_path / f"img_{i}.JPEG"
        Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_embed_images_and_chunk_store(tmp_path):
    clip = tiny()
    paths = _images(tmp_path)
    got = list(embed_images(clip, paths, batch_size=2))
    assert [s for s, _ in got] == [0, 2, 4]
    x = np.concatenate([e for _, e in got])
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=1e-5)
    from PIL import Image

    with torch.inference_mode():
        direct = clip.model.encode_image(
            torch.stack([clip.preprocess(Image.open(p).convert("RGB")) for p in paths])
        ).float()
    np.testing.assert_allclose(x, torch.nn.functional.normalize(direct, dim=-1).numpy(), rtol=1e-4, atol=1e-5)

    ids = [f"val/n1/{i}" for i in range(5)]
    store = EmbeddingChunks(tmp_path / "emb", ids, clip.embed_dim, clip.identity, chunk_rows=2)
    assert store.num_chunks == 3 and store.missing() == [0, 1, 2]
    assert store.fill(clip, paths, batch_size=3) == 3 and store.missing() == []
    back = np.concatenate([c for _, c in store.iter_chunks()])
    np.testing.assert_allclose(back, x, atol=2e-3)  # float16 storage
    with pytest.raises(In21kError, match="--resume"):
        EmbeddingChunks(tmp_path / "emb", ids, clip.embed_dim, clip.identity, chunk_rows=2, resume=False)
    with pytest.raises(In21kError, match="sample_ids_sha256"):
        EmbeddingChunks(tmp_path / "emb", ids[::-1], clip.embed_dim, clip.identity, chunk_rows=2)
    with pytest.raises(In21kError, match="identity"):
        EmbeddingChunks(tmp_path / "emb", ids, clip.embed_dim, "other-model", chunk_rows=2)
    with pytest.raises(In21kError, match="shape"):
        store.write(0, np.zeros((3, clip.embed_dim)))
    (tmp_path / "broken.JPEG").write_bytes(b"not an image")
    with pytest.raises(In21kError, match="readable image"):
        list(embed_images(clip, [str(tmp_path / "broken.JPEG")]))
