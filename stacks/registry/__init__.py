"""The registry layer: where the pipeline pushes the application image."""
