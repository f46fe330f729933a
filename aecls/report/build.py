"""`aecls report`: one Markdown report (+ PNGs beside it) from what earlier stages left on disk.

It only reads, and reads data: checkpoints under lightning_logs/, study exports under
artifacts/<study>/ (best.json), the transfer sweep's CSV under artifacts/transfer/ and the
comparison's record (compare.json: which sweep CSVs), whose tables it builds with the functions
that wrote them. A piece that is not there yet is named as missing.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aecls.core.constants import CLASSIFIER_MODES
from aecls.core.errors import AeclsError
from aecls.core.paths import (
    ARTIFACTS,
    BEST_FILE,
    COMPARE_JSON,
    COMPARE_PNG,
    CURVES_PNG,
    FIT_BEST_GLOB,
    LOG_DIR,
    PIPELINE_JSON,
    REPORTS,
    ROUNDS_PNG,
    SWEEP_CSV,
    SWEEP_JSON,
    SWEEP_PNG,
)
from aecls.data.transforms import add_noise, to_unit
from aecls.evaluation.baselines import flat, pca_test_mse
from aecls.evaluation.stats import spread
from aecls.hpo.record import BestRecord
from aecls.modules.autoencoder import EVAL_NOISE_SEED, psnr
from aecls.modules.registry import Family, of_kind
from aecls.report import figures
from aecls.report.latents import decode, gaussian_samples, interpolate, pca_2d, tsne_2d
from aecls.training.checkpoints import load_datamodule, load_module
from aecls.training.probe import encode
from aecls.transfer.compare import compare_markdown, read_record
from aecls.transfer.config import SCORES
from aecls.transfer.runs import read_rows, score_of
from aecls.transfer.sweep import PLOTS
from aecls.transfer.table import markdown_table, summarise

N_SHOW = 10  # images per row: one per class


def shown(path: str | Path) -> str:
    """A path as the report writes it: relative to the working directory (where the pipeline
    runs), so a report can be moved and committed; never an absolute path."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name  # outside the project: its name is all that is safe to show


def latest(log_dir: Path, name: str, pattern: str = FIT_BEST_GLOB) -> Path | None:
    """The newest file matching `pattern` under log_dir/name/ (default: the best checkpoint of the
    newest fit of config `name`)."""
    found = sorted((log_dir / name).glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


class Report:
    def __init__(self, out: Path, log_dir: Path, artifacts: Path, study: str, data_dir: str | None) -> None:
        self.out, self.log_dir, self.artifacts, self.study = out, log_dir, artifacts, study
        self.data_dir = data_dir
        self.lines: list[str] = []
        self.missing: list[str] = []
        self.scale = ""  # what the pipeline that wrote the inputs trained (PIPELINE_JSON)
        self.full_run = ""  # what the full run would add (PIPELINE_JSON, a quickstart's)
        self.baselines: list[str] = []
        # the sweep of the study's encoder and the comparison of encoders (the full pipeline's
        # are under results/, beside its kept encoders)
        self.transfer_dir, self.compare_dir = artifacts / "transfer", artifacts / "transfer_compare"
        self._data = None
        self._models: dict[str, tuple] = {}

    def data(self, ckpt: dict):
        """Test images/labels (and train images for baselines), loaded once from the first checkpoint."""
        if self._data is None:
            dm = load_datamodule(ckpt, data_dir=self.data_dir)
            dm.setup()
            x, y = dm.splits["test"]
            first = [int(torch.nonzero(y == k)[0]) for k in range(len(dm.classes))]
            self._data = {"x": x.cpu(), "y": y.cpu().numpy(), "classes": dm.classes, "first": first,
                          "train": dm.splits["train"][0].cpu()}
        return self._data

    def png(self, name: str) -> Path:
        return self.out / name

    def section(self, title: str) -> None:
        self.lines += ["", f"## {title}", ""]

    def image(self, path: Path, alt: str) -> None:
        self.lines.append(f"![{alt}]({path.name})")

    def model(self, f: Family):
        """(module, checkpoint dict, path) of the newest fit of family `f`'s config
        (lightning_logs/<config>/), loaded once; (None, None, None), named as missing, without one."""
        name = f.config_name
        if name not in self._models:
            path = latest(self.log_dir, name)
            if path is None:
                self.missing.append(f"{name}: no checkpoint under {self.log_dir}/{name}/ "
                                    f"(run `aecls fit --config configs/{name}.yaml`)")
                self._models[name] = (None, None, None)
            else:
                self._models[name] = (*load_module(path), path)
        return self._models[name]

    def autoencoders(self) -> list[tuple[Family, Any, dict, Path]]:
        """Every autoencoder family that has a fit, in registry order: what the reconstruction,
        denoising and latent sections show (a new family is shown by being registered)."""
        found = [(f, *self.model(f)) for f in of_kind("autoencoder")]
        return [m for m in found if m[1] is not None]


def logged_test(checkpoint: Path) -> dict[str, float]:
    """The test/* metrics the fit of `checkpoint` logged to its TensorBoard run (the run folder
    above checkpoints/; `aecls fit` tests its best checkpoint after the fit), the last value of
    each: what the report shows instead of running the model over the test set again. {} where the
    fit logged none (a fit with --test_after_fit false)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = EventAccumulator(str(checkpoint.parent.parent), size_guidance={"scalars": 0}).Reload()
    return {tag: float(run.Scalars(tag)[-1].value) for tag in run.Tags().get("scalars", [])
            if tag.startswith("test/")}


@torch.no_grad()
def _mse(module, x: torch.Tensor, path: Path) -> float:
    """Test MSE of clean inputs: the fit's logged test/clean_mse, else computed here."""
    if "test/clean_mse" in (logged := logged_test(path)):
        return logged["test/clean_mse"]
    xs = to_unit(x)
    return float(((module(xs) - xs) ** 2).mean())


def reconstructions(r: Report) -> None:
    r.section("Reconstructions")
    rows, labels = [], []
    for f, module, ckpt, path in r.autoencoders():
        d = r.data(ckpt)
        x = d["x"][d["first"]]
        if not rows:
            rows, labels = [to_unit(x)[:, 0].numpy()], ["test"]
        rows.append(module(to_unit(x))[:, 0].numpy())
        labels.append(f.name.upper())
        k = module.net_cfg.latent_dim
        mse, pca = _mse(module, d["x"], path), pca_test_mse(flat(d["train"].numpy()), flat(d["x"].numpy()), k)
        where = shown(path)
        what = (f"{f.name.upper()} fit of configs/{f.config_name}.yaml, latent {k}, "
                f"epoch {ckpt.get('epoch', 0) + 1}")
        r.baselines.append(f"| {what} (`{where}`) | test MSE {mse:.5f} | PCA-{k}: {pca:.5f} | |")
        r.lines.append(f"- {what}: `{where}`, test MSE {mse:.5f} (PCA-{k}: {pca:.5f})")
    if rows:
        d = r._data
        r.image(figures.image_rows(rows, labels, r.png("reconstructions.png"),
                                   "Test images and their reconstructions", d["classes"]), "reconstructions")


def denoising(r: Report) -> None:
    """Every autoencoder fit that was given noisy inputs (a DAE): clean, noisy and denoised rows."""
    noisy_fits = [m for m in r.autoencoders() if m[1].hparams.get("noise_sigma")]
    if noisy_fits:
        r.section("Denoising")
    for f, module, ckpt, path in noisy_fits:
        d = r.data(ckpt)
        sigma = module.hparams.noise_sigma
        logged = logged_test(path)
        known = {"test/psnr", "test/psnr_noisy"} <= set(logged)  # the fit's test: no second pass
        # the images shown, or (no logged test) every test image, the shown ones picked after
        x = to_unit(d["x"][d["first"]] if known else d["x"])
        noisy = add_noise(x, sigma, torch.Generator().manual_seed(EVAL_NOISE_SEED))
        out = module(noisy)
        if known:
            p_out, p_in, i = logged["test/psnr"], logged["test/psnr_noisy"], slice(None)
        else:
            p_out, p_in, i = float(psnr(out, x)), float(psnr(noisy, x)), d["first"]
        png = "denoising.png" if len(noisy_fits) == 1 else f"denoising_{f.name}.png"
        r.image(figures.image_rows([x[i, 0].numpy(), noisy[i, 0].numpy(), out[i, 0].numpy()],
                                   ["clean", "noisy", "denoised"], r.png(png),
                                   f"{f.name.upper()}, sigma {sigma}: {p_in:.2f} dB -> {p_out:.2f} dB",
                                   d["classes"]), f"denoising {f.name}")
        r.lines.append(f"\n`{shown(path)}`: test PSNR {p_out:.2f} dB (noisy input {p_in:.2f} dB), "
                       f"mean over the {len(d['x'])} test images, noise seed {EVAL_NOISE_SEED}.\n")


def latent_space(r: Report, n_tsne: int = 2000) -> None:
    """Each autoencoder fit's test codes (PCA; t-SNE of `n_tsne` images shared among the fits, so
    its cost does not grow with the families), a walk between two codes, and samples: from the
    prior where the module has one (a VAE), else from a Gaussian fitted to its codes."""
    fits = r.autoencoders()
    if not fits:
        return
    names = ", ".join(f.name.upper() for f, *_ in fits)
    r.section(f"Latent space of the test set ({names})")
    d = r.data(fits[0][2])
    codes = [encode(module, d["x"]) for _, module, _, _ in fits]
    rng = np.random.default_rng(0)
    sub = rng.choice(len(d["x"]), size=min(max(n_tsne // len(fits), 50), len(d["x"])), replace=False)
    titles = [f"{f.name.upper()} (dim {z.shape[1]})" for (f, *_), z in zip(fits, codes, strict=True)]
    r.image(figures.scatter_panels([pca_2d(z) for z in codes], titles, d["y"], d["classes"],
                                   r.png("latent_pca.png"), "Test-set codes, PCA to 2-D", "PC"), "PCA")
    r.image(figures.scatter_panels([tsne_2d(z[sub]) for z in codes], titles, d["y"][sub], d["classes"],
                                   r.png("latent_tsne.png"), f"Test-set codes, t-SNE of {len(sub)} images",
                                   "t-SNE"), "t-SNE")
    a, b = d["first"][7], d["first"][9]  # Sneaker -> Ankle boot
    walks = [decode(module, interpolate(z[a], z[b], N_SHOW)) for (_, module, _, _), z in zip(fits, codes,
                                                                                              strict=True)]
    r.image(figures.image_rows(walks, [f.name.upper() for f, *_ in fits], r.png("interpolation.png"),
                               f"Interpolation in latent space: {d['classes'][7]} -> {d['classes'][9]}",
                               xlabel="step along the straight line between the two codes"),
            "interpolation")
    rows, labels = [], []
    for (f, module, _, _), z in zip(fits, codes, strict=True):
        if hasattr(module, "sample"):
            rows.append(module.sample(N_SHOW)[:, 0].numpy())
            labels.append(f"{f.name.upper()} prior")
        else:
            rows.append(decode(module, gaussian_samples(z, N_SHOW)))
            labels.append(f"{f.name.upper()} + Gaussian fit")
    r.image(figures.image_rows(rows, labels, r.png("samples.png"),
                               "Samples: the prior where a model has one, else a Gaussian fit to its codes",
                               xlabel="independent samples"), "samples")


def study(r: Report) -> None:
    r.section(f"Study {r.study}")
    folder = r.artifacts / r.study
    have = sorted(folder.glob("*.png"))  # every plot `study run` / `study plots` wrote there
    if not have:
        r.missing.append(f"study {r.study}: no plots in {folder} (run `aecls study run {r.study}`)")
    for p in have:
        shutil.copy(p, r.png(f"study_{p.name}"))
        r.image(r.png(f"study_{p.name}"), p.stem)
    info = folder / BEST_FILE
    if not info.is_file():
        r.missing.append(f"study {r.study}: no best.json (run `aecls study best {r.study}`)")
        return
    best = BestRecord.read(info)
    rule = f" (objective {best.objective}, chosen by `--select {best.select}`: {best.rule})" \
        if best.select else ""
    n = len(best.seeds)
    r.lines += ["", f"Best trial {best.trial}{rule}: `{json.dumps(best.params)}`, re-trained "
                f"{best.epochs} epochs x {n} seeds:", "",
                "| metric | mean ± sd (sample sd, n − 1) |", "|---|---|"]
    r.lines += [f"| {m}{note} | {spread(s['mean'], s['sd'], n)} |" for m, s, note in best.test_rows()]
    r.lines.append(f"\nEncoder: `{shown(best.encoder['path'])}` (seed {best.encoder['seed']}, "
                   f"checkpoint `{shown(best.encoder['checkpoint'])}`).")


# what each curve figure a sweep folder may hold (aecls.transfer.sweep.PLOTS) shows
CURVE_CAPTIONS = {ROUNDS_PNG: "Label propagation, per round (labels right; validation accuracy)",
                  CURVES_PNG: "FixMatch's pseudo-labels on validation images, per step"}


def transfer(r: Report) -> None:
    r.section("Transfer: accuracy vs. labels")
    folder = r.transfer_dir
    if not (folder / SWEEP_CSV).is_file():
        r.missing.append(f"transfer sweep: nothing in {folder} (run `aecls transfer sweep`)")
    else:
        rows = read_rows(folder / SWEEP_CSV)
        encoder = _sweep_encoder(folder)
        if encoder:
            r.lines.append(f"Encoder: {encoder}.\n")
        score = score_of(folder / SWEEP_CSV)
        r.lines.append(markdown_table(rows, score))
        shutil.copy(folder / SWEEP_PNG, r.png("transfer.png"))
        r.image(r.png("transfer.png"), "transfer")
        _classifier_baselines(r, rows, folder / SWEEP_CSV, encoder, score)
    compared = r.compare_dir
    if (compared / COMPARE_JSON).is_file():  # optional: `aecls transfer compare` over sweeps
        r.section("Few labels: which pretraining, which method (`aecls transfer compare`)")
        paths, options = read_record(compared)
        body = compare_markdown(paths, **options)  # from the sweeps' CSVs it records
        r.lines.append(body.replace("\n## ", "\n### "))  # its sections sit under this one
        shutil.copy(compared / COMPARE_PNG, r.png("transfer_compare.png"))
        r.image(r.png("transfer_compare.png"), "encoders and methods compared")
        # the compared sweeps' per-run diagnostics, where they kept one: a table cannot show them
        for folder in dict.fromkeys(Path(p).parent for ps in paths.values() for p in ps):
            for png, _ in PLOTS.values():
                what = CURVE_CAPTIONS.get(png, png)
                if (folder / png).is_file():
                    name = r.png("_".join((*folder.parts[-2:], png)))
                    shutil.copy(folder / png, name)
                    r.lines.append(f"\n{what}, `{shown(folder)}`:\n")
                    r.image(name, what)
    # Every fit whose test wrote a confusion matrix (a classifier family's, from any config: cnn.yaml
    # is the classifier family with a CNN), newest run per config.
    for name in sorted(p.name for p in r.log_dir.glob("*") if p.is_dir()):
        cm = latest(r.log_dir, name, "version_*/test/confusion_matrix.png")
        if cm is not None:
            shutil.copy(cm, r.png(f"confusion_{name}.png"))
            r.lines.append(f"\nConfusion matrix, {name} (`{shown(cm.parent)}`):\n")
            r.image(r.png(f"confusion_{name}.png"), f"confusion {name}")


def stage_times(r: Report) -> None:
    """The pipeline's stage table (PIPELINE_JSON), when a pipeline wrote this report."""
    try:
        info = json.loads((r.artifacts / PIPELINE_JSON).read_text())
    except (OSError, ValueError):
        return  # built by `aecls report` alone: no pipeline to time
    m = info["machine"]
    r.section("How long each stage took")
    if info.get("scale_text"):  # what the pipeline trained, for reading every number above
        r.scale = info["scale_text"]
    r.full_run = info.get("full_run", "")
    r.lines += [f"`aecls pipeline` ({info['scale']} scale) on {m['cores']} cores ({m['cpu']}), "
                f"{m['torch_threads']} torch threads, GPU: {m['gpu']}; wall seconds as each stage ended, "
                "indented: a stage's own seconds in a group run side by side (the report's own stage "
                "is not in it).", "", "| stage | seconds |", "|---|---:|"]
    for s in info["stages"]:
        took = f"reused `{shown(s['reused'])}`" if s["reused"] else f"{s['seconds']:.0f}"
        side = "&nbsp;&nbsp;&nbsp;&nbsp;" if s.get("side") else ""  # inside the group above it
        r.lines.append(f"| {side}{s['stage']} | {took} |")
    wall = sum(s["seconds"] for s in info["stages"] if not s.get("side"))
    r.lines.append(f"| all stages before the report (wall) | {wall:.0f} |")


def _sweep_encoder(folder: Path) -> str:
    """What a sweep's encoder is (sweep.json: path, family, latent size; the study trial when it
    is a study export), or "" for a sweep written before sweep.json."""
    try:
        e = json.loads((folder / SWEEP_JSON).read_text())
    except (OSError, ValueError):
        return ""
    what = f"{e['family']}, latent {e['latent_dim']}, `{shown(e['encoder'])}`"
    try:  # a study export: name the trial it came from
        best = BestRecord.read(Path(e["encoder"]) / BEST_FILE)
        what = f"study {best.study} trial {best.trial} ({what}, {best.epochs} epochs)"
    except AeclsError:  # no best.json there (an autoencoder checkpoint), or not one
        pass
    return what


def _classifier_baselines(r: Report, rows: list[dict], csv_path: Path, encoder: str = "",
                          score: str = "test") -> None:
    """Baseline rows for the classifiers: the sweep's largest budget, mean over seeds."""
    stats = summarise(rows)
    top = max(b for b, _ in stats)
    pct = {m: f"{100 * stats[(top, m)][0]:.2f} %" for b, m in stats if b == top}
    for m in CLASSIFIER_MODES:
        if m in pct:
            pca, raw = pct.get("logreg_pca", "-"), pct.get("logreg_pixels", "-")
            on = f", encoder: {encoder}" if encoder and m != "scratch" else ""
            r.baselines.append(f"| classifier, {m} ({top} labels{on}; `{shown(csv_path)}`) | "
                               f"{SCORES[score]} {pct[m]} | PCA + logreg: {pca} | {raw} |")


def without_empty_sections(lines: list[str]) -> list[str]:
    """`lines` less each "## " heading with nothing under it before the next heading or the end (a
    section whose model is missing: the Missing list says so once)."""
    out: list[str] = []

    def close() -> None:  # drop trailing blanks, and the heading before them if it has no body
        while out and out[-1] == "":
            out.pop()
        if out and out[-1].startswith("## "):
            out.pop()
            while out and out[-1] == "":
                out.pop()

    for line in lines:
        if line.startswith(("# ", "## ")):
            close()
            out.append("")
        out.append(line)
    close()
    return out


def build_report(name: str = "main", out_root: str = REPORTS, log_dir: str = LOG_DIR,
                 artifacts: str = ARTIFACTS, study_name: str = "quickstart",
                 data_dir: str | None = None, transfer_dir: str | None = None,
                 compare_dir: str | None = None) -> Path:
    out = Path(out_root) / name
    out.mkdir(parents=True, exist_ok=True)
    r = Report(out, Path(log_dir), Path(artifacts), study_name, data_dir)
    r.transfer_dir = Path(transfer_dir) if transfer_dir else r.transfer_dir
    r.compare_dir = Path(compare_dir) if compare_dir else r.compare_dir
    with torch.no_grad():  # the report only evaluates
        for part in (reconstructions, denoising, latent_space, study, transfer, stage_times):
            part(r)
    head = [f"# aecls report: {name}", "", f"Built {datetime.datetime.now():%Y-%m-%d %H:%M} from "
            f"`{log_dir}/`, `{artifacts}/`; every number names the checkpoint or file it comes from."]
    if r.scale:
        head += ["", f"{r.scale[:1].upper()}{r.scale[1:]}. Its numbers compare with another report of "
                     "this scale only."]
    if r.full_run:
        head += ["", f"{r.full_run}."]
    if r.missing:
        head += ["", "## Missing", "", *[f"- {m}" for m in r.missing]]
    if r.baselines:
        head += ["", "## Baselines", "", "| model | test metric | PCA, same latent dim | raw-pixel logreg |",
                 "|---|---|---|---|", *r.baselines]
    (out / "report.md").write_text("\n".join(head + without_empty_sections(r.lines)) + "\n")
    return out / "report.md"
