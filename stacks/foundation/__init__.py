"""The foundation layer: what every other layer encrypts with, stores in and notifies through."""
