"""What a trained field is turned into: a mesh in the input frame (marching cubes, cleanup, colours) and
videos along an orbit or a camera path."""
