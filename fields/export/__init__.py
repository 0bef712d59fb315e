"""What a trained field is turned into: a mesh in the input frame (marching cubes, cleanup, colours) and
videos along an orbit or a camera path."""

# the mesh files export_mesh writes (here, not in mesh.py, so the settings can name them without torch)
MESH_FORMATS = ("ply", "obj", "glb")
