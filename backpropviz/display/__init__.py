"""The display layer: numbers and arrays as text, one presentation of a step (what a step reads,
writes and how it is written), and drawings (Graphviz engines, one layout per graph, SVG per step,
PNG/GIF/flipbook exports). Imports the core and the theory layer."""
