//! Thin: parse the command line, load settings, start logging, run.

use std::process::ExitCode;

use clap::Parser;
use kindred::{cli, config::Settings};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // One TLS provider for the whole binary, before anything opens a connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kindred: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // Admin commands print their own result; only the server logs at `info`.
    let default_filter = match cli.command {
        cli::Command::Serve => settings.log.filter.as_str(),
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli::run(cli, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kindred: {}", e.detail());
            ExitCode::FAILURE
        }
    }
}
