"""Graph-based few-label learning on frozen codes, from the `graphlearning` package on a
k-nearest-neighbour graph of the codes (built with annoy).

Why a graph: with 100 labels a classifier sees 100 points; the graph lets every unlabelled image
carry the labels along the data's own neighbourhoods. Two algorithms, because each fails where the
other works:

- Poisson learning (Calder et al., ICML 2020): made for very few labels, where Laplace learning's
  solution goes flat away from the labelled nodes. But it does not gain from more labels: on the
  Fashion-MNIST codes here it stays near its 100-label accuracy at 10,000 labels (RESULTS.md).
- Laplace learning (label propagation, Zhu et al. 2003): the harmonic extension of the labels,
  which keeps improving as labels are added.

And two variants of each, so the table says which:

- transductive (`graph`, `graph_laplace`): the test images are nodes of the graph, beside the
  training split; the labels propagate to them directly (the papers' setting).
- inductive (`graph_inductive`, `graph_laplace_inductive`): the graph holds the training split
  only; each test image then takes the majority label of its k nearest training images, their
  own label where known, else the propagated one (it never shaped the graph).

Arrays in, accuracy out; the sweep gives it the codes (`Classifier.codes_once`).
"""

from __future__ import annotations

import numpy as np

from aecls.errors import AeclsError

K = 10  # neighbours of each node: the paper's and the earlier check's choice

# sweep method -> (graphlearning's algorithm, test images in the graph)
METHODS = {
    "graph": ("poisson", True),
    "graph_inductive": ("poisson", False),
    "graph_laplace": ("laplace", True),
    "graph_laplace_inductive": ("laplace", False),
}


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


def propagate(algorithm: str, w, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every node's class by graphlearning's `algorithm` on the graph `w` (sparse weights) from
    `labels` at nodes `labelled`. Its solvers assume a connected graph: on one in pieces (the codes
    of a collapsed or barely trained encoder) Poisson learning's equation has no solution and its
    conjugate gradient runs to a 100,000-iteration cap (tens of seconds) to return noise. So each
    piece is solved on its own: with labels of two or more classes by the algorithm (the classes
    renumbered 0..m-1, as graphlearning counts them), with one class that class, with none the most
    common label. A connected graph is solved whole, as before."""
    from scipy.sparse.csgraph import connected_components

    learner = getattr(_gl().ssl, algorithm)
    n, piece = connected_components(w, directed=False)
    if n == 1:
        return np.asarray(learner(w).fit_predict(labelled, labels))
    pred = np.full(w.shape[0], np.bincount(labels).argmax())
    for c in range(n):
        nodes = np.flatnonzero(piece == c)  # sorted: positions below by searchsorted
        inside = piece[labelled] == c
        classes = np.unique(labels[inside])
        if len(classes) == 1:
            pred[nodes] = classes[0]
        elif len(classes) > 1:
            sub = w[nodes][:, nodes]
            out = learner(sub).fit_predict(np.searchsorted(nodes, labelled[inside]),
                                           np.searchsorted(classes, labels[inside]))
            pred[nodes] = classes[np.asarray(out)]
    return pred


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

    def accuracy(self, labelled: np.ndarray, method: str) -> float:
        """Test accuracy of the graph method `method` (a key of METHODS) from the training rows
        `labelled` (positions; only their labels are read)."""
        algorithm, transductive = METHODS[method]
        labels = self.train_y[labelled]
        if transductive:
            pred = propagate(algorithm, self.with_test, labelled, labels)[self.n :]
        else:
            propagated = self.train_y.copy()
            if len(labelled) < self.n:  # with every image labelled there is nothing to propagate
                propagated = propagate(algorithm, self.train_only, labelled, labels)
            # A labelled image votes with its own label: Poisson learning's solution need not
            # reproduce the labels it was given (they are sources, not fixed values).
            propagated[labelled] = labels
            classes = int(self.train_y.max()) + 1
            votes = np.apply_along_axis(np.bincount, 1, propagated[self.near], minlength=classes)
            pred = votes.argmax(1)
        return float((pred == self.test_y).mean())
