//! The built-in directory's subjects: importing them and finding them.

use super::*;

impl Service {
    /// Imports directory subjects (one JSON object per item, the `Subject` shape), replacing
    /// those with the same id, in one commit with its audit entry. The tier comes from the
    /// subject's groups through `tier_groups`, never from the file, so an import cannot lower it.
    pub async fn import_subjects(
        &self,
        mut subjects: Vec<Subject>,
        by: &Actor,
    ) -> AppResult<usize> {
        for s in &mut subjects {
            if s.id.trim().is_empty() || s.id.len() > 128 || s.display_name.trim().is_empty() {
                return Err(AppError::invalid(format!(
                    "subject {:?}: id and display_name are required (id at most 128 characters)",
                    s.id
                )));
            }
            s.tier = self.config.tier_for_groups(&s.groups);
        }
        let count = subjects.len();
        let subject_ids: Vec<String> = subjects.iter().map(|s| s.id.clone()).collect();
        self.store
            .commit(Change {
                subjects,
                audit: vec![self.entry(
                    by,
                    None,
                    AuditEvent::DirectoryImported(event::DirectoryImported {
                        count: count as u64,
                        subject_ids,
                    }),
                )],
                ..Change::default()
            })
            .await?;
        Ok(count)
    }

    pub async fn search_subjects(
        &self,
        caller: &Staff,
        query: &str,
    ) -> AppResult<Vec<SubjectView>> {
        if !caller.role.works_cases() {
            return Err(AppError::forbidden(
                "only help-desk staff search the directory",
            ));
        }
        let q = query.trim();
        if q.chars().count() < 2 || q.chars().count() > 100 {
            return Err(AppError::invalid("q must be 2 to 100 characters"));
        }
        let found = self.store.search_subjects(q, 25).await?;
        Ok(found.iter().map(SubjectView::from).collect())
    }
}
