//! `deskgate admin`: tokens, staff members and subject imports, on the local data directory.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use deskgate_app::{Clock, Config, Service};
use deskgate_core::{ApiId, Role, Staff};

use crate::refusal::refusal;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Staff members.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Import directory subjects from a JSON-lines file (one subject per line).
    ImportSubjects { file: PathBuf },
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a bearer token for a staff member; it is printed once and stored hashed.
    Create {
        #[arg(long)]
        staff: String,
        #[arg(long, default_value = "cli")]
        label: String,
        /// Days until the token expires (1 to 366); `api_token_days` from the config if unset.
        #[arg(long)]
        expires_days: Option<i64>,
    },
    /// List every token issued (id, staff, label, live / expired / revoked); never the token.
    List {
        #[arg(long)]
        staff: Option<String>,
    },
    /// Revoke one token by the id `list` prints.
    Revoke {
        #[arg(long)]
        id: String,
    },
    /// Revoke every token of a staff member (offboarding, a lost device).
    RevokeAll {
        #[arg(long)]
        staff: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum StaffCommand {
    /// Add or update a staff member.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// agent, supervisor, security_officer, auditor or admin
        #[arg(long)]
        role: String,
        /// The staff member's own identity in the directory.
        #[arg(long)]
        subject: Option<String>,
        /// The identity the OpenID provider vouches for (the `[oidc] claim`, e.g. their email);
        /// an empty value removes it. Omitted: unchanged.
        #[arg(long)]
        sso_identity: Option<String>,
    },
    /// Disable a staff member: every token revoked, no sign-in by any method.
    Disable {
        #[arg(long)]
        name: String,
    },
    /// Let a disabled staff member sign in again.
    Enable {
        #[arg(long)]
        name: String,
    },
    List,
}

/// The administrator at the machine, as audit entries name them.
pub(crate) fn cli_actor() -> deskgate_store::Actor {
    deskgate_store::Actor {
        id: "cli".to_owned(),
        role: "admin".to_owned(),
        auth: "local_cli".to_owned(),
    }
}

pub(crate) async fn run(config: Config, command: AdminCommand) -> Result<(), String> {
    let service = deskgate_app::build(config, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    match command {
        AdminCommand::Token { command } => token(&service, command).await,
        AdminCommand::Staff { command } => staff(&service, command).await,
        AdminCommand::ImportSubjects { file } => import_subjects(&service, &file).await,
    }
}

async fn token(service: &Service, command: TokenCommand) -> Result<(), String> {
    match command {
        TokenCommand::Create {
            staff,
            label,
            expires_days,
        } => {
            let days = expires_days.unwrap_or(service.config().api_token_days);
            let token = service
                .create_token_for_days(&staff, &label, days)
                .await
                .map_err(refusal)?;
            println!("{token}");
        }
        TokenCommand::List { staff } => {
            let tokens = service
                .list_tokens(staff.as_deref())
                .await
                .map_err(refusal)?;
            println!(
                "{:<12}  {:<10} {:<16} {:<8} {:<25} expires",
                "id", "staff", "label", "state", "created"
            );
            for t in tokens {
                let text = |k: &str| t[k].as_str().unwrap_or("-").to_owned();
                println!(
                    "{:<12}  {:<10} {:<16} {:<8} {:<25} {}",
                    text("id"),
                    text("staff_id"),
                    text("label"),
                    text("state"),
                    text("created_at"),
                    text("expires_at")
                );
            }
        }
        TokenCommand::Revoke { id } => {
            service
                .revoke_token_by_id(&id, &cli_actor())
                .await
                .map_err(refusal)?;
            println!("revoked");
        }
        TokenCommand::RevokeAll { staff } => {
            let n = service
                .revoke_staff_tokens(&staff, &cli_actor())
                .await
                .map_err(refusal)?;
            println!("revoked {n} token(s)");
        }
    }
    Ok(())
}

async fn staff(service: &Service, command: StaffCommand) -> Result<(), String> {
    match command {
        StaffCommand::Add {
            id,
            name,
            role,
            subject,
            sso_identity,
        } => add_staff(service, id, name, &role, subject, sso_identity).await?,
        StaffCommand::Disable { name } => {
            service
                .set_staff_disabled(&name, true, &cli_actor())
                .await
                .map_err(refusal)?;
            println!("disabled {name}");
        }
        StaffCommand::Enable { name } => {
            service
                .set_staff_disabled(&name, false, &cli_actor())
                .await
                .map_err(refusal)?;
            println!("enabled {name}");
        }
        StaffCommand::List => list_staff(service).await?,
    }
    Ok(())
}

async fn add_staff(
    service: &Service,
    id: String,
    name: String,
    role: &str,
    subject: Option<String>,
    sso_identity: Option<String>,
) -> Result<(), String> {
    let role = Role::from_api_id(role).ok_or_else(|| {
        format!(
            "role must be one of: {}",
            Role::all()
                .iter()
                .map(ApiId::api_id)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if role.works_cases() && subject.is_none() {
        return Err(format!(
            "a {role} works recovery cases and must be linked to their own identity in the \
             directory (--subject): \"a different person\" is decided on it"
        ));
    }
    if let Some(s) = &subject
        && service
            .store()
            .subject(s)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
    {
        return Err(format!("no subject {s} in the directory"));
    }
    service
        .store()
        .upsert_staff(&Staff {
            id,
            name: name.clone(),
            role,
            subject_id: subject,
            team: String::new(),
            region: String::new(),
            shift: String::new(),
        })
        .await
        .map_err(|e| e.to_string())?;
    if let Some(identity) = sso_identity {
        service
            .set_staff_sso_identity(&name, Some(&identity), &cli_actor())
            .await
            .map_err(refusal)?;
    }
    println!("ok");
    Ok(())
}

async fn list_staff(service: &Service) -> Result<(), String> {
    let access: std::collections::HashMap<_, _> = service
        .store()
        .staff_access()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(id, sso, disabled)| (id, (sso, disabled)))
        .collect();
    for s in service
        .store()
        .list_staff()
        .await
        .map_err(|e| e.to_string())?
    {
        let (sso, disabled) = access.get(&s.id).cloned().unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            s.id,
            s.name,
            s.role.api_id(),
            s.subject_id.unwrap_or_default(),
            sso.unwrap_or_default(),
            if disabled.is_some() {
                "disabled"
            } else {
                "active"
            }
        );
    }
    Ok(())
}

async fn import_subjects(service: &Service, file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let subjects = deskgate_core::parse_subject_lines(&text)
        .map_err(|e| format!("{}:{}: {}", file.display(), e.line, e.source))?;
    let n = service
        .import_subjects(subjects, &cli_actor())
        .await
        .map_err(refusal)?;
    println!("imported {n} subject(s)");
    Ok(())
}
