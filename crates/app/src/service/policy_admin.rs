//! Policy administration: reloading the bundle.

use super::*;

impl Service {
    /// Reloads the policy bundle (admin API, or SIGHUP when `by` is `None`). A bundle that fails
    /// to load is refused with its file:line problems and the running one stays in force.
    pub async fn reload_policy(&self, by: Option<&Staff>) -> AppResult<Value> {
        if let Some(staff) = by
            && staff.role != Role::Admin
        {
            return Err(AppError::forbidden("only admins reload the policy bundle"));
        }
        let who = by.map(actor).unwrap_or_else(system_actor);
        let old = self.bundle().digest().to_owned();
        let loaded = policy_gate::load(self.config.policy_dir.as_deref())
            .map_err(|e| e.to_string())
            .and_then(|b| b.check_gates(self.now()).map(|()| b));
        let bundle = match loaded {
            Ok(b) => b,
            Err(problems) => {
                self.store
                    .commit(Change {
                        audit: vec![self.entry(
                            &who,
                            None,
                            AuditEvent::PolicyReloadRefused(event::PolicyReloadRefused {
                                current_digest: old.clone(),
                                problems: problems.clone(),
                            }),
                        )],
                        ..Change::default()
                    })
                    .await?;
                return Err(AppError::invalid_as(
                    "policy_invalid",
                    format!("the bundle was refused; {old} stays in force: {problems}"),
                ));
            }
        };
        let new = bundle.digest().to_owned();
        let mut entry = self.entry(
            &who,
            None,
            AuditEvent::PolicyReloaded(event::PolicyReloaded {
                old_digest: old.clone(),
                new_digest: new.clone(),
                policies: bundle.policy_count() as u64,
            }),
        );
        entry.policy_digest = Some(new.clone());
        // Audited before it takes effect: no decision under a bundle the log does not name.
        self.store
            .commit(Change {
                audit: vec![entry],
                ..Change::default()
            })
            .await?;
        match self.policy.write() {
            Ok(mut current) => *current = Arc::new(bundle),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(bundle),
        }
        tracing::info!(old = %old, new = %new, "policy bundle reloaded");
        Ok(json!({ "old_digest": old, "new_digest": new }))
    }
}
