//! The command line: `serve`, `migrate`, and admin commands (`group create`,
//! `user create`, `deliveries`, `federation …`). Every failure ends with a line saying what is
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
        /// Only rows with this status: pending, delivered, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
    },
    /// Choose who this instance federates with (takes effect at once, in
    /// every running process).
    #[command(subcommand)]
    Federation(FederationCommand),
    /// The directory of groups on this instance and those it knows.
    #[command(subcommand)]
    Directory(DirectoryCommand),
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Read the directories of the instances this one knows (and of those
    /// its trusted instances list) now, instead of waiting for the next round.
    Refresh,
    /// Search groups as members do, and print the results best first.
    Search { query: String },
}

#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// `open` (everyone but blocked domains) or `allowlist` (only allowed ones).
    Mode {
        mode: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Allow DOMAIN and its subdomains (`host:port` for that port only).
    Allow {
        domain: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Block DOMAIN and its subdomains, in either mode.
    Block {
        domain: String,
        #[arg(long)]
        reason: Option<String>,
        /// Also hide the posts its people already wrote here.
        #[arg(long, conflicts_with = "purge")]
        hide: bool,
        /// Also delete their posts here and end their memberships.
        #[arg(long)]
        purge: bool,
    },
    /// Take DOMAIN off the allow-list.
    Unallow {
        domain: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Take DOMAIN off the block-list.
    Unblock {
        domain: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Show the mode and both lists.
    List,
    /// Import a Mastodon domain-block CSV (FILE, or `-` for standard input):
    /// every row or none.
    Import { file: PathBuf },
    /// Write the block-list as a Mastodon CSV (to FILE, or standard output).
    Export { file: Option<PathBuf> },
    /// Hide, show again, or purge the posts of DOMAIN's people here.
    Content {
        domain: String,
        /// hide, show or purge
        action: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// A group takes members only from listed instances (`--only a.example,b.example`),
    /// or from any instance the instance-wide policy allows (`--any`).
    Group {
        name: String,
        #[arg(long, value_delimiter = ',', conflicts_with = "any")]
        only: Option<Vec<String>>,
        #[arg(long)]
        any: bool,
    },
    /// The instances this one has met.
    Instances,
    /// The newest entries of the audit log.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u64,
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
        /// Who reads it: public, members (approved members only, wherever
        /// they are) or local (this instance only, never federated).
        #[arg(long, default_value = "public")]
        visibility: String,
        /// How people get in: open, approval (moderators decide) or invite.
        #[arg(long, default_value = "open")]
        join: String,
    },
    /// Change a group's visibility, join policy and moderation settings.
    Update {
        name: String,
        #[arg(long)]
        visibility: Option<String>,
        #[arg(long)]
        join: Option<String>,
        /// Hide even the member count (true/false).
        #[arg(long)]
        hide_member_count: Option<bool>,
        /// Hold new members' first posts for review (true/false).
        #[arg(long)]
        premoderation: Option<bool>,
        /// The content warning new threads start with ("" clears it).
        #[arg(long)]
        content_warning: Option<String>,
    },
    /// Say what a group is about (replaces what it said): conditions,
    /// tags, codes (icd10:G70.0, icd11:8C6Y, orpha:589, snomed:91637004),
    /// languages and region. Each flag may be repeated.
    About {
        name: String,
        #[arg(long = "condition")]
        conditions: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long = "code")]
        codes: Vec<String>,
        #[arg(long = "language")]
        languages: Vec<String>,
        /// ISO 3166 country (DE) or subdivision (FR-IDF).
        #[arg(long)]
        region: Option<String>,
        /// Keep the group out of directories (here and elsewhere).
        #[arg(long)]
        unlisted: bool,
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
            visibility,
            join,
        }) => {
            let data = fed_data(settings).await?;
            // Both are checked before anything is written.
            let change = service::moderation::SettingsChange {
                visibility: Some(&visibility),
                join_policy: Some(&join),
                member_count_hidden: None,
                premoderation: None,
                default_content_warning: None,
            };
            service::moderation::check_settings(&change)?;
            let g = service::groups::create_group(&data, &name, &title, &summary).await?;
            let s = service::moderation::update_settings(
                &data,
                service::federation::Who::Cli,
                &g,
                change,
            )
            .await?;
            println!(
                "created group {} ({}): {}, {}",
                g.handle(),
                g.row.ap_id,
                s.visibility.label(),
                s.join_policy.label()
            );
            Ok(())
        }
        Command::Group(GroupCommand::Update {
            name,
            visibility,
            join,
            hide_member_count,
            premoderation,
            content_warning,
        }) => {
            let data = fed_data(settings).await?;
            let row = db::actors::local_by_name_and_kind(
                &data.db,
                &name,
                crate::domain::ActorKind::Group,
            )
            .await?
            .ok_or_else(|| AppError::not_found(format!("group '{name}'")))?;
            let g = crate::federation::objects::actor::DbActor::new(row)?;
            let change = service::moderation::SettingsChange {
                visibility: visibility.as_deref(),
                join_policy: join.as_deref(),
                member_count_hidden: hide_member_count,
                premoderation,
                default_content_warning: content_warning.as_deref(),
            };
            let s = service::moderation::update_settings(
                &data,
                service::federation::Who::Cli,
                &g,
                change,
            )
            .await?;
            println!(
                "group {}: {}; {}; member count {}; pre-moderation {}",
                g.handle(),
                s.visibility.label(),
                s.join_policy.label(),
                if s.member_count_hidden {
                    "hidden"
                } else {
                    "shown"
                },
                if s.premoderation { "on" } else { "off" }
            );
            Ok(())
        }
        Command::Group(GroupCommand::About {
            name,
            conditions,
            tags,
            codes,
            languages,
            region,
            unlisted,
        }) => {
            let change = service::directory::AboutChange {
                conditions,
                tags,
                codes,
                languages,
                region,
                discoverable: !unlisted,
            };
            // Checked before connecting: a typo never half-writes.
            change.check()?;
            let data = fed_data(settings).await?;
            let g = local_group(&data, &name).await?;
            let t =
                service::directory::set_about(&data, service::federation::Who::Cli, &g, &change)
                    .await?;
            let codes: Vec<String> = t.codes.iter().map(ToString::to_string).collect();
            println!(
                "group {}: conditions [{}]; codes [{}]; tags [{}]; languages [{}]; region {}; {}",
                g.handle(),
                t.conditions.join(", "),
                codes.join(", "),
                t.tags.join(", "),
                t.languages.join(", "),
                t.region.as_deref().unwrap_or("-"),
                if unlisted {
                    "not listed"
                } else {
                    "listed in directories"
                }
            );
            Ok(())
        }
        Command::Directory(DirectoryCommand::Refresh) => {
            let data = fed_data(settings).await?;
            let r = crate::federation::directory::refresh(&data).await?;
            println!(
                "read {} instance(s): {} group(s) listed; {} could not be read (see the log)",
                r.instances_read, r.groups_listed, r.failures
            );
            Ok(())
        }
        Command::Directory(DirectoryCommand::Search { query }) => {
            let data = fed_data(settings).await?;
            let found = service::directory::search(&data, None, &query).await?;
            if found.is_empty() {
                println!("no group found for '{query}'");
            }
            for e in found {
                println!(
                    "{}\t{}\t{}\t{}",
                    e.handle(),
                    e.group.display_name.as_deref().unwrap_or(""),
                    e.members.map_or("-".to_string(), |n| n.to_string()),
                    e.topics.conditions.join("; ")
                );
            }
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
        Command::Federation(cmd) => federation(cmd, settings).await,
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
                // A fan-out's inbox without a row of its own has no id.
                let id = match (d.id, d.fanout_id) {
                    (0, Some(f)) => format!("fan-out#{f}"),
                    (id, _) => format!("#{id}"),
                };
                println!(
                    "{} {} {} attempts={} next={} {}",
                    id,
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

async fn federation(cmd: FederationCommand, settings: Settings) -> Result<(), AppError> {
    use service::federation::{self as fed, ContentAction, Who};

    use crate::domain::policy::List;
    let state = AppState::connect(settings).await?;
    let s = &state;
    match cmd {
        FederationCommand::Mode { mode, reason } => {
            let m = fed::set_mode(s, Who::Cli, &mode, reason.as_deref()).await?;
            println!("federation mode: {}", m.as_str());
        }
        FederationCommand::Allow { domain, reason } => {
            let e = fed::add(s, Who::Cli, List::Allow, &domain, reason.as_deref()).await?;
            println!("allowed {e}");
        }
        FederationCommand::Block {
            domain,
            reason,
            hide,
            purge,
        } => {
            let e = fed::add(s, Who::Cli, List::Block, &domain, reason.as_deref()).await?;
            println!("blocked {e}");
            let action = match (hide, purge) {
                (true, _) => Some(ContentAction::Hide),
                (_, true) => Some(ContentAction::Purge),
                _ => None,
            };
            if let Some(a) = action {
                let n = fed::content(s, Who::Cli, &e.to_string(), a, reason.as_deref()).await?;
                println!(
                    "{n} post(s) from {e} {}",
                    if hide { "hidden" } else { "purged" }
                );
            }
        }
        FederationCommand::Unallow { domain, reason } => {
            let e = fed::remove(s, Who::Cli, List::Allow, &domain, reason.as_deref()).await?;
            println!("{e} is no longer allowed");
        }
        FederationCommand::Unblock { domain, reason } => {
            let e = fed::remove(s, Who::Cli, List::Block, &domain, reason.as_deref()).await?;
            println!("{e} is no longer blocked");
        }
        FederationCommand::List => {
            let v = fed::view(s).await?;
            println!("mode: {}", v.mode.as_str());
            for (name, rows) in [("allowed", &v.allow), ("blocked", &v.block)] {
                println!("{name} ({}):", rows.len());
                for r in rows {
                    println!(
                        "  {}  [{} {}]{}",
                        r.domain,
                        r.created_by,
                        r.created_at.format("%Y-%m-%d"),
                        r.reason
                            .as_deref()
                            .map(|x| format!("  {x}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        FederationCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(|e| {
                    AppError::bad_request(format!("cannot read standard input: {e}"))
                })?;
                t
            } else {
                std::fs::read_to_string(&file).map_err(|e| {
                    AppError::bad_request(format!("cannot read {}: {e}", file.display()))
                })?
            };
            let r = fed::import_blocks(s, Who::Cli, &text).await?;
            println!(
                "imported {} block(s); {} already blocked; {} row(s) set aside",
                r.added.len(),
                r.already.len(),
                r.skipped.len()
            );
            for (line, why) in r.skipped {
                println!("  line {line}: {why}");
            }
        }
        FederationCommand::Export { file } => {
            let csv = fed::export_blocks(s).await?;
            match file {
                Some(f) => std::fs::write(&f, csv).map_err(|e| {
                    AppError::bad_request(format!("cannot write {}: {e}", f.display()))
                })?,
                None => print!("{csv}"),
            }
        }
        FederationCommand::Content {
            domain,
            action,
            reason,
        } => {
            let a = ContentAction::parse(&action).ok_or_else(|| {
                AppError::bad_request(format!(
                    "unknown action '{action}': use hide, show or purge"
                ))
            })?;
            let n = fed::content(s, Who::Cli, &domain, a, reason.as_deref()).await?;
            println!("{n} post(s) changed ({action})");
        }
        FederationCommand::Group { name, only, any } => {
            let g =
                db::actors::local_by_name_and_kind(&s.db, &name, crate::domain::ActorKind::Group)
                    .await?
                    .ok_or_else(|| AppError::not_found(format!("group '{name}'")))?;
            let g = crate::federation::objects::actor::DbActor::new(g)?;
            let now = match (only, any) {
                (Some(list), _) => {
                    fed::set_group_domains(s, Who::Cli, &g, true, &list.join("\n")).await?
                }
                (None, true) => fed::set_group_domains(s, Who::Cli, &g, false, "").await?,
                (None, false) => fed::group_domains(s, &g).await?,
            };
            if now.restricted {
                println!(
                    "{name} takes members only from: {}",
                    if now.domains.is_empty() {
                        "this instance".to_string()
                    } else {
                        now.domains.join(", ")
                    }
                );
            } else {
                println!("{name} follows the instance-wide policy");
            }
        }
        FederationCommand::Instances => {
            for i in fed::instances(s, Who::Cli).await? {
                println!(
                    "{}  {} {}  first={} last={}  members={} pending={} failed={}{}",
                    i.domain,
                    i.software.as_deref().unwrap_or("?"),
                    i.version.as_deref().unwrap_or(""),
                    i.first_seen
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| "-".into()),
                    i.last_contact
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "-".into()),
                    i.members_here,
                    i.deliveries_pending,
                    i.deliveries_failed,
                    i.refused.map(|r| format!("  [{r}]")).unwrap_or_default()
                );
            }
        }
        FederationCommand::Audit { limit } => {
            for e in fed::audit_log(s, Who::Cli, limit.min(10_000)).await? {
                println!(
                    "{}  {}  {}  {}{}",
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    e.who,
                    e.action,
                    e.target,
                    e.reason.map(|r| format!("  ({r})")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
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

async fn local_group(
    data: &crate::federation::FedData,
    name: &str,
) -> Result<crate::federation::objects::actor::DbActor, AppError> {
    let row = db::actors::local_by_name_and_kind(&data.db, name, crate::domain::ActorKind::Group)
        .await?
        .ok_or_else(|| AppError::not_found(format!("group '{name}'")))?;
    crate::federation::objects::actor::DbActor::new(row)
}

/// Federation data outside a request (commands that queue activities).
async fn fed_data(settings: Settings) -> Result<crate::federation::FedData, AppError> {
    let state = AppState::connect(settings).await?;
    let instance_actor = service::instance::ensure_instance_actor(&state).await?;
    let config = crate::federation::build_config(state, &instance_actor).await?;
    Ok(config.to_request_data())
}
