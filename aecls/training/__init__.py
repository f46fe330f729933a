"""Training, above the modules: `train(cfg)` (config -> data + module + Trainer -> fit -> test), the
Trainer factory (trainer.py), checkpoints read back, and the linear probe. Import the submodules
(this package's own import stays light)."""
