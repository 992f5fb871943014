// Data layer (see DESIGN.md).
