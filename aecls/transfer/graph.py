"""Graph-based few-label learning on frozen codes: Poisson learning (Calder et al., ICML 2020) from
the `graphlearning` package on a k-nearest-neighbour graph of the codes (built with annoy).

Why a graph: with 100 labels a classifier sees 100 points; the graph lets every unlabelled image
carry the labels along the data's own neighbourhoods. Two variants, so the table says which:

- `graph` (transductive): the test images are nodes of the graph, beside the training split; the
  labels propagate to them directly (the paper's setting).
- `graph_inductive`: the graph holds the training split only; each test image then takes the
  majority of the propagated labels of its k nearest training images (it never shaped the graph).

Pure functions of arrays; the sweep gives them the codes (`Classifier.codes_once`).
"""

from __future__ import annotations

import numpy as np

from aecls.errors import AeclsError

K = 10  # neighbours of each node: the paper's and the earlier check's choice


def _gl():
    try:
        import graphlearning as gl
    except ImportError as e:  # a dependency of aecls; missing only in an odd environment
        raise AeclsError(f"the graph methods need the graphlearning package ({e}); "
                         "pip install graphlearning annoy") from e
    return gl


def normalised(z: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length: neighbours by angle, as the codes' scale differs per encoder."""
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def poisson(codes: np.ndarray, labelled: np.ndarray, labels: np.ndarray, k: int = K) -> np.ndarray:
    """Labels of every row of `codes` by Poisson learning from the rows `labelled` (their
    `labels`) on the k-NN graph of the codes; (N,) int."""
    gl = _gl()
    w = gl.weightmatrix.knn(normalised(codes).astype(np.float64), k)
    return np.asarray(gl.ssl.poisson(w).fit_predict(labelled, labels))


def accuracy(train: np.ndarray, train_y: np.ndarray, labelled: np.ndarray, test: np.ndarray,
             test_y: np.ndarray, transductive: bool, k: int = K) -> float:
    """Test accuracy of Poisson learning from the training split's rows `labelled` (positions in
    `train`; only their labels are read) on frozen codes, test images in the graph or not."""
    if transductive:
        pred = poisson(np.vstack([train, test]), labelled, train_y[labelled], k)[len(train):]
    else:
        from sklearn.neighbors import NearestNeighbors

        propagated = poisson(train, labelled, train_y[labelled], k)
        near = NearestNeighbors(n_neighbors=k).fit(normalised(train)).kneighbors(
            normalised(test), return_distance=False)
        votes = np.apply_along_axis(np.bincount, 1, propagated[near], minlength=int(train_y.max()) + 1)
        pred = votes.argmax(1)
    return float((pred == test_y).mean())
