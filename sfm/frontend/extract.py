"""The matching front end through pycolmap: SIFT extraction (classic, or rich: affine + domain-size-pooled
with a chosen peak threshold), pair selection and matching with geometric verification, into a COLMAP
database that both the neural and the pycolmap mappers read."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pycolmap

from fields.errors import FieldsError
from fields.scene import Scene
from fields.settings import MAX_SEED, setting
from sfm.frontend.retrieval import match_by_retrieval
from sfm.frontend.spatial import count_located, match_spatially

log = logging.getLogger("fields")

MATCHING = ("auto", "exhaustive", "sequential", "retrieval", "spatial")
FEATURES = ("auto", "classic", "rich")


@dataclass
class FrontEndOptions:
    """Feature extraction and matching settings (pycolmap's defaults where unset)."""

    max_image_size: int = setting(1600, ge=1)  # SIFT runs on images shrunk to this longer side
    max_num_features: int = setting(8192, ge=1)  # SIFT keypoints kept per image
    # auto: exhaustive up to exhaustive_up_to images, beyond that spatial when every photo has a GPS
    # position, else retrieval; exhaustive; sequential (video frames, in name order); retrieval (each
    # image with its most similar, by a visual index); spatial (each photo with its nearest by GPS)
    matching: str = setting("auto", choices=MATCHING)
    exhaustive_up_to: int = setting(200, ge=0)  # auto: exhaustive matching up to this many images (COLMAP's automatic switch)
    retrieval_neighbours: int = setting(40, ge=1)  # retrieval: the most similar images each image is matched with
    sequential_overlap: int = setting(10, ge=0)  # sequential and retrieval: the successors in name order each image is matched with
    spatial_neighbours: int = setting(50, ge=1)  # spatial: the nearest photos by GPS position each photo is matched with
    spatial_max_distance_m: float = setting(100.0, gt=0)  # spatial: ... within this distance in metres
    seed: int = setting(0, ge=0, le=MAX_SEED)  # seeds the verification's RANSAC and the mappers (one seed for the whole SfM)
    # classic: COLMAP's SIFT and matching at its defaults; rich: affine-adapted, domain-size-pooled SIFT
    # with guided matching (several times more correct matches on wide baselines and weak texture, at
    # several times the cost); auto: classic, then rich when weak_share of the views have fewer than 2
    # verified pairs of strong_pair matches (the pycolmap incremental mapper takes auto as classic)
    features: str = setting("auto", choices=FEATURES)
    # auto and rich lower SIFT's peak threshold while the median image has fewer keypoints than this
    # (small or plain images: more keypoints, more tracks); 0: COLMAP's peak threshold always
    min_keypoints: int = setting(1500, ge=0)
    peak_sample: int = setting(8, ge=1)  # images the peak-threshold search extracts, spread through the set
    strong_pair: int = setting(30, ge=1)  # verified matches that make a pair strong (for features=auto)
    # share of weak views (fewer than 2 strong pairs) that turns rich matching on: in 20 or fewer
    # views a single weak view does; in large sets a few weak views are left to the classic matches
    weak_share: float = setting(0.05, ge=0, le=1)


def _image_names(scene: Scene, image_dir: Path) -> list[str]:
    names = []
    for v in scene.views:
        if v.path is None or v.path.parent.resolve() != image_dir.resolve():
            raise FieldsError(f"view {v.name} is not inside {image_dir}")
        names.append(v.path.name)
    return names


def upright_images(names: list[str], image_dir: Path, work: Path) -> Path:
    """The folder SIFT should read: image_dir itself, or, when some photos carry an EXIF rotation
    (which pycolmap does not apply, while our cameras and images are upright), work/upright with
    those photos turned upright (their other EXIF tags, GPS among them, kept) and links to the others,
    under the same names."""
    from PIL import Image, ImageOps

    rotated = []
    for name in names:
        with Image.open(image_dir / name) as im:
            if im.getexif().get(0x0112, 1) not in (0, 1):
                rotated.append(name)
    if not rotated:
        return image_dir
    out = work / "upright"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in names:
        if name in rotated:
            with Image.open(image_dir / name) as im:
                upright = ImageOps.exif_transpose(im)
                upright.save(out / name, quality=95, exif=upright.getexif())  # GPS kept, orientation gone
        else:
            (out / name).symlink_to((image_dir / name).resolve())
    return out


@dataclass
class Features:
    """Where the front end took its features from and how it matched them."""

    folder: Path  # image_dir, or upright copies of EXIF-rotated photos
    rich: bool  # affine, domain-size-pooled SIFT and guided matching
    pairs: str  # which pairs were matched (matching_mode)


def extract_and_match(scene: Scene, image_dir: Path, database: Path, opts: FrontEndOptions) -> Features:
    """SIFT into a fresh COLMAP database, then matching of the pairs matching_mode chooses (the photos'
    GPS positions read only where spatial matching may be chosen) with verification, classic or rich
    as opts.features says."""
    if opts.features not in FEATURES:
        raise FieldsError(f"sfm features must be one of {', '.join(FEATURES)}, not {opts.features!r}")
    names = _image_names(scene, image_dir)
    pairs = matching_mode(len(names), opts, lambda: count_located([image_dir / n for n in names]))
    image_dir = upright_images(names, image_dir, database.parent)
    peak, extracted = pycolmap.FeatureExtractionOptions().sift.peak_threshold, []
    if opts.features != "classic":
        peak, extracted = peak_threshold(scene, image_dir, names, database, opts, peak)
    if opts.features != "rich":
        if extracted:
            done = set(extracted)
            extract_more(scene, image_dir, [n for n in names if n not in done], database, opts, peak)
        else:
            _extract(scene, image_dir, names, database, opts, rich=False, peak_threshold=peak)
        _match(database, opts, False, pairs)
        if opts.features == "classic" or not wants_rich(weak_views(database, opts.strong_pair), len(names), opts):
            return Features(image_dir, False, pairs)
        log.info("sfm: few verified matches for some views; extracting and matching again with affine, "
                 "domain-size-pooled SIFT and guided matching")
    _extract(scene, image_dir, names, database, opts, rich=True, peak_threshold=peak)
    _match(database, opts, True, pairs)
    return Features(image_dir, True, pairs)


def match_again(scene: Scene, database: Path, opts: FrontEndOptions, features: Features) -> None:
    """The database's matches made again, its keypoints kept, with the shared camera of `scene` (a
    focal length now known) as the prior of matching and verification."""
    set_focal_prior(database, True, _simple_radial(scene.cameras[0].K))
    with pycolmap.Database.open(str(database)) as db:
        db.clear_two_view_geometries()
        db.clear_matches()
    _match(database, opts, features.rich, features.pairs)


def peak_sample(names: list[str], size: int) -> list[str]:
    """At most `size` of the names, evenly spread through them (all of them when they are few)."""
    if len(names) <= size:
        return list(names)
    return [names[i] for i in np.linspace(0, len(names) - 1, size).round().astype(int)]


def peak_threshold(scene: Scene, image_dir: Path, names: list[str], database: Path, opts: FrontEndOptions,
                   peak: float) -> tuple[float, list[str]]:
    """SIFT's peak threshold for small or plain images: `peak`, divided by 3 while the median image has
    fewer than min_keypoints keypoints, and by 3 again unless the first division reached min_keypoints
    or added < 20 % of them. Counted with classic SIFT (which finds about as many keypoints as the
    rich one at a fraction of its cost) on peak_sample images spread through the set. Also the images
    whose classic SIFT at that threshold `database` now holds (the sample, every image when the sample
    is all of them, or none), so that they are not extracted again."""
    if opts.min_keypoints <= 0:
        return peak, []
    sample = peak_sample(names, opts.peak_sample)
    counts = np.median(_extract(scene, image_dir, names, database, opts, rich=False, peak_threshold=peak, only=sample))
    if counts >= opts.min_keypoints:
        return peak, sample
    lower = np.median(_extract(scene, image_dir, names, database, opts, rich=False, peak_threshold=peak / 3.0,
                               only=sample))
    if lower >= opts.min_keypoints or lower < 1.2 * counts:
        return peak / 3.0, sample
    return peak / 9.0, []


def _extract(scene: Scene, image_dir: Path, names: list[str], database: Path, opts: FrontEndOptions,
             rich: bool, peak_threshold: float, only: list[str] | None = None) -> np.ndarray:
    """SIFT (affine-adapted and domain-size pooled when rich) into a fresh database that holds every
    image of `names`, of `only` those (all by default); returns the keypoint count per image extracted."""
    reader, _, mode = _sift_options(scene, opts, rich, peak_threshold)
    if database.exists():
        database.unlink()
    # the images entered first, in name order: parallel extraction alone numbers them as its threads
    # finish, and GLOMAP's result depends on that order (a run would not repeat)
    pycolmap.Database.open(str(database)).close()
    pycolmap.import_images(database, image_dir, camera_mode=mode, image_names=names, options=reader)
    todo = names if only is None else only
    extract_more(scene, image_dir, todo, database, opts, peak_threshold, rich)
    if len(scene.cameras) == 1 and not scene.cameras[0].focal_known:
        set_focal_prior(database, False)
    return keypoint_counts(database, todo)


def extract_more(scene: Scene, image_dir: Path, names: list[str], database: Path, opts: FrontEndOptions,
                 peak_threshold: float, rich: bool = False) -> None:
    """SIFT of the images `names` (already in the database, with no keypoints yet)."""
    if not names:
        return
    reader, extraction, mode = _sift_options(scene, opts, rich, peak_threshold)
    pycolmap.extract_features(database, image_dir, image_names=names, camera_mode=mode, reader_options=reader,
                              extraction_options=extraction, device=pycolmap.Device.cpu)


def _sift_options(scene: Scene, opts: FrontEndOptions, rich: bool, peak_threshold: float
                  ) -> tuple[pycolmap.ImageReaderOptions, pycolmap.FeatureExtractionOptions, pycolmap.CameraMode]:
    """pycolmap's reader options (one SIMPLE_RADIAL camera from the scene's when it has one), SIFT options
    and camera mode."""
    reader = pycolmap.ImageReaderOptions()
    single = len(scene.cameras) == 1
    if single:
        reader.camera_model = "SIMPLE_RADIAL"
        reader.camera_params = ",".join(str(p) for p in _simple_radial(scene.cameras[0].K))
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = opts.max_image_size
    extraction.sift.max_num_features = opts.max_num_features
    extraction.sift.estimate_affine_shape = rich
    extraction.sift.domain_size_pooling = rich
    extraction.sift.peak_threshold = peak_threshold
    return reader, extraction, pycolmap.CameraMode.SINGLE if single else pycolmap.CameraMode.AUTO


def matching_mode(num_images: int, opts: FrontEndOptions, located: Callable[[], int] = lambda: 0) -> str:
    """Which pairs to match: opts.matching, with auto resolved by the number of images and of those
    with a GPS position (`located()`, called only where spatial matching may be chosen: it reads
    every photo's EXIF)."""
    if opts.matching not in MATCHING:
        raise FieldsError(f"sfm matching must be one of {', '.join(MATCHING)}, not {opts.matching!r}")
    if opts.matching in ("retrieval", "auto") and opts.retrieval_neighbours < 1:
        raise FieldsError(f"sfm retrieval_neighbours must be at least 1, not {opts.retrieval_neighbours}")
    if opts.matching in ("spatial", "auto") and (opts.spatial_neighbours < 1 or opts.spatial_max_distance_m <= 0):
        raise FieldsError("sfm spatial matching needs spatial_neighbours >= 1 and spatial_max_distance_m > 0, "
                          f"not {opts.spatial_neighbours} and {opts.spatial_max_distance_m}")
    if opts.matching == "spatial" and (missing := num_images - located()) > 0:
        raise FieldsError(f"sfm matching spatial needs a GPS position in every photo's EXIF; {missing} "
                          f"of the {num_images} photos have none (use auto, retrieval or exhaustive)")
    if opts.matching != "auto":
        return opts.matching
    if num_images <= opts.exhaustive_up_to:
        return "exhaustive"
    return "spatial" if located() == num_images else "retrieval"


def _match(database: Path, opts: FrontEndOptions, rich: bool, mode: str) -> None:
    """Matching of the pairs `mode` (matching_mode) says, with geometric verification, guided when rich."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.guided_matching = rich
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = opts.seed
    if mode == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching, verification_options=verification,
                                  device=pycolmap.Device.cpu)
    elif mode == "retrieval":
        match_by_retrieval(database, opts.retrieval_neighbours, opts.sequential_overlap, matching, verification,
                           opts.seed)
    elif mode == "spatial":
        match_spatially(database, opts.spatial_neighbours, opts.spatial_max_distance_m, matching, verification)
    else:
        sequence = pycolmap.SequentialPairingOptions()
        sequence.overlap = max(1, opts.sequential_overlap)
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=sequence,
                                  verification_options=verification, device=pycolmap.Device.cpu)


def _simple_radial(K: np.ndarray) -> list[float]:
    """COLMAP's SIMPLE_RADIAL parameters (f, cx, cy, k) for pinhole intrinsics K, no distortion."""
    return [0.5 * (K[0, 0] + K[1, 1]), float(K[0, 2]), float(K[1, 2]), 0.0]


def set_focal_prior(database: Path, known: bool, params: list[float] | None = None) -> None:
    """Mark the focal length of the database's cameras as a prior (known) or a default guess, after
    setting their parameters to `params` when given."""
    with pycolmap.Database.open(str(database)) as db:
        for cam in db.read_all_cameras():
            if params is not None:
                cam.params = params
            cam.has_prior_focal_length = known
            db.update_camera(cam)


def focal_unknown(database: Path) -> bool:
    """Whether some camera of the database has no focal-length prior."""
    with pycolmap.Database.open(str(database)) as db:
        return any(not cam.has_prior_focal_length for cam in db.read_all_cameras())


def weak_views(database: Path, strong_pair: int) -> list[str]:
    """Images of a matched COLMAP database with fewer than 2 verified pairs of >= strong_pair inliers."""
    with pycolmap.Database.open(str(database)) as db:
        names = {im.image_id: im.name for im in db.read_all_images()}
        pair_ids, geometries = db.read_two_view_geometries()
    strong = dict.fromkeys(names, 0)
    for pid, geo in zip(pair_ids, geometries):
        if len(geo.inlier_matches) >= strong_pair:
            for i in pycolmap.pair_id_to_image_pair(pid):
                strong[i] += 1
    return [names[i] for i, n in strong.items() if n < 2]


def wants_rich(weak: list[str], num_images: int, opts: FrontEndOptions) -> bool:
    """Whether the weak views (weak_views) are enough of the set for the rich front end to pay: in a
    dense set a view with few strong pairs still sees many registered views' points."""
    enough = len(weak) >= opts.weak_share * num_images
    if weak and not enough:
        log.info(f"sfm: {len(weak)} of {num_images} views have fewer than 2 pairs of {opts.strong_pair} "
                 f"verified matches ({', '.join(weak[:5])}{', ...' if len(weak) > 5 else ''}); "
                 f"fewer than {opts.weak_share:.0%} of the set, so COLMAP's SIFT is kept")
    return bool(weak) and enough


def keypoint_counts(database: Path, names: list[str] | None = None) -> np.ndarray:
    """Keypoints per image in a COLMAP database (of `names`, in that order, when given)."""
    with pycolmap.Database.open(str(database)) as db:
        ids = {im.name: im.image_id for im in db.read_all_images()}
        return np.array([db.read_keypoints(ids[n]).shape[0] for n in (list(ids) if names is None else names)])
