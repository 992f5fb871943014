// Label layer (see DESIGN.md).
