//! The command line: `serve`, `migrate`, and admin commands (`group create`,
//! `user create`, `deliveries`). Every failure ends with a line saying what is
//! wrong and a non-zero exit.

use std::{io::IsTerminal, path::PathBuf};

use clap::{Parser, Subcommand};

use crate::{
    app::{App, AppState},
    config::Settings,
    db,
    domain::DeliveryStatus,
    error::AppError,
    service,
};

#[derive(Debug, Parser)]
#[command(
    name = "kindred",
    version,
    about = "Federated patient groups (ActivityPub)"
)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (then KINDRED_* env).
    #[arg(long, global = true, env = "KINDRED_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage local accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Show the delivery queue: counts by status, and the newest 50 rows.
    Deliveries {
        /// Only rows with this status: pending, delivered or failed.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group: NAME is its handle (lowercase a-z, 0-9, _ and -).
    Create {
        name: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        summary: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a member account. The password is read from standard input when
    /// it is not a terminal, otherwise prompted for (twice).
    Create {
        name: String,
        /// Make the account an instance admin.
        #[arg(long)]
        admin: bool,
    },
}

pub async fn run(cli: Cli, settings: Settings) -> Result<(), AppError> {
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            AppState::connect(settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Group(GroupCommand::Create {
            name,
            title,
            summary,
        }) => {
            let state = AppState::connect(settings).await?;
            let g = service::groups::create_group(&state, &name, &title, &summary).await?;
            println!("created group {} ({})", g.handle(), g.row.ap_id);
            Ok(())
        }
        Command::User(UserCommand::Create { name, admin }) => {
            let password = read_password()?;
            let state = AppState::connect(settings).await?;
            let u = service::users::create_user(&state, &name, &password, admin).await?;
            println!(
                "created {}user {}@{}",
                if admin { "admin " } else { "" },
                u.actor.username,
                u.actor.domain
            );
            Ok(())
        }
        Command::Deliveries { status } => {
            let status = match status.as_deref() {
                None => None,
                Some("pending") => Some(DeliveryStatus::Pending),
                Some("delivered") => Some(DeliveryStatus::Delivered),
                Some("failed") => Some(DeliveryStatus::Failed),
                Some("cancelled") => Some(DeliveryStatus::Cancelled),
                Some(other) => {
                    return Err(AppError::bad_request(format!(
                        "unknown status '{other}': use pending, delivered, failed or cancelled"
                    )));
                }
            };
            let state = AppState::connect(settings).await?;
            for s in [
                DeliveryStatus::Pending,
                DeliveryStatus::Delivered,
                DeliveryStatus::Failed,
                DeliveryStatus::Cancelled,
            ] {
                println!(
                    "{:>9}: {}",
                    s.as_str(),
                    db::deliveries::count_by_status(&state.db, s).await?
                );
            }
            for d in db::deliveries::list(&state.db, status, 50).await? {
                println!(
                    "#{} {} {} attempts={} next={} {}",
                    d.id,
                    d.status,
                    d.inbox,
                    d.attempts,
                    d.next_attempt_at.format("%Y-%m-%d %H:%M:%S"),
                    d.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn read_password() -> Result<String, AppError> {
    if std::io::stdin().is_terminal() {
        let p1 = rpassword::prompt_password("Password: ").map_err(AppError::internal)?;
        let p2 = rpassword::prompt_password("Again: ").map_err(AppError::internal)?;
        if p1 != p2 {
            return Err(AppError::bad_request("the passwords differ"));
        }
        Ok(p1)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(AppError::internal)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

async fn serve(settings: Settings) -> Result<(), AppError> {
    let bind = settings.server.bind.clone();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| AppError::bad_request(format!("cannot listen on {bind}: {e}")))?;
    let app = App::build(settings, listener).await?;
    println!(
        "Kindred is serving {} on http://{bind}",
        app.state.urls.base()
    );
    let stop = app.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight work");
        let _ = stop.send(true);
    });
    app.wait().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
