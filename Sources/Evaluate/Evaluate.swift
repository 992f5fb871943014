// Evaluate layer (see DESIGN.md).
