"""Input encodings of coordinate networks: multiresolution hash grid (tiny-cuda-nn layout; PyTorch, C/OpenMP
kernels on the CPU, tiny-cuda-nn on CUDA when importable), tri-plane, dense grid, Fourier features and
positional encoding, spherical harmonics of directions."""
