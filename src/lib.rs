//! Kindred: a federated ActivityPub server for self-hosted patient groups.
//! See docs/ARCHITECTURE.md for the module map.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod federation;
pub mod metrics;
pub mod service;
pub mod web;
