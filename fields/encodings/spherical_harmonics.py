"""Real spherical harmonics of a unit direction (the view-direction encoding of instant-ngp / NeuS2).

A ReLU MLP fed the raw direction bends slowly over the sphere; the first `degree`**2 real SH
basis functions (degree 4: bands 0-3, 16 values) give it smooth lobes to combine, which is what
specular highlights need. The basis is orthonormal over the sphere.
"""

from __future__ import annotations

import torch
from torch import nn

# normalisation constants of the real SH bands 0-3 (sqrt((2l+1)/4pi * (l-|m|)!/(l+|m|)!) folded with
# the polynomial's own factors)
_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, 0.31539156525252005, 0.5462742152960396)
_C3 = (0.5900435899266435, 2.890611442640554, 0.4570457994644658, 0.3731763325901154, 1.445305721320277)


def real_sh(d: torch.Tensor, degree: int) -> torch.Tensor:
    """(N, degree**2) real SH values at unit directions d (N, 3), bands 0 .. degree - 1 (degree 1-4)."""
    if not 1 <= degree <= 4:
        raise ValueError("spherical harmonics degree must be 1 to 4")
    x, y, z = d.unbind(-1)
    out = [torch.full_like(x, _C0)]
    if degree > 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree > 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [_C2[0] * x * y, -_C2[0] * y * z, _C2[1] * (3.0 * zz - 1.0), -_C2[0] * x * z, _C2[2] * (xx - yy)]
    if degree > 3:
        out += [_C3[0] * y * (3.0 * xx - yy), _C3[1] * x * y * z, _C3[2] * y * (1.0 - 5.0 * zz),
                _C3[3] * z * (5.0 * zz - 3.0), _C3[2] * x * (1.0 - 5.0 * zz), _C3[4] * z * (xx - yy),
                _C3[0] * x * (xx - 3.0 * yy)]
    return torch.stack(out, dim=-1)


class SphericalHarmonics(nn.Module):
    """Encoding of unit directions by the real SH basis of bands 0 .. degree - 1."""

    def __init__(self, degree: int = 4) -> None:
        super().__init__()
        self.degree = degree
        self.out_dim = degree * degree

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return real_sh(d, self.degree)
