"""Dense retrieval of knowledge-base entities for mined phrases (the R of DBR).

A sentence-transformers encoder embeds the knowledge-base names once (cached on disk, keyed by the
encoder and the knowledge base's content) and the phrases of the training sentences; each phrase gets
its top-K names by cosine similarity. Search is exact: a matrix product over chunks of the
knowledge-base matrix with a running top-K, so memory stays bounded by the chunk sizes plus the
matrix itself (float16 on disk, memory-mapped).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from files_vaner import open_output

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "cambridgeltl/SapBERT-from-PubMedBERT-fulltext"
POOLING_MODES = ("auto", "cls", "mean")


ENCODER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_encoder(
    name_or_path: str = DEFAULT_ENCODER,
    pooling: str = "auto",
    max_seq_length: int | None = 32,
    device: str | None = None,
    dtype: str = "float32",
):
    """A `SentenceTransformer` from a Hub id or a local folder (a local folder needs no network).

    `pooling`: "auto" keeps a sentence-transformers model's own pooling and uses [CLS] for SapBERT
    (as its authors do); "cls" / "mean" wrap any transformers encoder with that pooling.
    `max_seq_length` truncates names (SapBERT was trained on names of at most 25 tokens).
    `dtype` "bfloat16" runs the encoder in bfloat16: on CPUs with AVX512-BF16 (and on GPUs) about
    twice as fast, embeddings within cosine 0.998 of float32 ones; "float16" is for GPUs.
    """
    from sentence_transformers import SentenceTransformer, models

    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
    if dtype not in ENCODER_DTYPES:
        raise ValueError(f"encoder dtype must be one of {tuple(ENCODER_DTYPES)}, got {dtype!r}")
    if pooling == "auto" and "sapbert" in name_or_path.lower() and not (Path(name_or_path) / "modules.json").is_file():
        pooling = "cls"
    if pooling == "auto":
        encoder = SentenceTransformer(name_or_path, device=device)
    else:
        transformer = models.Transformer(name_or_path)
        dimension = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
        pooling_module = models.Pooling(dimension(), pooling_mode=pooling)
        encoder = SentenceTransformer(modules=[transformer, pooling_module], device=device)
    if max_seq_length:
        encoder.max_seq_length = max_seq_length
    return encoder.to(ENCODER_DTYPES[dtype]).eval()


def encoder_fingerprint(name_or_path: str, pooling: str, max_seq_length: int | None, dtype: str) -> str:
    """What identifies an encoder's embeddings: its id, or a local folder's path and file sizes/times."""
    parts = [name_or_path, pooling, str(max_seq_length), dtype]
    folder = Path(name_or_path)
    if folder.is_dir():
        parts = [str(folder.resolve())] + parts[1:]
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                parts.append(f"{path.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def encode_texts(
    encoder, texts: Sequence[str], batch_size: int = 128, description: str = "encoding", progress: bool = True
) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text, with a progress bar.

    Texts are encoded shortest first (so batches hold texts of similar length and little padding) in
    chunks that keep memory flat and the bar moving; rows come back in the input order.
    """
    dimension = (getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension)()
    embeddings = np.zeros((len(texts), dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda position: len(texts[position]))
    chunk = max(batch_size * 16, 2048)
    with torch.inference_mode(), tqdm(total=len(texts), desc=description, unit="text", disable=not progress) as bar:
        for start in range(0, len(order), chunk):
            positions = order[start : start + chunk]
            encoded = encoder.encode([texts[position] for position in positions], batch_size=batch_size,
                                     convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
            embeddings[positions] = np.asarray(encoded, dtype=np.float32)
            bar.update(len(positions))
    return embeddings


def cached_kb_embeddings(
    encoder,
    names: Sequence[str],
    cache_dir: str | Path | None,
    cache_key: str,
    dtype: str = "float16",
    batch_size: int = 128,
    progress: bool = True,
) -> np.ndarray:
    """The knowledge-base matrix: read from `cache_dir/<key>.npy` (memory-mapped) or computed and saved.

    `cache_key` must identify both the encoder and the knowledge base's content (see
    `encoder_fingerprint`, `KnowledgeBase.content_hash`).
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"embedding dtype must be float16 or float32, got {dtype!r}")
    key = hashlib.sha256(f"{cache_key}|{dtype}|{len(names)}".encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"kb-{key}.npy" if cache_dir else None
    if path is not None and path.is_file():
        matrix = np.load(path, mmap_mode="r")
        if matrix.shape[0] == len(names):
            logger.info("knowledge-base embeddings read from the cache %s", path)
            return matrix
        logger.warning("%s: %d rows for %d names; computing again", path, matrix.shape[0], len(names))
    matrix = encode_texts(encoder, names, batch_size, "encoding knowledge base", progress).astype(dtype)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_output(path, "wb") as handle:  # the project's atomic writer: never half a cache file
            np.save(handle, matrix)
        with open_output(path.with_suffix(".json")) as handle:
            handle.write(json.dumps({"rows": len(names), "dtype": dtype, "cache_key": cache_key}, indent=1) + "\n")
        logger.info("knowledge-base embeddings saved to %s", path)
        return np.load(path, mmap_mode="r")
    return matrix


@dataclass
class DenseIndex:
    """Exact cosine search over a (names x dim) matrix of normalised embeddings.

    The matrix (float16, possibly memory-mapped) is read `kb_chunk_rows` rows at a time and each chunk
    is converted to float32 once per search, then scored against every batch of `query_batch` queries:
    transient memory is one chunk plus query_batch x kb_chunk_rows scores whatever the knowledge-base
    size. `device` "cuda" runs the products on the GPU, chunk by chunk.
    """

    matrix: np.ndarray
    query_batch: int = 512
    kb_chunk_rows: int = 32768
    device: str = "cpu"

    def _chunk(self, start: int) -> torch.Tensor:
        chunk = torch.from_numpy(np.array(self.matrix[start : start + self.kb_chunk_rows], dtype=np.float32))
        return chunk.to(self.device)

    def search(self, queries: np.ndarray, top_k: int, show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(scores, indices), both (queries x k) with k = min(top_k, rows), best first."""
        rows = self.matrix.shape[0]
        k = min(top_k, rows)
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), k), dtype=np.float32), np.zeros((len(queries), k), dtype=np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        batches = [torch.from_numpy(queries[start : start + self.query_batch]).to(self.device)
                   for start in range(0, len(queries), self.query_batch)]
        best: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(batches)
        chunk_starts = range(0, rows, self.kb_chunk_rows)
        with torch.inference_mode(), tqdm(total=len(chunk_starts) * len(batches), desc="retrieving", unit="batch",
                                          disable=not show_progress) as progress:
            for chunk_start in chunk_starts:
                chunk = self._chunk(chunk_start)
                for number, query in enumerate(batches):
                    chunk_scores, chunk_indices = torch.topk(query @ chunk.T, min(k, chunk.shape[0]), dim=1)
                    chunk_indices += chunk_start
                    if best[number] is not None:
                        merged_scores = torch.cat([best[number][0], chunk_scores], dim=1)
                        merged_indices = torch.cat([best[number][1], chunk_indices], dim=1)
                        chunk_scores, order = torch.topk(merged_scores, k, dim=1)
                        chunk_indices = torch.gather(merged_indices, 1, order)
                    best[number] = (chunk_scores, chunk_indices)
                    progress.update()
        return (torch.cat([scores for scores, _ in best]).cpu().numpy(),
                torch.cat([indices for _, indices in best]).cpu().numpy())


def retrieve_for_phrases(
    encoder,
    phrases: Sequence[str],
    index: DenseIndex,
    top_k: int,
    batch_size: int = 128,
    known_rows: dict[str, int] | None = None,
    phrase_chunk: int = 50000,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-K knowledge-base rows for each phrase: (scores, indices) of shape (phrases x k).

    Phrases that are exactly a knowledge-base name (`known_rows`: name -> row) reuse that row's
    embedding instead of being encoded again. Phrases are processed `phrase_chunk` at a time so that
    their embeddings never all sit in memory.
    """
    k = min(top_k, index.matrix.shape[0])
    scores = np.zeros((len(phrases), k), dtype=np.float32)
    indices = np.zeros((len(phrases), k), dtype=np.int64)
    known_rows = known_rows or {}
    for start in range(0, len(phrases), phrase_chunk):
        part = phrases[start : start + phrase_chunk]
        rows = [known_rows.get(phrase, -1) for phrase in part]
        unknown = [position for position, row in enumerate(rows) if row < 0]
        known = [position for position, row in enumerate(rows) if row >= 0]
        embeddings = np.zeros((len(part), index.matrix.shape[1]), dtype=np.float32)
        if known:
            embeddings[known] = np.asarray(index.matrix[[rows[position] for position in known]], dtype=np.float32)
        if unknown:
            description = f"encoding phrases {start + 1}-{start + len(part)} of {len(phrases)}"
            embeddings[unknown] = encode_texts(
                encoder, [part[position] for position in unknown], batch_size, description, progress
            )
        part_scores, part_indices = index.search(embeddings, k, progress)
        scores[start : start + len(part)] = part_scores
        indices[start : start + len(part)] = part_indices
    return scores, indices
