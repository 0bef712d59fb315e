"""Decoders and the field builder: MLP (ReLU or Softplus, sphere init), CAM-modulated MLP, Gaussian RBF
layer, `build_field` composing an encoding and a decoder from a plain dict, and a small Adam."""
