//! Refused sign-ins that were only counted (see the console's sign-in guard) are written to the
//! audit log as one summary entry per address and window.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use deskgate_audit::{AuditEvent, event};
use deskgate_store::{Actor, Change};

use super::Service;

/// A closed window's refusals that were only counted: one `staff.sign_in_failures` entry.
#[derive(Debug)]
pub struct FailureSummary {
    pub address: IpAddr,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub count: u64,
    pub reasons: BTreeMap<String, u64>,
    pub methods: BTreeMap<String, u64>,
}

impl Service {
    /// Writes the summaries of refused sign-ins that were only counted. The refusals stand
    /// whether or not this is recorded.
    pub async fn audit_sign_in_failures(&self, summaries: Vec<FailureSummary>) {
        if summaries.is_empty() {
            return;
        }
        let actor = Actor {
            id: "anonymous".to_owned(),
            role: "unauthenticated".to_owned(),
            auth: "none".to_owned(),
        };
        let audit = summaries
            .into_iter()
            .map(|s| {
                self.entry(
                    &actor,
                    None,
                    AuditEvent::StaffSignInFailures(event::StaffSignInFailures {
                        address: s.address.to_string(),
                        count: s.count,
                        reasons: s.reasons,
                        methods: s.methods,
                        from: s.from,
                        to: s.to,
                    }),
                )
            })
            .collect();
        if let Err(e) = self
            .store
            .commit(Change {
                audit,
                ..Change::default()
            })
            .await
        {
            tracing::error!(error = %e, "summary of refused sign-ins not audited");
        }
    }
}
