//! The fictional organisation `deskgate demo` seeds: every tier, the awkward cases an attacker
//! looks for (a phone changed three days ago, a new hire with no factors, a terminated account),
//! and the help-desk staff who work the cases.

use chrono::{DateTime, Duration, Utc};
use deskgate_audit::{AuditEvent, event};
use deskgate_core::{
    Authenticator, AuthenticatorKind, Contact, ContactKind, IdentityOfRecord, Role, Staff, Subject,
    SubjectStatus,
};
use deskgate_store::{Change, NewAuditEntry, system_actor};
use serde::Serialize;
use serde_json::json;

use crate::error::AppError;
use crate::service::{Provenance, Service};

/// One seeded identity: id, name, groups, manager, owners, status, phone, how many days ago its
/// phone changed, days since hire, enrolled authenticators.
struct Person {
    id: &'static str,
    name: &'static str,
    groups: &'static [&'static str],
    manager: Option<&'static str>,
    owners: &'static [&'static str],
    status: SubjectStatus,
    phone: Option<&'static str>,
    phone_changed_days: i64,
    hired_days: i64,
    factors: bool,
}

const fn person(
    id: &'static str,
    name: &'static str,
    groups: &'static [&'static str],
    manager: Option<&'static str>,
    phone: &'static str,
) -> Person {
    Person {
        id,
        name,
        groups,
        manager,
        owners: &[],
        status: SubjectStatus::Active,
        phone: Some(phone),
        phone_changed_days: 700,
        hired_days: 1500,
        factors: true,
    }
}

const PEOPLE: &[Person] = &[
    person(
        "u-evelyn",
        "Evelyn Carter",
        &["executives"],
        None,
        "+1 555 010 0101",
    ),
    person(
        "u-marcus",
        "Marcus Holt",
        &["executives", "finance"],
        Some("u-evelyn"),
        "+1 555 010 0102",
    ),
    person(
        "u-daniel",
        "Daniel Okafor",
        &["executives"],
        Some("u-evelyn"),
        "+1 555 010 0103",
    ),
    person(
        "u-grace",
        "Grace Liu",
        &["it-admins"],
        Some("u-daniel"),
        "+1 555 010 0104",
    ),
    person(
        "u-priya",
        "Priya Natarajan",
        &["idp-admins"],
        Some("u-grace"),
        "+1 555 010 0105",
    ),
    person(
        "u-tomas",
        "Tomas Ortega",
        &["idp-admins"],
        Some("u-grace"),
        "+1 555 010 0106",
    ),
    person(
        "u-olivia",
        "Olivia Brandt",
        &["incident-response", "executives"],
        Some("u-evelyn"),
        "+1 555 010 0107",
    ),
    person(
        "u-hannah",
        "Hannah Schmidt",
        &["incident-response"],
        Some("u-olivia"),
        "+1 555 010 0108",
    ),
    person(
        "u-kwame",
        "Kwame Mensah",
        &["incident-response"],
        Some("u-olivia"),
        "+1 555 010 0109",
    ),
    person(
        "u-bob",
        "Bob Kramer",
        &["sales"],
        Some("u-marcus"),
        "+1 555 010 0110",
    ),
    person(
        "u-alice",
        "Alice Jensen",
        &["sales"],
        Some("u-bob"),
        "+1 555 010 0142",
    ),
    person(
        "u-carol",
        "Carol Diaz",
        &["finance"],
        Some("u-marcus"),
        "+1 555 010 0111",
    ),
    person(
        "u-dave",
        "Dave Whitfield",
        &["sales"],
        Some("u-bob"),
        "+1 555 010 0112",
    ),
    person(
        "u-erin",
        "Erin Walsh",
        &["finance"],
        Some("u-marcus"),
        "+1 555 010 0113",
    ),
    Person {
        phone_changed_days: 3,
        ..person(
            "u-frank",
            "Frank Osei",
            &["sales"],
            Some("u-bob"),
            "+1 555 010 0114",
        )
    },
    Person {
        hired_days: 5,
        factors: false,
        ..person(
            "u-gina",
            "Gina Park",
            &["sales"],
            Some("u-bob"),
            "+1 555 010 0115",
        )
    },
    Person {
        status: SubjectStatus::Terminated,
        ..person(
            "u-hank",
            "Hank Moody",
            &["sales"],
            Some("u-bob"),
            "+1 555 010 0116",
        )
    },
    Person {
        status: SubjectStatus::Locked,
        ..person(
            "u-ivan",
            "Ivan Petrov",
            &["sales"],
            Some("u-bob"),
            "+1 555 010 0117",
        )
    },
    Person {
        owners: &["u-erin", "u-carol"],
        phone: None,
        factors: false,
        manager: None,
        ..person(
            "svc-payroll",
            "Payroll export service",
            &["service-accounts"],
            None,
            "",
        )
    },
    person(
        "u-pat",
        "Pat Morgan",
        &["helpdesk"],
        Some("u-daniel"),
        "+1 555 010 0120",
    ),
    person(
        "u-sam",
        "Sam Rivera",
        &["helpdesk"],
        Some("u-pat"),
        "+1 555 010 0121",
    ),
    person(
        "u-jordan",
        "Jordan Blake",
        &["helpdesk"],
        Some("u-pat"),
        "+1 555 010 0122",
    ),
    person(
        "u-morgan",
        "Morgan Lee",
        &["helpdesk"],
        Some("u-pat"),
        "+1 555 010 0123",
    ),
    person(
        "u-riley",
        "Riley Chen",
        &["security-operations"],
        Some("u-olivia"),
        "+1 555 010 0124",
    ),
    person(
        "u-casey",
        "Casey Nguyen",
        &["security-operations"],
        Some("u-olivia"),
        "+1 555 010 0125",
    ),
    person(
        "u-avery",
        "Avery Stone",
        &["internal-audit"],
        Some("u-marcus"),
        "+1 555 010 0126",
    ),
    person(
        "u-quinn",
        "Quinn Adams",
        &["it-admins"],
        Some("u-grace"),
        "+1 555 010 0127",
    ),
];

/// (staff id, login name, role, subject id)
const STAFF: &[(&str, &str, Role, &str)] = &[
    ("st-sam", "sam.rivera", Role::Agent, "u-sam"),
    ("st-jordan", "jordan.blake", Role::Agent, "u-jordan"),
    ("st-morgan", "morgan.lee", Role::Supervisor, "u-morgan"),
    ("st-riley", "riley.chen", Role::SecurityOfficer, "u-riley"),
    ("st-casey", "casey.nguyen", Role::SecurityOfficer, "u-casey"),
    ("st-avery", "avery.stone", Role::Auditor, "u-avery"),
    ("st-quinn", "quinn.adams", Role::Admin, "u-quinn"),
];

fn email_of(p: &Person) -> String {
    if p.id.starts_with("svc-") {
        format!("{}@service.example.org", p.id)
    } else {
        let name = p.name.to_lowercase().replace(' ', ".");
        format!("{name}@example.org")
    }
}

fn subject_of(service: &Service, p: &Person, now: DateTime<Utc>) -> Subject {
    let long_ago = now - Duration::days(700);
    let groups: Vec<String> = p.groups.iter().map(|g| (*g).to_owned()).collect();
    let mut contacts = vec![Contact {
        kind: ContactKind::Email,
        value: email_of(p),
        verified_at: Some(long_ago),
        changed_at: long_ago,
    }];
    if let Some(phone) = p.phone {
        let changed = now - Duration::days(p.phone_changed_days);
        contacts.push(Contact {
            kind: ContactKind::Phone,
            value: phone.to_owned(),
            verified_at: Some(changed),
            changed_at: changed,
        });
    }
    let authenticators = if p.factors {
        vec![
            Authenticator {
                id: format!("pk-{}", p.id),
                kind: AuthenticatorKind::Passkey,
                label: "Laptop passkey".to_owned(),
                enrolled_at: long_ago,
            },
            Authenticator {
                id: format!("push-{}", p.id),
                kind: AuthenticatorKind::Push,
                label: "Phone authenticator app".to_owned(),
                enrolled_at: long_ago,
            },
        ]
    } else {
        Vec::new()
    };
    Subject {
        id: p.id.to_owned(),
        display_name: p.name.to_owned(),
        tier: service.config.tier_for_groups(&groups),
        status: p.status,
        manager: p.manager.map(str::to_owned),
        owners: p.owners.iter().map(|o| (*o).to_owned()).collect(),
        groups,
        contacts,
        authenticators,
        flagged: false,
        hired_at: Some(now - Duration::days(p.hired_days)),
        // No time zone: the off-hours signal would make the demo behave differently by the hour.
        utc_offset_minutes: None,
        probation_until: None,
        // HR's record of the person's legal name, which identity proofing must match.
        identity: p
            .name
            .split_once(' ')
            .filter(|_| !p.id.starts_with("svc-"))
            .map(|(given, family)| IdentityOfRecord {
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                birthdate: None,
            }),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoStaff {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub subject_id: String,
    pub token: String,
}

/// Seeds the organisation when the directory is empty, (re)creates the staff, and issues a fresh
/// API token for each staff member.
pub async fn seed(service: &Service) -> Result<Vec<DemoStaff>, AppError> {
    let now = service.now();
    if service.store.subject_count().await? == 0 {
        seed_people(service, now).await?;
        settle_authenticators(service, now).await?;
    }
    let mut out = Vec::new();
    for (id, name, role, subject_id) in STAFF {
        service
            .store
            .upsert_staff(&Staff {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                role: *role,
                subject_id: Some((*subject_id).to_owned()),
                team: "service-desk".to_owned(),
                region: "us-east".to_owned(),
                shift: "day".to_owned(),
            })
            .await?;
        let token = service.create_token(name, "demo").await?;
        out.push(DemoStaff {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
            role: *role,
            subject_id: (*subject_id).to_owned(),
            token,
        });
    }
    Ok(out)
}

/// Writes the demo's people and gives them the recovery codes and authenticator apps they
/// enrolled.
async fn seed_people(service: &Service, now: DateTime<Utc>) -> Result<(), AppError> {
    let subjects: Vec<Subject> = PEOPLE.iter().map(|p| subject_of(service, p, now)).collect();
    let count = subjects.len();
    service
        .store
        .commit(Change {
            subjects,
            audit: vec![NewAuditEntry::new(
                now,
                system_actor(),
                None,
                AuditEvent::DirectorySeeded(event::DirectorySeeded::Subjects(
                    event::SeededSubjects {
                        subjects: count as u64,
                        source: "demo".to_owned(),
                    },
                )),
            )],
            ..Change::default()
        })
        .await?;
    // Everyone saved recovery codes and set up their app at enrolment, and keeps them offline:
    // the demo writes what each person keeps to subject-secrets.json, never to a mailbox.
    let mut kept = serde_json::Map::new();
    for p in PEOPLE
        .iter()
        .filter(|p| p.status == SubjectStatus::Active && !p.id.starts_with("svc-"))
    {
        let held = Provenance::held(p.id, "demo enrolment, kept offline (subject-secrets.json)");
        let mut secrets = serde_json::Map::new();
        secrets.insert("name".to_owned(), json!(p.name));
        secrets.insert("email".to_owned(), json!(email_of(p)));
        match service
            .issue_recovery_codes(p.id, &system_actor(), &held)
            .await
        {
            Ok(codes) => {
                secrets.insert("recovery_codes".to_owned(), json!(codes));
            }
            Err(e) => {
                tracing::warn!(subject = p.id, error = %e.message(), "recovery codes not issued");
            }
        }
        if p.factors {
            match service.enroll_totp(p.id, &system_actor(), &held).await {
                Ok(uri) => {
                    secrets.insert("authenticator_app".to_owned(), json!(uri));
                }
                Err(e) => {
                    tracing::warn!(subject = p.id, error = %e.message(), "authenticator app not enrolled");
                }
            }
        }
        kept.insert(p.id.to_owned(), serde_json::Value::Object(secrets));
    }
    write_subject_secrets(&service.config().data_dir, kept)?;
    Ok(())
}

/// The demo's people bound their authenticator apps long ago: an app bound inside the freshness
/// window is no device of record.
async fn settle_authenticators(service: &Service, now: DateTime<Utc>) -> Result<(), AppError> {
    let mut settled = Vec::new();
    for p in PEOPLE.iter().filter(|p| p.factors) {
        if let Some(mut subject) = service.store.subject(p.id).await? {
            for a in &mut subject.authenticators {
                a.enrolled_at = a.enrolled_at.min(now - Duration::days(700));
            }
            settled.push(subject);
        }
    }
    service
        .store
        .commit(Change {
            subjects: settled,
            audit: vec![NewAuditEntry::new(
                now,
                system_actor(),
                None,
                AuditEvent::DirectorySeeded(event::DirectorySeeded::AuthenticatorsSettled(
                    event::SeededAuthenticators {
                        source: "demo".to_owned(),
                        authenticators_bound_at: "700 days ago".to_owned(),
                    },
                )),
            )],
            ..Change::default()
        })
        .await?;

    Ok(())
}

/// The file where the demo keeps what each demo person holds offline.
pub const SUBJECT_SECRETS: &str = "subject-secrets.json";

/// Writes what each demo person keeps offline (their saved recovery codes and authenticator
/// app) to `SUBJECT_SECRETS` in the data directory, readable by its owner only: it stands for
/// the paper and the phone in each person's hands, not for a mailbox Deskgate sends to.
fn write_subject_secrets(
    data_dir: &std::path::Path,
    subjects: serde_json::Map<String, serde_json::Value>,
) -> Result<(), AppError> {
    let text = serde_json::to_string_pretty(&json!({
        "about": "What each demo person keeps offline from their enrolment: never sent by Deskgate.",
        "subjects": subjects,
    }))
    .map_err(|e| AppError::internal("demo_secrets", e.to_string()))?;
    let path = data_dir.join(SUBJECT_SECRETS);
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(text.as_bytes())
    };
    write().map_err(|e| {
        AppError::internal(
            "demo_secrets",
            format!("cannot write {}: {e}", path.display()),
        )
    })
}
