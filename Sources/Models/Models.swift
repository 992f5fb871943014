// Models layer (see DESIGN.md).
