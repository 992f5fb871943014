// Experiment layer (see DESIGN.md).
