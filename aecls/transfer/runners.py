"""What the sweep's methods run (aecls.transfer.methods): a classifier trained on a labelled subset
(from scratch, on the frozen encoder, fine-tuning it), FixMatch, the graph methods on frozen
codes, the classifier trained on graph pseudo-labels, and logistic regression, each on the data
of one (budget, seed). Shared by the methods' runners, so each method file is a few lines."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from aecls.data import FashionMNISTDataModule
from aecls.data.subsets import stratified_subset
from aecls.evaluation.baselines import flat
from aecls.modules import OptimConfig
from aecls.modules.classifier import Classifier
from aecls.modules.semisupervised import FixMatch, PseudoLabelMonitor, published_optim
from aecls.training.train import TrainConfig, build_module, train
from aecls.transfer import graph
from aecls.transfer.config import SweepConfig
from aecls.transfer.labelling import frozen_codes, joined_codes
from aecls.transfer.methods import Outcome, Run

TESTED = ("train", "test")  # the splits a sweep run reads: it selects nothing on validation


def _codes_once(module, dm: FashionMNISTDataModule) -> FashionMNISTDataModule:
    """The data of a frozen-encoder run: its tested splits' codes, computed once."""
    return module.codes_once(dm, splits=TESTED)


def scored_on(dm: FashionMNISTDataModule, score: str) -> FashionMNISTDataModule:
    """`dm` (set up) whose test split is the images runs are scored on: the test set, or with
    `score` "val" the validation images in its place (a sweep that chooses settings never sees
    the test set)."""
    dm.setup()
    if score == "val":
        dm.splits["test"] = dm.splits["val"]
    return dm


def classifier_spec(cfg: SweepConfig, method: str, net) -> dict:
    """The sweep's classifier for `method` (scratch: `net` from random weights; frozen, finetune:
    the sweep's encoder), as build_module reads it."""
    return {"family": "classifier", "init_args": dict(
        net=net if method == "scratch" else None, mode=method,
        encoder_path=None if method == "scratch" else cfg.encoder, head_hidden=cfg.head_hidden,
        encoder_lr_scale=cfg.encoder_lr_scale, optim=OptimConfig(lr=cfg.lr, scheduler="onecycle"))}


def fit_classifier(cfg: SweepConfig, method: str, dm: FashionMNISTDataModule, net, seed: int,
                   passes: int | None = None, steps: int | None = None, model=None,
                   test: str | None = "final"):
    """Train `method`'s classifier (scratch, frozen or finetune; or continue `model`, a built one)
    on `dm`'s training split for `steps` (default: `passes`, else the sweep's epochs, over it, at
    least min_steps); returns train()'s result (tested on `dm`'s test split unless `test` is None)."""
    n = len(dm.splits["train"][0])
    steps = steps or max(cfg.min_steps, (passes or cfg.epochs) * max(1, n // cfg.batch_size))
    given, model = model, classifier_spec(cfg, method, net)
    codes = method == "frozen" and not cfg.augment  # the head trains on codes computed once
    run = TrainConfig(model=model if given is None else given, data=dm, seed=seed, test=test,
                      trainer={"max_epochs": -1, "max_steps": steps, "limit_val_batches": 0},
                      data_hook=_codes_once if codes else None)
    return train(run)


def supervised(r: Run, mode: str) -> float:
    """The accuracy of `mode`'s classifier (scratch, frozen, finetune) trained on the subset."""
    return _accuracy(fit_classifier(r.cfg, mode, r.dm, r.net, r.seed))


def _accuracy(done) -> float:
    return float(done.test["test/acc"])


def fixmatch_module(cfg: SweepConfig, seed: int, start: Classifier | None = None) -> FixMatch:
    """The sweep's FixMatch: the pretrained encoder (fine-tuned) and a new head, or with `start` (a
    classifier of that encoder and the same head) `start`'s weights."""
    model = build_module({"family": "fixmatch", "init_args": dict(
        mode="finetune", encoder_path=cfg.encoder, head_hidden=cfg.head_hidden,
        encoder_lr_scale=cfg.encoder_lr_scale, threshold=cfg.threshold,
        optim=published_optim(cfg.fixmatch_lr), unlabelled_ratio=cfg.unlabelled_ratio,
        unlabelled_weight=cfg.unlabelled_weight, eval_ema=cfg.eval_ema, teacher_ema=cfg.teacher_ema,
        seed=seed)})
    if start is not None:
        model.load_state_dict(start.state_dict())  # strict: the same encoder and head, every weight
    return model


def fixmatch(cfg: SweepConfig, dm: FashionMNISTDataModule, seed: int,
             start: Classifier | None = None) -> Outcome:
    """`fixmatch_module(cfg, seed, start)` trained on the subset's labels and the training split's
    images, read without labels: the accuracy of the scored weights, and the pseudo-label
    diagnostic's history."""
    monitor = PseudoLabelMonitor(cfg.monitor_every)
    trainer = {"max_epochs": -1, "max_steps": cfg.fixmatch_steps, "limit_val_batches": 0}
    run = train(TrainConfig(model=fixmatch_module(cfg, seed, start), data=dm, seed=seed, test="final",
                            callbacks=[monitor], trainer=trainer))
    return Outcome(_accuracy(run), history=monitor.history)


class GraphCodes:
    """What the graph methods read, per seed: the frozen codes of that seed's training split and
    of the test images (of `graph_codes`' encoders side by side, each at unit length; default the
    sweep's encoder), and their k-NN graphs, built once and shared by every budget and method of
    the seed."""

    def __init__(self, cfg: SweepConfig) -> None:
        self.cfg, self.by_seed = cfg, {}

    def __call__(self, seed: int) -> graph.Graphs:
        if seed not in self.by_seed:
            dm = scored_on(FashionMNISTDataModule(data_dir=self.cfg.data_dir, seed=seed,
                                                  val_size=self.cfg.val_size), self.cfg.score)
            parts = [frozen_codes(e, dm, TESTED) for e in self.cfg.graph_codes or [self.cfg.encoder]]
            train, test = (joined_codes([p[i] for p in parts]) for i in (0, 2))
            self.by_seed[seed] = graph.Graphs(train, parts[0][1], test, parts[0][3])
        return self.by_seed[seed]


def subset_rows(labels: np.ndarray, budget: int | None, seed: int) -> np.ndarray:
    """Positions in the training split (its `labels`) of the subset the DataModule draws for
    (budget, seed); every position for budget None."""
    return stratified_subset(labels, budget, seed) if budget else np.arange(len(labels))


def graph_accuracy(r: Run, method: str) -> float:
    """Graph method `method` (a key of graph.METHODS) on the codes of the seed's training split (and
    the test images, for the transductive ones), from the labelled subset the DataModule draws
    for (budget, seed)."""
    g = r.codes(r.seed)
    return g.accuracy(subset_rows(g.train_y, r.budget, r.seed), method)


def pseudo(r: Run, then_fixmatch: bool = False) -> Outcome:
    """The fine-tuned classifier trained `pseudo_passes` passes over the training images that
    Graphs.training_labels keeps, each with its label if in the subset, else the class the graph
    method `pseudo_graph` gives it from the subset's labels; the subset repeated to be
    `pseudo_labelled_share` of them (graph.repeated); then, with `pseudo_tune_steps`, that many
    steps on the subset alone, or (`then_fixmatch`) FixMatch from those weights. Returns the
    accuracy, a diagnostic for the row (how many images were kept and how many of their labels
    were right, read from the training labels after the labels are made; nothing trains on it)
    and FixMatch's pseudo-label history (empty without FixMatch)."""
    cfg, dm, net, seed = r.cfg, r.dm, r.net, r.seed
    g = r.codes(seed)
    labelled = subset_rows(g.train_y, r.budget, seed)
    y, keep = g.training_labels(labelled, cfg.pseudo_graph, cfg.pseudo_keep)
    rows = torch.from_numpy(graph.repeated(keep, labelled, cfg.pseudo_labelled_share))
    images = dm.unlabelled_images()  # the training split, in the order the codes are in
    subset = dm.splits["train"]
    device = subset[0].device
    dm.splits["train"] = (images[rows].to(device), torch.from_numpy(y)[rows].to(device))
    if then_fixmatch or cfg.pseudo_tune_steps:
        model = fit_classifier(cfg, "finetune", dm, net, seed, passes=cfg.pseudo_passes, test=None).module
        dm.splits["train"] = subset  # then the given labels alone (FixMatch: and the images unlabelled)
        if then_fixmatch:
            done = fixmatch(cfg, dm, seed, start=model)
        else:
            done = Outcome(_accuracy(fit_classifier(cfg, "finetune", dm, net, seed,
                                                    steps=cfg.pseudo_tune_steps, model=model)))
    else:
        done = Outcome(_accuracy(fit_classifier(cfg, "finetune", dm, net, seed, passes=cfg.pseudo_passes)))
    right = float((y[keep] == g.train_y[keep]).mean())
    return Outcome(done.accuracy, {"pseudo_images": str(int(keep.sum())), "pseudo_label_acc": f"{right:.4f}"},
                   done.history)


@torch.no_grad()
def _outputs(fn, images: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """`fn` of (N, 28, 28) uint8 images, batch by batch as the DataModule serves them, on the CPU."""
    from aecls.data.batches import DeviceBatches

    dummy = torch.zeros(len(images), dtype=torch.long)
    return torch.cat([fn(x).cpu() for x, _ in DeviceBatches(images, dummy.to(images.device), batch)])


def _predicted(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """`model`'s accuracy (eval mode) on images and their labels."""
    model.eval()
    return float((_outputs(model, images.to(model.device)).argmax(1) == labels.cpu()).float().mean())


def rounds(r: Run) -> Outcome:
    """Label propagation in rounds (Iscen et al., CVPR 2019): `pseudo`'s labels (propagated from
    the subset over the graph of the pretext's codes), then `rounds` times: the fine-tuned
    classifier trained `pseudo_passes` passes on them (from the last round's weights, or with
    `rounds_start` "encoder" from the pretrained encoder and a new head each round), each image
    drawn by its label's certainty and class balance (`rounds_weighting`; graph.weighted_labels,
    graph.drawn) among the fraction `pseudo_keep` the labels are surest of (with `rounds_keep`
    "first": the images round 1 kept, every round), its own encoder's
    codes of every training image then make a new k-NN graph (`rounds_k`) and the labels are
    propagated again over it. With `pseudo_tune_steps`, each round's network is then tuned that
    many steps on the subset alone, as `pseudo` ends, in a copy: the next round embeds with the
    untuned one. So round 1 is `pseudo` (weighting none: the same images), and round r of a
    longer run ends as a run of r rounds does. Returns the last round's (tuned) accuracy, the last
    labels' accuracy over the other training images (a diagnostic: nothing trains on it), and per
    round that, the same over the images the round draws from (kept_label_acc: with `pseudo_keep`
    < 1, the surest labels only) and the network's accuracy on the validation images, tuned
    (val_acc) and as trained (trained_val_acc) (rounds.csv)."""
    cfg, dm, net, seed = r.cfg, r.dm, r.net, r.seed
    g = r.codes(seed)
    labelled = subset_rows(g.train_y, r.budget, seed)
    labels = g.train_y[labelled]
    others = np.setdiff1d(np.arange(g.n), labelled)
    scores = g.scores(labelled, cfg.pseudo_graph) if len(others) else np.eye(g.classes)[g.train_y]
    images, subset, (val_x, val_y) = dm.unlabelled_images(), dm.splits["train"], dm.splits["val"]
    device = subset[0].device
    model, history, right = None, [], 1.0
    first = cfg.rounds_keep == "first"  # round 1's kept images (the pretext graph's surest), every round
    among = graph.kept(graph.margin(scores), labelled, cfg.pseudo_keep) if first else None
    for k in range(1, cfg.rounds + 1):
        y, w = graph.weighted_labels(scores, labelled, labels, cfg.rounds_weighting, cfg.pseudo_keep, among)
        right = float((y[others] == g.train_y[others]).mean()) if len(others) else 1.0
        used = w > 0  # the images outside the subset this round draws from
        kept_right = float((y[used] == g.train_y[used]).mean()) if used.any() else 1.0
        rows = torch.from_numpy(graph.drawn(w, labelled, cfg.pseudo_labelled_share, seed * 1000 + k))
        dm.splits["train"] = (images[rows].to(device), torch.from_numpy(y)[rows].to(device))
        start = model if cfg.rounds_start == "last" else None  # None: the pretrained encoder again
        model = fit_classifier(cfg, "finetune", dm, net, seed, passes=cfg.pseudo_passes, model=start,
                               test=None).module
        trained = _predicted(model, val_x, val_y)
        final = _tuned(r, model, subset) if cfg.pseudo_tune_steps else model
        tuned = _predicted(final, val_x, val_y) if final is not model else trained
        history.append({"round": k, "pseudo_label_acc": right, "kept_label_acc": kept_right, "val_acc": tuned,
                        "trained_val_acc": trained})
        if k < cfg.rounds and len(others):
            model.eval()
            codes = _outputs(model.features, images.to(model.device)).numpy()
            scores = graph.propagate(cfg.pseudo_graph, graph.knn(codes, cfg.rounds_k), labelled, labels,
                                     g.classes)
        model.train()  # the next round trains on (Lightning leaves the mode as it finds it)
    dm.splits["train"] = subset
    accuracy = _predicted(final, *dm.splits["test"])
    return Outcome(accuracy, {"pseudo_label_acc": f"{right:.4f}"}, history)


def _tuned(r: Run, model: Classifier, subset: tuple[torch.Tensor, torch.Tensor]) -> Classifier:
    """A copy of `model` trained `pseudo_tune_steps` steps on the labelled `subset` alone (`model`
    itself left as it is, for the next round to embed with and train on)."""
    copy = build_module(classifier_spec(r.cfg, "finetune", r.net))
    copy.load_state_dict(model.state_dict())  # strict: the same encoder and head, every weight
    copy.to(model.device)
    was, r.dm.splits["train"] = r.dm.splits["train"], subset
    try:
        return fit_classifier(r.cfg, "finetune", r.dm, r.net, r.seed, steps=r.cfg.pseudo_tune_steps,
                              model=copy, test=None).module
    finally:
        r.dm.splits["train"] = was


def logreg(r: Run, pca: bool) -> float:
    """Logistic regression on the subset's raw pixels, or (`pca`) on their PCA codes of the
    encoder's latent size: the non-deep baselines."""
    x_train, y_train = (t.cpu().numpy() for t in r.dm.splits["train"])
    x_test, y_test = (t.cpu().numpy() for t in r.dm.splits["test"])
    pca_dim, seed = (r.net.latent_dim if pca else None), r.seed
    # PCA cannot keep more components than there are images (a 100-label run, latent 138).
    steps = [PCA(min(pca_dim, len(x_train), x_train[0].size), random_state=seed)] if pca_dim else []
    clf = make_pipeline(*steps, LogisticRegression(max_iter=500))
    clf.fit(flat(x_train), y_train)
    return float(clf.score(flat(x_test), y_test))
