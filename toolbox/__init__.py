"""The operator's tools behind ``tasks.py``: plan offline, deploy, check, verify.

The second room of the repository. ``shared/`` is the library every layer's program imports
(layer graph, settings, config readers, names, tags, contracts, IAM builders); this package is
what an operator runs. Arrows go one way: the toolbox imports the library and the policy pack;
neither imports the toolbox, and a layer's program never does (``tests/test_layers.py``).
"""
