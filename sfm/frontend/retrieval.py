"""Image retrieval for matching sets too large to match exhaustively.

COLMAP matches such sets through a vocabulary tree: each image is matched only to the images whose
visual words it shares most. COLMAP ships its trees as downloads (trained on Flickr photos), which a
machine without internet cannot fetch; pycolmap's visual index (k-means visual words with a Hamming
embedding) builds one from the set's own SIFT descriptors in seconds instead. Photos taken in
sequence (video frames) are also matched to their neighbours in name order, which retrieval alone
can miss on plain surfaces.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pycolmap

from fields.errors import FieldsError
from sfm.frontend.pair_list import match_chosen_pairs

VISUAL_WORDS = 1024  # enough for k = 40 to retrieve nearly every pair exhaustive matching verifies on ~100 views
DESCRIPTORS_PER_WORD = 100  # k-means training sample; below 39 per word FAISS warns
KMEANS_ITERATIONS = 20  # and 1 round: about a tenth of the time of COLMAP's 100 iterations x 3 rounds


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
    and to the `overlap` images after it in name order, with geometric verification: the pairs are
    chosen first (the retrieval on one thread) and matched as a list (sfm/frontend/pair_list.py)."""
    index = build_visual_index(database, database.parent / "visual_index.bin", seed)
    retrieval = pycolmap.VocabTreePairingOptions()
    retrieval.num_images = neighbours + 1  # the best match of an image is itself
    retrieval.vocab_tree_path = str(index)
    retrieval.num_threads = 1  # several threads: a different set of pairs from run to run
    sequence = pycolmap.SequentialPairingOptions()
    sequence.overlap = max(1, overlap)
    sequence.quadratic_overlap = False

    def generators(db: pycolmap.Database) -> list[pycolmap.PairGenerator]:
        following = [pycolmap.SequentialPairGenerator(sequence, db)] if overlap >= 1 else []
        return [pycolmap.VocabTreePairGenerator(retrieval, db)] + following

    if match_chosen_pairs(database, generators, matching, verification):
        return
    retrieval.num_threads = -1  # names with spaces: COLMAP's own retrieval matcher, whose pairs vary between runs
    pycolmap.match_vocabtree(database, matching_options=matching, pairing_options=retrieval,
                             verification_options=verification, device=pycolmap.Device.cpu)
    if overlap >= 1:
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=sequence,
                                  verification_options=verification, device=pycolmap.Device.cpu)


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
