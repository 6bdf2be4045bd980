"""Pose networks: from a ``--model`` value to a running network.

``weights`` resolves the value once (path, metadata, sha256), ``load`` builds a network on a runtime behind the
``protocol``: ``keras_net`` (TensorFlow) or ``lite_net`` (LiteRT, no TensorFlow) from the exports that ``export``
writes into the ``lite_cache``. ``checkpoints`` reads and fetches published PyTorch checkpoints.
"""
