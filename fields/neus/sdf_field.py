"""An SDF field: coordinates plus an encoding into a decoder that outputs a distance and a geometry feature.

The encoding is any from fields/encodings (hash grid by default, tri-plane, dense grid) and the
decoder an MLP (optionally with CAM) or a Gaussian RBF layer. Every variant starts as the sphere
|x| - init_radius: the MLP through the geometric initialisation, the RBF decoder by predicting a
residual on top of that sphere with its output layer at zero.
"""

from __future__ import annotations

import torch
from torch import nn

from fields.encodings.hash_grid import HashGrid
from fields.errors import FieldsError
from fields.nn import sdf_decoder
from fields.nn.cam import CAMMLP
from fields.nn.mlp import MLP, sphere_init
from fields.nn.rbf import GaussianRBF
from fields.nn.softplus import Softplus, softplus_and_slope

SDF_DECODERS = ("mlp", "rbf")


class SDFField(nn.Module):
    """f(x) for x in the normalised frame ([-1, 1]^3); starts as the sphere |x| - init_radius.

    cam: CAM grids over the three coordinates after each hidden layer, without the per-sample
    normalisation (it would undo the sphere initialisation; with identity grids the field is then
    exactly the plain MLP).
    """

    def __init__(self, encoding: nn.Module | None = None, hidden: int = 64, depth: int = 1, n_features: int = 15,
                 init_radius: float = 0.5, decoder: str = "mlp", cam: bool = False, cam_resolution: int = 16,
                 rbf_units: int = 64) -> None:
        super().__init__()
        if decoder not in SDF_DECODERS:
            raise FieldsError(f"unknown SDF decoder {decoder!r} ({', '.join(SDF_DECODERS)})")
        if cam and decoder != "mlp":
            raise FieldsError("CAM modulates an MLP decoder")
        self.encoding = encoding if encoding is not None else HashGrid(dim=3, n_levels=8, n_features=2,
                                                                        log2_hashmap_size=16, base_resolution=16,
                                                                        finest_resolution=256)
        self.n_features, self.kind, self.init_radius = n_features, decoder, init_radius
        in_dim = 3 + self.encoding.out_dim
        if decoder == "rbf":
            self.decoder = GaussianRBF(self.encoding.out_dim, rbf_units, 1 + n_features)
            with torch.no_grad():
                self.decoder.out.weight.zero_()
                self.decoder.out.bias.zero_()
        elif cam:
            self.decoder = CAMMLP(in_dim, 1 + n_features, hidden, depth, act="softplus", coord_dims=(0, 1, 2),
                                  grid_resolution=cam_resolution, normalise=False)
            sphere_init(self.decoder.mlp, n_coords=3, radius=init_radius)
        else:
            self.decoder = MLP(in_dim, 1 + n_features, hidden, depth, act="softplus")
            sphere_init(self.decoder, n_coords=3, radius=init_radius)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sdf (N,), feature (N, n_features))."""
        x01 = (x + 1.0) * 0.5
        f = self.encoding(x01)
        if self.kind == "rbf":
            out = self.decoder(f)
            return out[:, 0] + x.norm(dim=-1) - self.init_radius, out[:, 1:]
        h = torch.cat([x, f], dim=-1)
        out = self.decoder(h, x01) if isinstance(self.decoder, CAMMLP) else self.decoder(h)
        return out[:, 0], out[:, 1:]

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        """The distance alone: with a plain MLP decoder only the output layer's first row runs (tracing,
        occupancy grids and meshes read no feature; the other rows are most of that layer's work); with
        one softplus layer and no gradient wanted, fused into one C pass after the first product."""
        if self.kind != "mlp" or not isinstance(self.decoder, MLP):
            return self.forward(x)[0]
        h = torch.cat([x, self.encoding((x + 1.0) * 0.5)], dim=-1)
        lins = self.decoder.linears
        if (len(lins) == 2 and isinstance(self.decoder.act, Softplus) and not torch.is_grad_enabled()
                and sdf_decoder.available(h, lins[0].weight)):
            return sdf_decoder.distance(h, lins[0].weight, lins[0].bias, lins[1].weight, lins[1].bias,
                                        self.decoder.act.beta)
        h = self.decoder.hidden(h)
        last = self.decoder.linears[-1]
        return torch.nn.functional.linear(h, last.weight[:1], last.bias[:1])[:, 0]

    def set_active_levels(self, n: int) -> None:
        """Coarse-to-fine: only the first n levels of a multi-level encoding contribute (others ignore it)."""
        if hasattr(self.encoding, "set_active_levels"):
            self.encoding.set_active_levels(n)

    def _analytic_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(sdf, feature, gradient) with the gradient written out: the encoding's Jacobian (from its
        kernels) times the MLP's chain of weights and softplus slopes. A loss on it then needs first
        derivatives alone: forward, gradient and backward for 20k samples took 41 ms against 67 through
        autograd's double backward. None unless the decoder is a plain softplus MLP and the encoding
        has a Jacobian kernel."""
        if self.kind != "mlp" or not isinstance(self.decoder, MLP) or not isinstance(self.decoder.act, Softplus):
            return None
        jacobian = getattr(self.encoding, "forward_with_jacobian", None)
        enc_jac = jacobian((x + 1.0) * 0.5) if jacobian is not None else None
        if enc_jac is None:
            return None
        enc, jac = enc_jac
        h, slopes, beta = torch.cat([x, enc], dim=-1), [], self.decoder.act.beta
        lins = self.decoder.linears
        if len(lins) == 2 and sdf_decoder.available(h, jac, lins[0].weight):  # one hidden layer: fused passes
            out, g = sdf_decoder.SoftplusSDFDecoder.apply(h, jac, lins[0].weight, lins[0].bias, lins[1].weight,
                                                          lins[1].bias, beta, x.shape[1], 0.5)
            return out[:, 0], out[:, 1:], g
        for lin in lins[:-1]:
            h, slope = softplus_and_slope(lin(h), beta)
            slopes.append(slope)
        out = lins[-1](h)
        u = lins[-1].weight[:1]  # d sdf / d (last hidden layer), then back layer by layer
        for lin, slope in zip(reversed(lins[:-1]), reversed(slopes)):
            u = (u * slope) @ lin.weight
        # x enters raw and through the encoding of (x + 1) / 2
        g = u[:, :3] + 0.5 * (jac * u[:, None, 3:]).sum(2)
        return out[:, 0], out[:, 1:], g

    def cam_parameters(self) -> list[nn.Parameter]:
        """CAM's modulation grids (trained at 10x the learning rate, as in the paper); empty without CAM."""
        return self.decoder.grid_parameters() if isinstance(self.decoder, CAMMLP) else []

    def gradient(self, x: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sdf, feature, d sdf / dx), keeping the graph for an Eikonal loss when asked (in the
        parameters; x is a constant)."""
        analytic = self._analytic_gradient(x.detach())
        if analytic is not None:
            sdf, feat, g = analytic
            return sdf, feat, (g if create_graph else g.detach())
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            sdf, feat = self.forward(x)
            (g,) = torch.autograd.grad(sdf.sum(), x, create_graph=create_graph)
        return sdf, feat, g
