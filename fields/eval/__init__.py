"""Scores: PSNR / SSIM of images, held-out views rendered from a field, surfaces against a reference mesh."""
