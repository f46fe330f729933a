"""Constants several layers share, in a module that imports nothing (the command line reads it)."""

N_CLASSES = 10  # Fashion-MNIST and MNIST labels are 0..9
CLASSIFIER_MODES = ("scratch", "frozen", "finetune")  # how a Classifier treats its encoder

# Metrics a study may compare (aecls.modules.registry.Family.score, aecls.hpo.space.OBJECTIVES)
LOSS_METRIC = "val/loss"  # every module's training loss on the validation split
PROBE_METRIC = "val/probe_acc"  # the linear probe of an encoder's frozen code (aecls.training.probe)

# FixMatch as published (Sohn et al. 2020, section 4 and appendix): one place for the library's and
# the sweep's defaults. SGD with Nesterov momentum, lr decayed per step by cos(7 pi k / 16 K).
FIXMATCH_THRESHOLD = 0.95  # confidence a pseudo-label needs
FIXMATCH_MU = 7  # unlabelled images per labelled image in a step
FIXMATCH_LR = 0.03
FIXMATCH_MOMENTUM = 0.9
FIXMATCH_WEIGHT_DECAY = 5e-4
FIXMATCH_EMA = 0.999  # decay of the weight average that is evaluated

# `aecls study serve`: where Optuna's gRPC storage proxy listens unless told (Optuna's defaults)
SERVE_HOST, SERVE_PORT = "localhost", 13000
