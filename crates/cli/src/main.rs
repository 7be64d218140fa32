//! The `deskgate` command: run the demo, serve in production, administer staff and tokens,
//! export and verify the audit log.

mod admin;
mod audit;
mod config_check;
mod policy;
mod refusal;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use deskgate_app::{Clock, Config};
use deskgate_core::ApiId;

use admin::AdminCommand;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use refusal::refusal;

#[derive(Parser)]
#[command(
    name = "deskgate",
    version,
    about = "Verified, policy-driven, audited help-desk account recovery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Seed a fictional organisation on embedded SQLite and serve it; messages go to DIR/outbox.jsonl.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value = "deskgate-demo")]
        data: PathBuf,
        /// Database URL; defaults to SQLite in the data directory.
        #[arg(long)]
        database: Option<String>,
    },
    /// Serve with a TOML configuration; every key can be overridden by a DESKGATE_* variable.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Play a subject's enrolled device (demo): print the code their authenticator app shows now.
    Device {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// The policy bundle: check, test, explain, diff.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The configuration: check it before a start.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administration.
    Admin {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked, and every problem found (database,
    /// key files, connector, policy bundle, delivery); exits non-zero on any problem.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// The current TOTP code of the subject's enrolled authenticator app.
    Totp {
        #[arg(long)]
        subject: String,
    },
    /// Approve the newest pending push on the subject's device, entering the number the agent read out.
    Approve {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        number: String,
    },
    /// Deny the newest pending push on the subject's device.
    Deny {
        #[arg(long)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Load and validate a bundle (strict Cedar validation); default: the built-in pack.
    Check { dir: Option<PathBuf> },
    /// Run the bundle's table-driven cases (tests/*.toml) through both policy layers.
    Test { dir: Option<PathBuf> },
    /// Show the playbook, risk and Cedar verdict for an action on a subject of the directory.
    Explain {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        action: String,
        /// Independence classes already collected (repeatable).
        #[arg(long)]
        evidence: Vec<String>,
        /// Bundle directory; default: the configured one, else the built-in pack.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run both bundles over their test cases and print every case whose outcome changes.
    Diff { old: PathBuf, new: PathBuf },
    /// The attack paths of a bundle: for every tier x action x risk level, the cheapest sets of
    /// attacker capabilities that reach an executable grant, checked against its gates.
    Analyze {
        dir: Option<PathBuf>,
        /// `table` (for people) or `json`.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the checkpoint verifier key (note vkey form: name+keyid+base64 key).
    Key,
    /// Export entries, their leaf hashes, a fresh signed checkpoint and the verifier key.
    Export {
        #[arg(long)]
        out: PathBuf,
        /// `log` (entries.jsonl + checkpoint) or `ocsf` (OCSF 1.x JSON lines for SIEMs).
        #[arg(long, default_value = "log")]
        format: String,
    },
    /// Verify an export directory, or a running server with --url.
    Verify {
        /// Export directory.
        dir: Option<PathBuf>,
        /// Base URL of a running server.
        #[arg(long, conflicts_with = "dir")]
        url: Option<String>,
        /// Verifier key, or a file holding it.
        #[arg(long)]
        key: String,
        /// Bearer token of an auditor, for --url.
        #[arg(long, env = "DESKGATE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// An older checkpoint the log must be consistent with.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
}

pub(crate) fn load_config(path: Option<&PathBuf>) -> Result<Config, String> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(p) = path {
        if !p.exists() {
            return Err(format!("config file {} does not exist", p.display()));
        }
        figment = figment.merge(Toml::file(p));
    }
    // Only variables naming a configuration key are configuration: DESKGATE_LOG, DESKGATE_TOKEN
    // and the test suite's variables share the prefix but are not.
    let known: Vec<String> = serde_json::to_value(Config::default())
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default();
    figment
        .merge(
            Env::prefixed("DESKGATE_")
                .filter(move |key| {
                    let top = key.as_str().split("__").next().unwrap_or_default();
                    known.iter().any(|k| k.eq_ignore_ascii_case(top))
                })
                .split("__"),
        )
        .extract()
        .map_err(|e| format!("configuration: {e}"))
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
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

async fn serve(config: Config) -> Result<(), String> {
    let listen = config.listen.clone();
    let service = deskgate_app::build(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, store = service.store().backend(), "deskgate listening");
    deskgate_server::serve(std::sync::Arc::new(service), listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn demo(listen: SocketAddr, data: PathBuf, database: Option<String>) -> Result<(), String> {
    let mut config = load_config(None)?;
    config.listen = listen.to_string();
    // Browsers refuse an IP address as a WebAuthn relying party id, so a demo on the loopback
    // interface names itself `localhost`: links, the console and passkeys then share one origin.
    config.public_url = if listen.ip().is_loopback() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
    };
    config.data_dir = data.clone();
    config.demo_sign_in = true;
    config.delivery = deskgate_app::delivery::Config {
        outbox_file: true,
        ..Default::default()
    };
    if let Some(db) = database {
        config.database = db;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let service = deskgate_app::build(config.clone(), Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let staff = deskgate_app::demo::seed(&service).await.map_err(refusal)?;
    let outbox = data.join("outbox.jsonl");
    let info = serde_json::json!({
        "base_url": config.public_url,
        "database": service.store().backend(),
        "outbox": outbox,
        "staff": staff,
    });
    let text = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
    std::fs::write(data.join("demo.json"), &text).map_err(|e| e.to_string())?;
    println!(
        "Deskgate demo on {} (SQLite in {})",
        config.public_url,
        data.display()
    );
    println!(
        "Staff tokens (also in {}):",
        data.join("demo.json").display()
    );
    for s in &staff {
        println!("  {:<14} {:<17} {}", s.name, s.role.api_id(), s.token);
    }
    println!("Outgoing messages are appended to {}", outbox.display());
    println!(
        "Web console (demo sign-in): {}/console/sign-in",
        config.public_url
    );
    println!(
        "Try: curl -s {}/api/v1/subjects?q=alice -H 'Authorization: Bearer {}'",
        config.public_url,
        staff.first().map(|s| s.token.as_str()).unwrap_or_default()
    );
    deskgate_server::serve(std::sync::Arc::new(service), listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn device_command(config: Option<PathBuf>, command: DeviceCommand) -> Result<(), String> {
    let config = load_config(config.as_ref())?;
    let service = deskgate_app::build(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    match command {
        DeviceCommand::Totp { subject } => {
            println!("{}", service.current_totp(&subject).await.map_err(refusal)?);
        }
        DeviceCommand::Approve { subject, number } => {
            let answer = service
                .push_response(&subject, true, Some(&number))
                .await
                .map_err(refusal)?;
            println!("{answer}");
        }
        DeviceCommand::Deny { subject } => {
            let answer = service
                .push_response(&subject, false, None)
                .await
                .map_err(refusal)?;
            println!("{answer}");
        }
    }
    Ok(())
}

async fn policy_command(command: PolicyCommand) -> Result<(), String> {
    let out = match command {
        PolicyCommand::Check { dir } => policy::check(dir.as_deref())?,
        PolicyCommand::Test { dir } => policy::test(dir.as_deref())?,
        PolicyCommand::Diff { old, new } => policy::compare(&old, &new)?,
        PolicyCommand::Analyze { dir, format } => policy::analyze(dir.as_deref(), &format)?,
        PolicyCommand::Explain {
            subject,
            action,
            evidence,
            dir,
            config,
        } => {
            let config = load_config(config.as_ref())?;
            let dir = dir.or_else(|| config.policy_dir.clone());
            let service = deskgate_app::build(config, Clock::system())
                .await
                .map_err(|e| e.to_string())?;
            let found = service
                .store()
                .subject(&subject)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no subject {subject} in the directory"))?;
            policy::explain(dir.as_deref(), &found, &action, &evidence)?
        }
    };
    println!("{out}");
    Ok(())
}

async fn audit_command(config: Option<PathBuf>, command: AuditCommand) -> Result<(), String> {
    if let AuditCommand::Verify {
        dir,
        url,
        key,
        token,
        previous,
    } = command
    {
        let report = match (dir, url) {
            (Some(dir), None) => audit::verify_dir(&dir, &key, previous.as_ref())?,
            (None, Some(url)) => {
                let token = token.ok_or("--url needs an auditor's --token (or DESKGATE_TOKEN)")?;
                audit::verify_url(&url, &key, &token, previous.as_ref()).await?
            }
            _ => return Err("give an export directory or --url".to_owned()),
        };
        println!("{report}");
        return Ok(());
    }
    let config = load_config(config.as_ref())?;
    let service = deskgate_app::build(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    match command {
        AuditCommand::Key => println!("{}", service.audit_verifier_key()),
        AuditCommand::Export { out, format } => {
            let ocsf = match format.as_str() {
                "log" => false,
                "ocsf" => true,
                other => return Err(format!("unknown format {other}: use log or ocsf")),
            };
            println!("{}", audit::export(&service, &out, ocsf).await?);
        }
        AuditCommand::Verify { .. } => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DESKGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One TLS crypto provider for the process (reqwest is built without its own).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            listen,
            data,
            database,
        } => demo(listen, data, database).await,
        Command::Serve { config } => match load_config(config.as_ref()) {
            Ok(c) => serve(c).await,
            Err(e) => Err(e),
        },
        Command::Admin { config, command } => match load_config(config.as_ref()) {
            Ok(c) => admin::run(c, command).await,
            Err(e) => Err(e),
        },
        Command::Audit { config, command } => audit_command(config, command).await,
        Command::Policy { command } => policy_command(command).await,
        Command::Config {
            command: ConfigCommand::Check { config },
        } => config_check::run(&config).await,
        Command::Device { config, command } => device_command(config, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deskgate: {e}");
            ExitCode::FAILURE
        }
    }
}
