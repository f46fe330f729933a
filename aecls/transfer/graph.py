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
- Poisson learning with class priors, and Poisson-MBO (Calder et al. 2020, both): the same
  solution, its labels then chosen so that each class holds its prior share of the nodes (the
  paper's volume projection); Poisson-MBO follows it with MBO steps that keep those volumes. The
  paper reports both above plain Poisson at very few labels. The priors are the labelled subset's
  class shares (uniform for aecls's stratified subsets): no label outside the subset is read.

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

from aecls.core.errors import AeclsError

K = 10  # neighbours of each node: the paper's and the earlier check's choice

# algorithm -> (graphlearning's class, with class priors)
ALGORITHMS = {"poisson": ("poisson", False), "laplace": ("laplace", False),
              "poisson_priors": ("poisson", True), "poisson_mbo": ("poisson_mbo", True)}
# The algorithms `transfer labelling` measures unless told: Poisson-MBO is opt-in, minutes a solve on
# the graph of the training and validation images (graphlearning's volume projections).
FAST = tuple(a for a in ALGORITHMS if a != "poisson_mbo")
# sweep method -> (algorithm, test images in the graph)
METHODS = {
    "graph": ("poisson", True),
    "graph_inductive": ("poisson", False),
    "graph_laplace": ("laplace", True),
    "graph_laplace_inductive": ("laplace", False),
    "graph_priors": ("poisson_priors", True),
    "graph_priors_inductive": ("poisson_priors", False),
    "graph_mbo": ("poisson_mbo", True),
    "graph_mbo_inductive": ("poisson_mbo", False),
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


def knn(codes: np.ndarray, k: int = K):
    """The sparse weights of the k-NN graph of `codes` (rows) by angle."""
    return _gl().weightmatrix.knn(normalised(codes).astype(np.float64), k)


def _solve(algorithm: str, w, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n, m) class scores of a connected graph, labels 0..m-1 all present; the row's argmax is the
    node's class. graphlearning's own decision, its scores rescaled to [0, 1] and, with class
    priors, weighted per class (its `predict`), so a margin between two classes means the same for
    every node of the graph."""
    name, priors = ALGORITHMS[algorithm]
    cls = getattr(_gl().ssl, name)
    model = cls(w, class_priors=np.bincount(labels) / len(labels)) if priors else cls(w)
    prob = np.asarray(model.fit(labelled, labels), dtype=np.float64)
    scores = prob - prob.min()
    scores /= max(scores.max(), 1e-12)
    weights = np.asarray(model.weights, dtype=np.float64) if priors else 1.0
    return scores * weights


def propagate(algorithm: str, w, labelled: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Every node's (n, `classes`) scores by `algorithm` (a key of ALGORITHMS) on the graph `w`
    (sparse weights) from `labels` at nodes `labelled`: argmax is the node's class, top minus
    second (`margin`) how sure the graph is. Its solvers assume a connected graph: on one in
    pieces (the codes of a collapsed or barely trained encoder) Poisson learning's equation has no
    solution and its conjugate gradient runs to a 100,000-iteration cap (tens of seconds) to
    return noise. So each piece is solved on its own: with labels of two or more classes by the
    algorithm (the classes renumbered 0..m-1, as graphlearning counts them), with one class that
    class, with none the most common label at zero margin. A connected graph is solved whole."""
    from scipy.sparse.csgraph import connected_components

    out = np.zeros((w.shape[0], classes))
    n, piece = connected_components(w, directed=False)
    if n == 1:
        present = np.unique(labels)
        out[:, present] = _solve(algorithm, w, labelled, np.searchsorted(present, labels))
        return out
    out[:, np.bincount(labels).argmax()] = 1e-9  # pieces without a label
    for c in range(n):
        nodes = np.flatnonzero(piece == c)  # sorted: positions below by searchsorted
        inside = piece[labelled] == c
        present = np.unique(labels[inside])
        if len(present) == 1:
            out[nodes] = 0
            out[nodes, present[0]] = 1
        elif len(present) > 1:
            sub = w[nodes][:, nodes]
            out[nodes] = 0
            out[np.ix_(nodes, present)] = _solve(algorithm, sub, np.searchsorted(nodes, labelled[inside]),
                                                 np.searchsorted(present, labels[inside]))
    return out


def margin(scores: np.ndarray) -> np.ndarray:
    """(n,) top score minus the second of each row of (n, C) `scores` (propagate's)."""
    top2 = np.sort(scores, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def kept(margin: np.ndarray, labelled: np.ndarray, keep: float) -> np.ndarray:
    """(n,) bool: the nodes `labelled`, and the fraction `keep` of the others whose `margin` is
    largest (ties at the cut kept)."""
    out = np.zeros(len(margin), dtype=bool)
    out[labelled] = True
    others = ~out
    if others.any():
        cut = np.quantile(margin[others], 1 - keep) if keep < 1 else -np.inf
        out |= others & (margin >= cut)
    return out


def repeated(keep: np.ndarray, labelled: np.ndarray, share: float) -> np.ndarray:
    """Positions of the training images a run trains on, in order: those `keep` marks, with the
    rows `labelled` repeated so that they are about `share` of the whole (0: each once). With
    few labels among many pseudo-labels the given labels would otherwise be a few steps' worth."""
    used = np.flatnonzero(keep)
    again = copies(len(used) - len(labelled), len(labelled), share) - 1
    return np.concatenate([used, np.tile(labelled, again)])


def copies(others: int, labelled: int, share: float) -> int:
    """How many times `labelled` images appear beside `others` to be about `share` of them all."""
    if share <= 0 or others <= 0:
        return 1
    return max(1, round(share * others / ((1 - share) * labelled)))


def certainty(scores: np.ndarray) -> np.ndarray:
    """(n,) 1 - the normalised entropy of each row of (n, C) `scores` (propagate's), the row
    scaled to sum 1 (a row of zeros: uniform, certainty 0): Iscen et al. (CVPR 2019)'s weight of a
    propagated label, 1 for one class, 0 for all alike."""
    p = np.clip(scores, 0, None)
    total = p.sum(1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1), 1 / p.shape[1])
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(1)
    return 1 - entropy / np.log(p.shape[1])


def weighted_labels(scores: np.ndarray, labelled: np.ndarray, labels: np.ndarray,
                    weighting: str, keep: float = 1.0, among: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(label, weight) of every node: the subset's own labels at `labelled` (weight 0 here: they
    are drawn apart, `drawn`), elsewhere the class the scores give, weighted by nothing ("none":
    1) or ("certainty") its `certainty` times the inverse frequency of its class among them, so
    that each class weighs the same in all (Iscen et al.'s class balance); only the fraction
    `keep` the scores are surest of (`kept`, as `pseudo` keeps them), or the nodes `among` where
    given, weigh anything."""
    y = scores.argmax(1)
    y[labelled] = labels
    w = np.ones(len(y)) if weighting == "none" else certainty(scores)
    others = kept(margin(scores), labelled, keep) if among is None else among.copy()
    others[labelled] = False
    if weighting != "none":
        counts = np.bincount(y[others], minlength=scores.shape[1]).astype(float)
        w = w / np.maximum(counts, 1)[y]
    w[~others] = 0
    return y, w


def drawn(weights: np.ndarray, labelled: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Positions of the images a round trains on: as many as there are unlabelled images of
    weight > 0, drawn with replacement in proportion to `weights`, then the `labelled` rows
    repeated to be `share` of the whole (`copies`); where the weights are all equal, no draw:
    each of them once, as `repeated` gives them (so such a round trains on `pseudo`'s images, in
    its order). Drawing by weight trains on the weighted loss in expectation, with no weight in the
    classifier's loss."""
    others = np.flatnonzero(weights > 0)
    if len(others) and not np.allclose(weights[others], weights[others][0]):
        rng = np.random.default_rng(seed)
        others = np.sort(rng.choice(len(weights), size=len(others), p=weights / weights.sum()))
        return np.concatenate([others, np.tile(labelled, copies(len(others), len(labelled), share))])
    used = weights > 0
    used[labelled] = True
    return repeated(used, labelled, share)


class Graphs:
    """The k-NN graphs of one set of codes, built once for every labelled subset: over the
    training split and the test images (transductive), over the training split alone, and each
    test image's k nearest training images (for the inductive vote)."""

    def __init__(self, train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray,
                 k: int = K) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.train_y, self.test_y, self.n = train_y, test_y, len(train)
        self.classes = int(max(train_y.max(), test_y.max())) + 1
        self.with_test, self.train_only = knn(np.vstack([train, test]), k), knn(train, k)
        self.near = NearestNeighbors(n_neighbors=k).fit(normalised(train)).kneighbors(
            normalised(test), return_distance=False)

    def accuracy(self, labelled: np.ndarray, method: str) -> float:
        """Test accuracy of the graph method `method` (a key of METHODS) from the training rows
        `labelled` (positions; only their labels are read)."""
        algorithm, transductive = METHODS[method]
        labels = self.train_y[labelled]
        if transductive:
            pred = propagate(algorithm, self.with_test, labelled, labels, self.classes).argmax(1)[self.n :]
        else:
            propagated = self.train_y.copy()
            if len(labelled) < self.n:  # with every image labelled there is nothing to propagate
                propagated = self.pseudo_labels(labelled, algorithm)[0]
            # A labelled image votes with its own label: Poisson learning's solution need not
            # reproduce the labels it was given (they are sources, not fixed values).
            propagated[labelled] = labels
            votes = np.apply_along_axis(np.bincount, 1, propagated[self.near], minlength=self.classes)
            pred = votes.argmax(1)
        return float((pred == self.test_y).mean())

    def pseudo_labels(self, labelled: np.ndarray, algorithm: str) -> tuple[np.ndarray, np.ndarray]:
        """(class, margin) of every training image by `algorithm` on the graph of the training
        split alone (no test image shapes it), from the training rows `labelled` (only their
        labels are read)."""
        scores = self.scores(labelled, algorithm)
        return scores.argmax(1), margin(scores)

    def scores(self, labelled: np.ndarray, algorithm: str) -> np.ndarray:
        """(n, C) class scores of every training image by `algorithm` on the graph of the training
        split alone, from the training rows `labelled` (only their labels are read)."""
        return propagate(algorithm, self.train_only, labelled, self.train_y[labelled], self.classes)

    def training_labels(self, labelled: np.ndarray, algorithm: str, keep: float = 1.0
                        ) -> tuple[np.ndarray, np.ndarray]:
        """What a classifier may train on from the labelled training rows `labelled`: (a label for
        every training image, which images to use). Their own label for the rows `labelled`, the
        class `algorithm` gives the others, of which the fraction `keep` the graph is surest of
        (`kept`). No label outside `labelled` is read."""
        y = self.train_y.copy()
        if len(labelled) == self.n:  # every label known: nothing to propagate
            return y, np.ones(self.n, dtype=bool)
        y, margin = self.pseudo_labels(labelled, algorithm)
        y[labelled] = self.train_y[labelled]
        return y, kept(margin, labelled, keep)

