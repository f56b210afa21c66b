"""Genre classifiers: classic scikit-learn models (``classic``) and Keras networks (``neural``)."""
