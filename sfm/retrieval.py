"""Image retrieval for matching sets too large to match exhaustively.

COLMAP matches such sets through a vocabulary tree: each image is matched only to the images whose
visual words it shares most. COLMAP ships its trees as downloads (trained on Flickr photos), which a
machine without internet cannot fetch; pycolmap's visual index (k-means visual words with a Hamming
embedding) builds one from the set's own SIFT descriptors in seconds instead. Photos taken in
sequence (video frames) are also matched to their neighbours in name order, which retrieval alone
can miss on plain surfaces. COLMAP's retrieval matcher queries the index from several threads while
it matches, and its pairs then change from run to run; here the pairs are chosen with one thread and
matched afterwards as a list, so a run repeats.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pycolmap

from fields.errors import FieldsError

VISUAL_WORDS = 1024  # lego, 100 views: k = 40 retrieves 97 % of the pairs exhaustive matching verifies
DESCRIPTORS_PER_WORD = 100  # k-means training sample; below 39 per word FAISS warns
KMEANS_ITERATIONS = 20  # and 1 round; COLMAP's 100 iterations x 3 rounds took 82 s on lego-100, these 7 s


def build_visual_index(database: Path, out: Path, seed: int = 0) -> Path:
    """A visual index trained on a sample of the database's descriptors, written to `out`."""
    with pycolmap.Database.open(str(database)) as db:
        stored = [db.read_descriptors(im.image_id) for im in db.read_all_images()]
    stored = [d for d in stored if d.data.shape[0]]
    if not stored:
        raise FieldsError(f"{database}: no image has SIFT features to build a visual index from")
    descriptors = np.concatenate([d.data for d in stored]).astype(np.float32)
    words = int(np.clip(len(descriptors) // DESCRIPTORS_PER_WORD, 16, VISUAL_WORDS))
    rng = np.random.default_rng(seed)
    sample = descriptors[rng.choice(len(descriptors), min(len(descriptors), words * DESCRIPTORS_PER_WORD),
                                    replace=False)]
    index = pycolmap.VisualIndex.create(descriptors.shape[1], 64)
    build = pycolmap.VisualIndex.BuildOptions()
    build.num_visual_words = words
    build.num_iterations = KMEANS_ITERATIONS
    build.num_rounds = 1
    pycolmap.set_random_seed(seed)  # k-means draws from pycolmap's generator: one index per seed
    with quiet_stderr():  # FAISS prints a warning about its coarse quantizer of the words straight to stderr
        index.build(build, pycolmap.FeatureDescriptorsFloat(type=stored[0].type, data=sample))
    index.write(str(out))
    return out


def match_by_retrieval(database: Path, neighbours: int, overlap: int, matching: pycolmap.FeatureMatchingOptions,
                       verification: pycolmap.TwoViewGeometryOptions, seed: int = 0) -> None:
    """Each image matched to its `neighbours` most similar images (a visual index built from the set)
    and to the `overlap` images after it in name order, with geometric verification. The pairs are
    chosen first, written to `pairs.txt` beside the database, then matched as one list: the same
    photos give the same pairs and matches on every run."""
    index = build_visual_index(database, database.parent / "visual_index.bin", seed)
    retrieval = pycolmap.VocabTreePairingOptions()
    retrieval.num_images = neighbours + 1  # the best match of an image is itself
    retrieval.vocab_tree_path = str(index)
    retrieval.num_threads = 1
    sequence = pycolmap.SequentialPairingOptions()
    sequence.overlap = max(1, overlap)
    sequence.quadratic_overlap = False
    pairs = retrieval_pairs(database, retrieval, sequence if overlap >= 1 else None)
    if any(" " in name for pair in pairs for name in pair):  # COLMAP splits a pair list's lines at spaces
        retrieval.num_threads = -1  # COLMAP's own retrieval matcher, whose pairs vary between runs
        pycolmap.match_vocabtree(database, matching_options=matching, pairing_options=retrieval,
                                 verification_options=verification, device=pycolmap.Device.cpu)
        if overlap >= 1:
            pycolmap.match_sequential(database, matching_options=matching, pairing_options=sequence,
                                      verification_options=verification, device=pycolmap.Device.cpu)
        return
    listed = database.parent / "pairs.txt"
    listed.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    imported = pycolmap.ImportedPairingOptions()
    imported.match_list_path = str(listed)
    pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=imported,
                               verification_options=verification, device=pycolmap.Device.cpu)


def retrieval_pairs(database: Path, retrieval: pycolmap.VocabTreePairingOptions,
                    sequence: pycolmap.SequentialPairingOptions | None) -> list[tuple[str, str]]:
    """The image pairs (names, each pair and the list sorted) that `retrieval`, and `sequence` when
    given, choose. With one retrieval thread: COLMAP's concurrent queries of the index give a
    different set of pairs from run to run (the demo's first 16 views on a busy machine: 26 sets in
    200 runs; with one thread, 1 set in 100)."""
    with pycolmap.Database.open(str(database)) as db:
        names = {im.image_id: im.name for im in db.read_all_images()}
        pairs = pycolmap.VocabTreePairGenerator(retrieval, db).all_pairs()
        if sequence is not None:
            pairs += pycolmap.SequentialPairGenerator(sequence, db).all_pairs()
    return sorted({tuple(sorted((names[a], names[b]))) for a, b in pairs if a != b})


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what C++ code writes to the process's stderr (file descriptor 2) inside the block."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
