//! StyleNAT: neighbourhood attention with dilations (local and sparse-global head groups) for a
//! style-based generator.

pub mod discriminator;
pub mod generator;
pub mod layers;
pub mod metric;
pub mod na;
pub mod na_op;
pub mod train;
