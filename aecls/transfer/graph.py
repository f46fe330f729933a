"""Graph-based few-label learning on frozen codes: Poisson learning (Calder et al., ICML 2020) from
the `graphlearning` package on a k-nearest-neighbour graph of the codes (built with annoy).

Why a graph: with 100 labels a classifier sees 100 points; the graph lets every unlabelled image
carry the labels along the data's own neighbourhoods. Two variants, so the table says which:

- `graph` (transductive): the test images are nodes of the graph, beside the training split; the
  labels propagate to them directly (the paper's setting).
- `graph_inductive`: the graph holds the training split only; each test image then takes the
  majority of the propagated labels of its k nearest training images (it never shaped the graph).

Arrays in, accuracy out; the sweep gives it the codes (`Classifier.codes_once`).
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


class Graphs:
    """The k-NN graphs of one set of codes, built once for every labelled subset: over the
    training split and the test images (transductive), over the training split alone, and each
    test image's k nearest training images (for the inductive vote)."""

    def __init__(self, train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray,
                 k: int = K) -> None:
        from sklearn.neighbors import NearestNeighbors

        gl = _gl()
        self.train_y, self.test_y, self.n = train_y, test_y, len(train)
        both = normalised(np.vstack([train, test])).astype(np.float64)
        self.with_test = gl.weightmatrix.knn(both, k)
        self.train_only = gl.weightmatrix.knn(both[: self.n], k)
        self.near = NearestNeighbors(n_neighbors=k).fit(both[: self.n]).kneighbors(
            both[self.n :], return_distance=False)

    def accuracy(self, labelled: np.ndarray, transductive: bool) -> float:
        """Test accuracy of Poisson learning from the training rows `labelled` (positions; only
        their labels are read), test images in the graph or not."""
        gl, labels = _gl(), self.train_y[labelled]
        if transductive:
            pred = np.asarray(gl.ssl.poisson(self.with_test).fit_predict(labelled, labels))[self.n :]
        else:
            propagated = np.asarray(gl.ssl.poisson(self.train_only).fit_predict(labelled, labels))
            classes = int(self.train_y.max()) + 1
            votes = np.apply_along_axis(np.bincount, 1, propagated[self.near], minlength=classes)
            pred = votes.argmax(1)
        return float((pred == self.test_y).mean())
