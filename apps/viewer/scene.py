"""What the viewer's 3-D scene shows of the reconstruction: camera frustums with thumbnails, the
sparse points, a mesh file, and where the browser's camera starts.

Everything is shown in the input frame (the frame of sparse/0, transforms.json and mesh.ply)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from apps.viewer.camera import rotation_to_wxyz, scene_extent
from fields.errors import FieldsError
from fields.images import composite
from fields.scene import Scene


class SceneDisplay:
    """Part of Viewer: the pipeline's SfM reports, and drawing them. The reports (from the pipeline's
    thread) only store the poses and points and mark the cameras dirty; `_push_cameras` draws them on
    the background thread."""

    def show_inputs(self, scene: Scene) -> None:
        """The photos about to be reconstructed (names and images, no poses yet)."""
        self.scene = scene
        self.set_stage(f"sfm: {len(scene.views)} images", 0.0)

    def sfm_update(self, snap) -> None:
        """An sfm.neural.state.SfMSnapshot: frustums appear as views register and move in bundle adjustment."""
        self.poses = dict(snap.poses)
        self.cameras = list(snap.cameras)
        self.points, self.point_rgb = snap.points, None
        total = len(self.scene.views) if self.scene else max(len(self.poses), 1)
        self.set_stage(f"sfm: {snap.stage} ({len(self.poses)}/{total} views)", len(self.poses) / total)
        self._cameras_changed()

    def show_scene(self, scene: Scene, stage: str | None = None) -> None:
        """A posed Scene (after SfM, or a finished run): cameras, coloured points, the view's frame."""
        self.scene = scene
        self.poses = {i: (scene.views[i].R, scene.views[i].t) for i in scene.registered()}
        self.cameras = [scene.camera_of(i) for i in range(len(scene.views))]
        self.points = scene.points.xyz if len(scene.points) else np.zeros((0, 3))
        self.point_rgb = scene.points.rgb if len(scene.points) else None
        if stage:
            self.set_stage(stage, 1.0)
        self._aimed = False
        self._cameras_changed()

    def show_mesh(self, path: Path) -> None:
        """A mesh file in the input frame (with vertex colours when it has them). Once training is over
        it replaces the live mesh for good (the background thread stops meshing)."""
        import trimesh

        mesh = trimesh.load(path, force="mesh", process=False)
        with self._mesh_lock:
            self._mesh_file = True
            self._mesh_handle = self.server.scene.add_mesh_trimesh("/mesh", mesh, visible=bool(self._show_mesh.value))

    def _cameras_changed(self) -> None:
        with self._cond:
            self._dirty_cameras = True
            self._cond.notify()

    def _aim(self, centres: np.ndarray) -> None:
        """Point the initial camera and the open browsers' cameras at the scene the cameras look at."""
        if not self.poses:
            return
        up = -np.mean([R[1] for R, _ in self.poses.values()], axis=0)
        up = up / max(float(np.linalg.norm(up)), 1e-9)
        target = np.median(self.points, axis=0) if len(self.points) else centres.mean(0)
        eye = centres.mean(0) + 1.5 * (centres.mean(0) - target) + 1.0 * scene_extent(centres) * up
        cam = self.server.initial_camera
        cam.position, cam.look_at, cam.up = tuple(eye), tuple(target), tuple(up)
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.up_direction = tuple(up)
                client.camera.position = tuple(eye)
                client.camera.look_at = tuple(target)
        self._aimed = True

    def _thumbnail(self, i: int) -> np.ndarray | None:
        if i not in self._thumbs and self.scene is not None and self.scene.views[i].path is not None:
            try:
                img, _ = self.scene.image(i, self.opts.thumbnail)
            except (FieldsError, OSError):
                return None
            self._thumbs[i] = np.clip(np.round(composite(img) * 255.0), 0, 255).astype(np.uint8)
        return self._thumbs.get(i)

    def _push_cameras(self) -> None:
        poses, cameras = dict(self.poses), list(self.cameras)
        centres = np.array([-R.T @ t for R, t in poses.values()]) if poses else np.zeros((0, 3))
        ext = scene_extent(centres, self.points)
        for i, (R, t) in poses.items():
            cam = cameras[i] if i < len(cameras) else None
            if cam is None:
                continue
            fov = 2.0 * math.atan(0.5 * cam.height / cam.K[1, 1])
            self.server.scene.add_camera_frustum(
                f"/cameras/{i:04d}", fov=fov, aspect=cam.width / cam.height, scale=0.08 * ext,
                thickness=0.004 * ext, color=(230, 80, 40), image=self._thumbnail(i), format="jpeg",
                wxyz=rotation_to_wxyz(R.T), position=-R.T @ t)
        if not self._aimed:
            self._aim(centres)
        if len(self.points):
            rgb = self.point_rgb if self.point_rgb is not None else np.array([60, 200, 90], np.uint8)
            self.server.scene.add_point_cloud("/points", np.asarray(self.points, np.float32), rgb,
                                              point_size=0.01 * ext, point_shape="circle")
