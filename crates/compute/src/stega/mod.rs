//! StegaNeRF's compute layer: the secrets a field can carry (an image, or text or bits with a
//! header and a checksum), the decoder and classifier that recover them, stage 2 (fine-tuning a
//! trained field's appearance so that every view carries the secret) with its loss and adaptive
//! gradient mask, and the attacks a rendered view may suffer before its secret is recovered
//! (noise, blur, JPEG, a crop, a rotation, a downscale) with the robustness sweep over them.

pub mod attacks;
pub mod decoder;
pub mod embed;
pub mod loss;
pub mod message;
pub mod nets;
pub mod robustness;
pub mod secret;
pub mod view;
