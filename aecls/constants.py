"""Constants several layers share, in a module that imports nothing (the command line reads it)."""

N_CLASSES = 10  # Fashion-MNIST and MNIST labels are 0..9
CLASSIFIER_MODES = ("scratch", "frozen", "finetune")  # how a Classifier treats its encoder
