// Train layer (see DESIGN.md).
