"""The hash grid (fields/encodings/hash_grid.py) against tiny-cuda-nn's formulas, computed independently
with Python integers."""

from __future__ import annotations

import math

import torch

from fields.encodings.hash_grid import HashGrid, grid_index, level_layout


def test_default_levels_match_the_tcnn_formulas():
    b = math.exp(math.log(2048 / 16) / 15)
    layout = level_layout(16, 16, b, 19, 3)
    for lvl, L in enumerate(layout):
        scale = 16 * b**lvl - 1
        res = math.ceil(scale) + 1
        assert L["resolution"] == res
        assert L["size"] == min(2**19, (res**3 + 7) // 8 * 8)
        assert L["hashed"] == (res**3 > 2**19)
    # by hand: b = 128^(1/15) = 1.3819; scales 15, 21.11, 29.55 -> resolutions 16, 23, 31
    assert [L["resolution"] for L in layout[:3]] == [16, 23, 31]
    assert sum(L["size"] for L in layout) == layout[-1]["offset"] + layout[-1]["size"]


def test_hash_index_matches_uint32_xor_of_primes():
    corners = torch.tensor([[0, 0, 0], [1, 2, 3], [2047, 1000, 5], [123456, 7, 99999]])
    got = grid_index(corners, 2048, 2**19, hashed=True)
    for c, g in zip(corners.tolist(), got.tolist()):
        h = (c[0] * 1) & 0xFFFFFFFF
        h ^= (c[1] * 2654435761) & 0xFFFFFFFF
        h ^= (c[2] * 805459861) & 0xFFFFFFFF
        assert g == h % 2**19


def test_dense_level_indexes_x_fastest():
    got = grid_index(torch.tensor([[1, 2, 3]]), 16, 4096, hashed=False)
    assert got.item() == 1 + 2 * 16 + 3 * 256


def test_interpolation_reproduces_a_linear_function_and_supports_double_backward():
    enc = HashGrid(dim=3, n_levels=1, n_features=1, log2_hashmap_size=12, base_resolution=16, per_level_scale=1.0)
    L = enc.levels[0]
    res = L["resolution"]
    with torch.no_grad():  # table value = x coordinate of the grid vertex, in input units
        idx = torch.arange(res**3)
        gx = idx % res
        enc.params[:, 0] = 0
        enc.params[idx, 0] = (gx.float() - 0.5) / L["scale"]
    x = torch.rand(64, 3) * 0.8 + 0.1
    x.requires_grad_(True)
    y = enc(x)[:, 0]
    assert torch.allclose(y, x[:, 0], atol=1e-5)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert torch.allclose(g[:, 0], torch.ones(64), atol=1e-4)
    g.pow(2).sum().backward()  # the Eikonal path: gradients of gradients reach the table
    assert enc.params.grad is not None


def test_cpu_kernels_match_the_reference_path_values_and_gradients():
    import pytest

    from fields.encodings import hash_grid_kernels

    if hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: the CPU kernels are not built and the reference path is used")
    torch.manual_seed(0)
    for dim, interp in ((3, "linear"), (3, "smoothstep"), (2, "linear")):
        enc = HashGrid(dim=dim, n_levels=6, n_features=2, log2_hashmap_size=10, base_resolution=4, finest_resolution=200,
                       interpolation=interp)
        assert any(L["hashed"] for L in enc.levels) and not all(L["hashed"] for L in enc.levels)
        with torch.no_grad():
            enc.params.uniform_(-1, 1)
        enc.set_active_levels(5)
        x = torch.rand(3000, dim, requires_grad=True)
        y = enc(x)
        y_ref = enc.reference(x, enc.params)
        g = torch.randn_like(y)
        gx, gp = torch.autograd.grad(y, (x, enc.params), g)
        gx_ref, gp_ref = torch.autograd.grad(y_ref, (x, enc.params), g)
        assert torch.allclose(y, y_ref, atol=1e-5)
        assert torch.allclose(gp, gp_ref, atol=1e-4)
        assert torch.allclose(gx, gx_ref, rtol=1e-3, atol=1e-3 * gx_ref.abs().max().item())
        # second derivatives (Eikonal) through the C double backward equal those of the reference path:
        # with respect to the table, the upstream gradient (the decoder's weights) and x itself
        w = torch.randn(y.shape[1], requires_grad=True)
        def eikonal(out):
            (h,) = torch.autograd.grad((out * w).sum(), x, create_graph=True)
            return torch.autograd.grad((h.pow(2).sum(-1) - 1.0).pow(2).sum(), (enc.params, w, x))
        got, ref = eikonal(enc(x)), eikonal(enc.reference(x, enc.params))
        for a, b in zip(got, ref):
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4 * b.abs().max().item())


def test_cpu_kernel_gradients_are_the_same_to_the_last_bit_on_every_call():
    """Two threads sum the levels' d/dx in a fixed order: the neural SfM's poses then repeat exactly
    from run to run (with levels handed to whichever thread was free they did not)."""
    import pytest

    from fields.encodings import hash_grid_kernels

    if hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: the CPU kernels are not built and the reference path is used")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        enc = HashGrid(dim=3, n_levels=8, n_features=2, log2_hashmap_size=12, base_resolution=4, finest_resolution=256)
        with torch.no_grad():
            enc.params.uniform_(-1, 1)
        x = torch.rand(20000, 3, requires_grad=True)
        g = torch.randn(20000, enc.out_dim)
        w = torch.randn(enc.out_dim)
        runs = []
        for _ in range(30):
            (gx,) = torch.autograd.grad(enc(x), x, g)
            (h,) = torch.autograd.grad((enc(x) * w).sum(), x, create_graph=True)
            (gx2,) = torch.autograd.grad(h.pow(2).sum(), x)
            runs.append((gx, gx2))
        assert all(torch.equal(a, runs[0][0]) and torch.equal(b, runs[0][1]) for a, b in runs)
    finally:
        torch.set_num_threads(threads)


def test_tcnn_backend_matches_the_reference_and_shares_checkpoints():
    import pytest

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the tiny-cuda-nn backend cannot run")
    pytest.importorskip("tinycudann", reason="tinycudann is not installed (optional extra 'cuda')")
    torch.manual_seed(0)
    enc = HashGrid(dim=3, n_levels=8, n_features=2, log2_hashmap_size=14, base_resolution=4, finest_resolution=300).cuda()
    with torch.no_grad():
        enc.params.uniform_(-1, 1)
    assert enc._tcnn_module() is not None, "tcnn's HashGrid has a different parameter count than this layout"
    x = torch.rand(5000, 3, device="cuda")
    y = enc(x)
    assert torch.allclose(y, enc.reference(x, enc.params), atol=1e-4)
    cpu = HashGrid(dim=3, n_levels=8, n_features=2, log2_hashmap_size=14, base_resolution=4, finest_resolution=300)
    cpu.load_state_dict({k: v.cpu() for k, v in enc.state_dict().items()})  # a tcnn checkpoint on the CPU path
    assert torch.allclose(cpu(x.cpu()), y.cpu(), atol=1e-4)


def test_an_empty_batch_gives_an_empty_encoding_and_gradient():
    grid = HashGrid(dim=3, n_levels=4, n_features=2, log2_hashmap_size=12, base_resolution=4, finest_resolution=32)
    x = torch.zeros(0, 3, requires_grad=True)
    out = grid(x)
    assert out.shape == (0, 8)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    assert g.shape == (0, 3)


def test_parameter_only_backward_skips_unused_gradients_and_matches_the_reference():
    """An Eikonal loss as training computes it: the kernels leave out the table's gradient while the
    SDF gradient is taken, and the points' gradient in the backward to the parameters; the
    parameters' gradients equal those of the reference path, and the points get no .grad."""
    import pytest

    from fields.encodings import hash_grid_kernels
    from fields.encodings.hash_grid import backward_to_parameters

    if hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: the CPU kernels are not built and the reference path is used")
    torch.manual_seed(1)
    enc = HashGrid(dim=3, n_levels=6, n_features=2, log2_hashmap_size=10, base_resolution=4, finest_resolution=200)
    with torch.no_grad():
        enc.params.uniform_(-1, 1)
    head = torch.nn.Linear(enc.out_dim, 1)
    opt = torch.optim.SGD(list(enc.parameters()) + list(head.parameters()), lr=0.0)
    asked = []
    real = hash_grid_kernels.will_use
    hash_grid_kernels.will_use = lambda t, needs: asked.append((tuple(t.shape), real(t, needs))) or asked[-1][1]
    try:
        grads = []
        for kernels in (True, False):
            enc.use_kernels = kernels
            torch.manual_seed(2)
            x = torch.rand(2000, 3).requires_grad_(True)
            f = head(enc(x))[:, 0]
            (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
            opt.zero_grad(set_to_none=True)
            backward_to_parameters(((g.norm(dim=-1) - 1.0) ** 2).mean() + f.abs().mean(), opt)
            assert x.grad is None
            grads.append([p.grad.clone() for p in (enc.params, head.weight, head.bias)])
    finally:
        hash_grid_kernels.will_use = real
    table = tuple(enc.params.shape)
    assert (table, False) in asked and ((2000, 3), False) in asked and (table, True) in asked
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4 * b.abs().max().item())


def test_encoding_with_jacobian_matches_the_reference_and_its_parameter_gradient():
    """forward_with_jacobian (one C pass for the features and d features / dx) against the reference
    path's values and autograd Jacobian, and its backward (one scatter) against autograd's gradient
    of a loss on both; 3-D with 2 features (the compiled special case), 2-D with 4, smoothstep, a
    masked level."""
    import pytest

    from fields.encodings import hash_grid_kernels

    if hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: the CPU kernels are not built and the reference path is used")
    torch.manual_seed(2)
    for dim, feats, interp in ((3, 2, "linear"), (3, 2, "smoothstep"), (2, 4, "linear")):
        enc = HashGrid(dim=dim, n_levels=6, n_features=feats, log2_hashmap_size=10, base_resolution=4,
                       finest_resolution=200, interpolation=interp)
        with torch.no_grad():
            enc.params.uniform_(-1, 1)
        enc.set_active_levels(5)
        x = torch.rand(2000, dim)
        out, jac = enc.forward_with_jacobian(x)
        xr = x.clone().requires_grad_(True)
        ref = enc.reference(xr, enc.params)
        jac_ref = torch.stack([torch.autograd.grad(ref[:, j].sum(), xr, create_graph=True)[0]
                               for j in range(ref.shape[1])], 2)
        assert out.shape == ref.shape and jac.shape == (2000, dim, ref.shape[1])
        assert torch.allclose(out, ref, atol=1e-4)
        assert torch.allclose(jac, jac_ref, atol=1e-4 * jac_ref.abs().max().item())
        assert not jac[..., 5 * feats:].any()  # the masked level
        g_out, g_jac = torch.randn_like(out), torch.randn_like(jac)
        (gp,) = torch.autograd.grad((out * g_out).sum() + (jac * g_jac).sum(), enc.params)
        (gp_ref,) = torch.autograd.grad((ref * g_out).sum() + (jac_ref * g_jac).sum(), enc.params)
        assert torch.allclose(gp, gp_ref, atol=1e-4 * gp_ref.abs().max().item())


def test_encoding_with_jacobian_is_left_to_autograd_where_points_need_a_gradient():
    enc = HashGrid(dim=3, n_levels=4, n_features=2, log2_hashmap_size=12, base_resolution=4, finest_resolution=32)
    assert enc.forward_with_jacobian(torch.rand(10, 3, requires_grad=True)) is None
    enc.use_kernels = False
    assert enc.forward_with_jacobian(torch.rand(10, 3)) is None
