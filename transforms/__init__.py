"""The pipeline's stages as Beam composite transforms, one module per stage."""
