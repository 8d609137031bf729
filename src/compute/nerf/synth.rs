//! Synthetic multi-view data: a procedural demo scene and triangle meshes rendered by a CPU ray
//! tracer into the Blender format.
