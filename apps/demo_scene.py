"""The demo scene: a ray-cast render of textured primitives on a textured ground, from a YAML description.

`python -m apps.demo_scene assets/demo` re-creates assets/demo/{images/, transforms.json, surface.ply}
from assets/demo/scene.yaml. The surface is the zero level set of the same analytic SDF that is
ray-cast, so the images, poses and ground-truth surface agree exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from fields.scene import Camera, Scene, View, look_at

# ----------------------------------------------------------------------------- primitives (exact SDFs)


def sdf_sphere(p: np.ndarray, o: dict) -> np.ndarray:
    return np.linalg.norm(p - np.asarray(o["center"]), axis=-1) - o["radius"]


def sdf_box(p: np.ndarray, o: dict) -> np.ndarray:
    r = o.get("rounding", 0.0)
    q = np.abs(p - np.asarray(o["center"])) - (np.asarray(o["half"]) - r)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return outside + inside - r


def sdf_torus(p: np.ndarray, o: dict) -> np.ndarray:
    q = p - np.asarray(o["center"])
    ring = np.linalg.norm(q[..., :2], axis=-1) - o["major"]
    return np.sqrt(ring**2 + q[..., 2] ** 2) - o["minor"]


def sdf_cylinder(p: np.ndarray, o: dict) -> np.ndarray:
    q = p - np.asarray(o["center"])
    d = np.stack([np.linalg.norm(q[..., :2], axis=-1) - o["radius"], np.abs(q[..., 2]) - o["half_height"]], -1)
    return np.minimum(d.max(-1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=-1)


PRIMITIVES = {"sphere": sdf_sphere, "box": sdf_box, "torus": sdf_torus, "cylinder": sdf_cylinder}


def object_distances(p: np.ndarray, objects: list[dict]) -> np.ndarray:
    """(N, n_objects) signed distances."""
    return np.stack([PRIMITIVES[o["type"]](p, o) for o in objects], axis=-1)


def scene_sdf(p: np.ndarray, objects: list[dict]) -> np.ndarray:
    """The union of all objects: the ground-truth surface is its zero level set."""
    return object_distances(p, objects).min(axis=-1)


# ----------------------------------------------------------------------------- solid textures


def value_noise(p: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Smooth 3-D value noise in [0, 1] from a periodic random lattice."""
    n = lattice.shape[0]
    i = np.floor(p).astype(np.int64)
    f = p - i
    f = f * f * (3.0 - 2.0 * f)
    out = np.zeros(p.shape[:-1])
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (f[..., 0] if dx else 1 - f[..., 0]) * (f[..., 1] if dy else 1 - f[..., 1]) * (f[..., 2] if dz else 1 - f[..., 2])
                out += w * lattice[(i[..., 0] + dx) % n, (i[..., 1] + dy) % n, (i[..., 2] + dz) % n]
    return out


def albedo(p: np.ndarray, tex: dict, lattice: np.ndarray) -> np.ndarray:
    """Two colours mixed by fractal noise, with an optional checker, so SIFT finds corners everywhere."""
    scale = tex.get("scale", 8.0)
    v, amp, total = np.zeros(p.shape[:-1]), 1.0, 0.0
    for octave in range(tex.get("octaves", 4)):
        v += amp * value_noise(p * scale * 2**octave + 17.0 * octave, lattice)
        total += amp
        amp *= 0.55
    v = np.clip((v / total - 0.5) * tex.get("contrast", 2.5) + 0.5, 0.0, 1.0)
    if tex.get("checker"):
        c = np.floor(p * tex["checker"]).astype(np.int64).sum(-1) % 2
        v = 0.7 * v + 0.3 * c
    a, b = np.asarray(tex["colors"][0]), np.asarray(tex["colors"][1])
    return a * (1.0 - v[..., None]) + b * v[..., None]


# ----------------------------------------------------------------------------- ray casting


def sphere_trace(origins: np.ndarray, dirs: np.ndarray, objects: list[dict], t_max: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each ray to the first surface hit, and a hit mask."""
    t = np.zeros(len(origins))
    active = np.ones(len(origins), bool)
    hit = np.zeros(len(origins), bool)
    for _ in range(256):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        d = scene_sdf(origins[idx] + t[idx, None] * dirs[idx], objects)
        done = d < 1e-5 * (1.0 + t[idx])
        hit[idx[done]] = True
        t[idx] += d
        escaped = t[idx] > t_max
        active[idx[done | escaped]] = False
    return t, hit


def shade(p: np.ndarray, desc: dict, rng_lattices: list[np.ndarray]) -> np.ndarray:
    """Lambertian colour of surface points under one directional light plus ambient."""
    objects = desc["objects"]
    eps = 1e-4
    grad = np.stack([scene_sdf(p + eps * e, objects) - scene_sdf(p - eps * e, objects) for e in np.eye(3)], -1)
    n = grad / np.maximum(np.linalg.norm(grad, axis=-1, keepdims=True), 1e-12)
    light = np.asarray(desc["light"]["direction"], float)
    light = light / np.linalg.norm(light)
    ambient = desc["light"]["ambient"]
    lambert = ambient + (1.0 - ambient) * np.clip(n @ light, 0.0, 1.0)
    which = object_distances(p, objects).argmin(-1)
    col = np.zeros_like(p)
    for k, o in enumerate(objects):
        m = which == k
        col[m] = albedo(p[m], o["texture"], rng_lattices[k])
    return col * lambert[:, None]


def sky(dirs: np.ndarray, desc: dict) -> np.ndarray:
    up = np.clip(dirs[:, 2], 0.0, 1.0)[:, None]
    return np.asarray(desc["sky"]["horizon"]) * (1.0 - up) + np.asarray(desc["sky"]["zenith"]) * up


def render(desc: dict, camera: Camera, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 render, supersampled s x s per pixel."""
    s = desc["image"].get("supersample", 2)
    w, h = camera.width, camera.height
    sub = (np.arange(s) + 0.5) / s
    u = (np.arange(w)[:, None] + sub[None]).reshape(-1)
    v = (np.arange(h)[:, None] + sub[None]).reshape(-1)
    uu, vv = np.meshgrid(u, v)
    pix = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size)], -1)
    d_cam = pix @ np.linalg.inv(camera.K).T
    d_world = d_cam @ R  # R^T d
    d_world /= np.linalg.norm(d_world, axis=-1, keepdims=True)
    o_world = np.broadcast_to(-R.T @ t, d_world.shape).copy()
    depth, hit = sphere_trace(o_world, d_world, desc["objects"])
    col = sky(d_world, desc)
    lattices = lattices_for(desc)
    col[hit] = shade(o_world[hit] + depth[hit, None] * d_world[hit], desc, lattices)
    img = col.reshape(h * s, w * s, 3).reshape(h, s, w, s, 3).mean(axis=(1, 3))
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def lattices_for(desc: dict) -> list[np.ndarray]:
    rng = np.random.default_rng(desc["seed"])
    return [rng.random((64, 64, 64)) for _ in desc["objects"]]


# ----------------------------------------------------------------------------- cameras and outputs


def demo_cameras(desc: dict) -> tuple[Camera, list[tuple[np.ndarray, np.ndarray]]]:
    """The shared camera and the ring of world-to-camera poses the description asks for."""
    im = desc["image"]
    cam = Camera.from_fov(im["width"], im["height"], np.deg2rad(im["fov_x_deg"]))
    c = desc["cameras"]
    target, up = np.asarray(c["target"], float), np.asarray(c["up"], float)
    poses = []
    for ring_i, ring in enumerate(c["rings"]):
        el = np.deg2rad(ring["elevation_deg"])
        for k in range(ring["count"]):
            az = 2 * np.pi * (k + 0.5 * ring_i) / ring["count"]
            center = target + c["radius"] * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
            poses.append(look_at(center, target, up))
    return cam, poses


def surface_mesh(desc: dict, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes mesh (vertices, faces) of the scene SDF over the description's bounds."""
    from skimage.measure import marching_cubes

    lo, hi = np.asarray(desc["bounds"][0], float), np.asarray(desc["bounds"][1], float)
    axes = [np.arange(lo[k] - spacing, hi[k] + 2 * spacing, spacing) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    vol = scene_sdf(grid.reshape(-1, 3), desc["objects"]).reshape(grid.shape[:3])
    verts, faces, _, _ = marching_cubes(vol, 0.0, spacing=(spacing,) * 3)
    return verts + np.array([a[0] for a in axes]), faces


def make_demo(folder: Path) -> Scene:
    """Render every view and write images/, transforms.json (ground truth) and surface.ply."""
    import trimesh

    from sfm.io.transforms_json import write_transforms

    desc = yaml.safe_load((folder / "scene.yaml").read_text())
    cam, poses = demo_cameras(desc)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    views = []
    for i, (R, t) in enumerate(poses):
        name = f"view_{i:03d}.jpg"
        Image.fromarray(render(desc, cam, R, t)).save(folder / "images" / name, quality=desc["image"]["jpeg_quality"])
        views.append(View(name, folder / "images" / name, 0, R, t))
        print(f"rendered {name}", file=sys.stderr)
    scene = Scene([cam], views)
    write_transforms(scene, folder / "transforms.json")
    verts, faces = surface_mesh(desc, desc["surface_spacing"])
    trimesh.Trimesh(verts, faces, process=False).export(folder / "surface.ply")
    return scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="folder holding scene.yaml")
    make_demo(ap.parse_args().folder)


if __name__ == "__main__":
    main()
