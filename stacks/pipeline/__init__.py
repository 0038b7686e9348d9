"""The pipeline layer: the production container pipeline."""
