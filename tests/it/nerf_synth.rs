//! Synthetic NeRF data: the demo scene, mesh loaders and the CPU ray tracer.
