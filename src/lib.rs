//! Kindred: a federated ActivityPub server for self-hosted patient groups.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
