//! Integration tests: real instances on loopback, real databases, real HTTP
//! and signatures. One binary; `helpers` holds `TestInstance`.

mod api;
mod browser;
mod delivery;
mod directory;
mod directory_web;
mod fanout;
mod federation;
mod helpers;
mod hostile;
mod hostile_rows;
mod inbox;
mod interop;
mod interop_private;
mod lemmy;
mod load;
mod metrics;
mod moderation;
mod moderation_web;
mod peer;
mod policy;
mod private;
mod process;
mod remote;
mod reports_web;
mod visitor;
mod web;
mod wire;
