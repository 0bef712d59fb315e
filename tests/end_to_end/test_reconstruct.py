"""`fields reconstruct` end to end on the demo scene (fast preset): poses, mesh, video and exports,
held-out views, a rerun that resumes; and its handling of missing or too few inputs."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import trimesh
from PIL import Image
from synthetic import DEMO

from apps.cli import main
from fields.scene import Scene
from sfm.io import load_scene, read_colmap, read_transforms
from sfm.pose_metrics import compare_poses, umeyama


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["reconstruct", str(DEMO / "images"), "-o", str(out), "--preset", "fast"]) == 0
    return out


def bbox_iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[0], b[0]), np.minimum(a[1], b[1])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return float(inter / (np.prod(a[1] - a[0]) + np.prod(b[1] - b[0]) - inter))


@pytest.mark.slow
def test_every_view_registered_with_accurate_rotations(run):
    report = compare_poses(Scene.load(run), read_transforms(DEMO / "transforms.json"))
    assert report.registered == report.total == 32
    assert report.rotation_error_mean_deg < 1.0


@pytest.mark.slow
def test_mesh_lies_on_the_ground_truth_surface_in_the_input_frame(run):
    pred, gt = Scene.load(run), read_transforms(DEMO / "transforms.json")
    names = {v.name: v for v in pred.views}
    to_gt = umeyama(np.array([names[v.name].center for v in gt.views]), np.array([v.center for v in gt.views]))
    mesh = trimesh.load(run / "mesh.ply", process=False)
    assert len(mesh.faces) > 1000 and mesh.visual.vertex_colors is not None
    verts = to_gt.apply(np.asarray(mesh.vertices))
    surface = trimesh.load(DEMO / "surface.ply", process=False)
    assert bbox_iou(np.array([verts.min(0), verts.max(0)]), surface.bounds) > 0.5


@pytest.mark.slow
def test_video_and_pose_exports(run):
    frames = imageio.mimread(run / "video.mp4")
    assert len(frames) == 24 and frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0
    assert np.std(frames[0]) > 5  # a picture, not a flat frame
    for kind in ("depth", "normal"):
        other = imageio.mimread(run / f"video_{kind}.mp4")
        assert len(other) == 24 and other[0].shape == frames[0].shape and np.std(other[0]) > 5
    scene = Scene.load(run)
    for other in (read_transforms(run / "transforms.json"), read_colmap(run / "sparse" / "0"), load_scene(run)):
        by_name = other.view_by_name()
        for v in scene.views:
            w = other.views[by_name[v.name]]
            assert np.allclose(v.R, w.R, atol=1e-9) and np.allclose(v.t, w.t, atol=1e-9)
    assert (run / "sparse.ply").is_file() and (run / "config.yaml").is_file() and (run / "log.txt").is_file()


@pytest.mark.slow
def test_the_orbit_written_as_a_camera_path_renders_the_same_video(run, tmp_path):
    # camera_path.json is in the input frame: rendering it goes input -> normalised frame again
    size = str(imageio.mimread(run / "video.mp4")[0].shape[1])
    assert main(["export", "video", str(run), "--path", str(run / "camera_path.json"), "--size", size,
                 "-o", str(tmp_path / "again.mp4")]) == 0
    a, b = imageio.mimread(run / "video.mp4"), imageio.mimread(tmp_path / "again.mp4")
    assert len(a) == len(b) == 24
    assert np.abs(a[5].astype(float) - b[5].astype(float)).mean() < 2.0


@pytest.mark.slow
def test_held_out_views_are_evaluated_and_the_surface_measured(run, capsys):
    scene = Scene.load(run)
    held = [v.name for v in scene.views if v.split == "test"]
    assert held == sorted(v.name for v in scene.views)[::8]  # every 8th, never trained on
    capsys.readouterr()
    assert main(["eval", "views", str(run), "--surface", str(DEMO / "surface.ply"),
                 "--align", str(DEMO / "transforms.json")]) == 0
    import json

    d = json.loads((run / "view_metrics.json").read_text())
    assert d["views"] == 4 and d["psnr"] > 18.0 and 0.3 < d["ssim"] <= 1.0
    assert d["surface"]["chamfer"] < 0.08  # the fast preset's coarse surface (the default preset: benchmarks/end_to_end.py)


@pytest.mark.slow
def test_rerun_resumes_without_recomputing(run):
    ckpt = run / "checkpoints" / "field.pt"
    before = (ckpt.stat().st_mtime_ns, (run / "mesh.ply").stat().st_mtime_ns)
    assert main(["reconstruct", str(DEMO / "images"), "-o", str(run), "--preset", "fast"]) == 0
    assert (ckpt.stat().st_mtime_ns, (run / "mesh.ply").stat().st_mtime_ns) == before


def test_reconstruct_scores_its_held_out_views_and_sums_up(run):
    import json

    from apps.pipeline import summary

    stages = json.loads((run / "stages.json").read_text())
    assert {"sfm", "train", "mesh", "video", "eval"} <= set(stages)
    metrics = json.loads((run / "view_metrics.json").read_text())
    assert metrics["views"] == 4 and metrics["psnr"] > 15.0
    text = summary(run, stages)
    assert "registered 32/32 views" in text and "held-out views: PSNR" in text and "time per stage" in text


def test_missing_or_too_small_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "nope"), "-o", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "r1").exists()
    few = tmp_path / "few"
    few.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(few / f"{i}.png")
    assert main(["reconstruct", str(few), "-o", str(tmp_path / "r2")]) == 2
    assert "at least 3" in capsys.readouterr().err
