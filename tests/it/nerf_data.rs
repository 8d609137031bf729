//! NeRF data sets: the Blender and instant-ngp loaders, their refusals, and writing.
