"""Published SimpleBaseline checkpoints: read PyTorch files safely (``torchfile``), know where to fetch them
(``registry``), download them checksummed (``download``) and convert them to Keras (``convert``, TensorFlow)."""
