//! Synthetic multi-view data: a procedural demo scene and triangle meshes rendered by a CPU ray
//! tracer into the Blender format.

pub mod demo;
pub mod mesh;
pub mod trace;

pub use demo::{
    BLENDER_FOV_X, CAMERA_DISTANCE, DemoSpec, SplitCameras, demo_cameras, demo_dataset, demo_scene, lift_example_scene,
    mesh_dataset, mesh_scene,
};
pub use mesh::{Mesh, MeshError, load_mesh, read_mesh};
pub use trace::{Hit, Material, Object, Pattern, Scene, Shape, TriangleMesh, intersect_sphere, intersect_triangle};
