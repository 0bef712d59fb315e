"""The matching front end (pycolmap): SIFT extraction, pair selection (exhaustive, sequential, retrieval,
spatial), verified matches, and tracks."""
