"""fields: the neural-field library, usable on its own.

Sub-packages by concern: `encodings` (hash grid, tri-plane, dense grid, Fourier features, spherical
harmonics), `nn` (MLP, CAM, Gaussian RBF decoders and the builder that composes a field from a dict),
`neus` (SDF and radiance fields, occupancy grid, NeuS rendering, regularisers, the training loop and its
checkpoints), `geometry` (rays and projection, sphere tracing, the level-set snap, normalisation),
`export` (mesh, video), `eval` (held-out views, images, meshes), `fit` (an image, a mesh's SDF, FreSh),
`scene` (the Scene that travels sfm -> fields -> export) and `io_utils` (atomic writes).

The names below are the public API; they are imported on first use, so `import fields` stays cheap.
"""

from __future__ import annotations

from fields.lazy_exports import lazy_exports

_PUBLIC = {
    "Scene": "fields.scene", "Camera": "fields.scene", "View": "fields.scene", "Points": "fields.scene",
    "Similarity": "fields.scene", "FieldsError": "fields.errors",
    "Field": "fields.nn.builder", "build_field": "fields.nn.builder", "resolve_spec": "fields.nn.builder",
    "HashGrid": "fields.encodings.hash_grid", "TriPlane": "fields.encodings.triplane",
    "DenseGrid": "fields.encodings.dense_grid", "FourierFeatures": "fields.encodings.fourier",
    "PositionalEncoding": "fields.encodings.fourier", "SphericalHarmonics": "fields.encodings.spherical_harmonics",
    "MLP": "fields.nn.mlp", "CAMMLP": "fields.nn.cam", "GaussianRBF": "fields.nn.rbf",
    "NeuSModel": "fields.neus.rendering", "SDFField": "fields.neus.sdf_field", "RadianceField": "fields.neus.radiance_field",
    "TrainConfig": "fields.neus.train", "train": "fields.neus.train", "load_model": "fields.neus.train",
    "render_image": "fields.neus.render_view", "export_mesh": "fields.export.mesh",
    "fit_image": "fields.fit.image", "fit_sdf": "fields.fit.sdf",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
