"""How results are judged: statistics over seeds (the sample sd, paired tests, Holm), the
reference baselines (PCA, independent pixels), classification reports."""
