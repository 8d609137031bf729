//! StegaNeRF's compute layer: the secrets a field can carry (text or bits with a header and a
//! checksum) and the attacks a rendered view may suffer before its secret is recovered (noise,
//! blur, JPEG, a crop, a rotation, a downscale), and the stage-2 loss with its adaptive gradient
//! mask.

pub mod attacks;
pub mod loss;
pub mod message;
pub mod nets;
pub mod secret;
