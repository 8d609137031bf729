//! Graph neural networks: node-classification data (Planetoid files through a restricted
//! unpickler), and the models and untrained-ticket search that run on them.

pub mod attention;
pub mod csbm;
pub mod files;
pub mod graph;
pub mod layout;
pub mod live;
pub mod model;
pub mod pickle;
pub mod plain;
pub mod planetoid;
pub mod sparse;
pub mod study;
