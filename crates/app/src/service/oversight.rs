//! Oversight reads for the console: the dashboard's statistics for supervisors, security officers
//! and auditors, the security officer's overview (escalations, break-glass, watched subjects), the
//! admin's staff directory, the demo sign-in roster, and the one case detail the case view does
//! not carry yet (the grant's cooling-off end). Each checks the caller's role here and returns
//! typed data; the console only renders it.

use std::collections::BTreeSet;

use deskgate_core::Tier;

use super::*;

mod stats;

pub use stats::{Day, Exceptions, Stats};

/// The newest cases the dashboard reads; older ones fall outside the two-week window anyway on
/// any desk of the demo's size.
const DASHBOARD_CASES: u32 = 1000;

/// Recent cases whose subjects are checked for probation and flags: probation follows an
/// execution, so executed cases name every subject on it unless older than this many cases.
const RECENT: u32 = 500;

/// A subject of a recent case who is on probation now or flagged by the security team.
#[derive(Debug)]
pub struct WatchedSubject {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    /// The end of the probation, while it lasts.
    pub probation_until: Option<DateTime<Utc>>,
    pub flagged: bool,
}

/// What the security officer's page shows.
#[derive(Debug)]
pub struct SecurityOverview {
    /// Escalated cases to take over.
    pub escalated: Vec<CaseSummary>,
    pub break_glass: Vec<CaseSummary>,
    pub watched: Vec<WatchedSubject>,
}

/// What the admin's page shows.
pub struct AdminOverview {
    pub bundle: Arc<Bundle>,
    pub tests: deskgate_policy::TestReport,
    /// The bundle's attack paths and its gates' verdict, or why they could not be computed.
    pub analysis: Result<deskgate_policy::Analysis, String>,
    pub staff: Vec<Staff>,
}

/// A staff member as the demo sign-in page lists them: a name to sign in as and a role.
#[derive(Debug)]
pub struct RosterEntry {
    pub name: String,
    pub role: Role,
}

impl Service {
    /// The last two weeks of cases in numbers, for supervisors, security officers and auditors.
    pub async fn dashboard_stats(&self, caller: &Staff) -> AppResult<Stats> {
        if !matches!(
            caller.role,
            Role::Supervisor | Role::SecurityOfficer | Role::Auditor
        ) {
            return Err(AppError::forbidden(
                "the dashboard is for supervisors, security officers and auditors",
            ));
        }
        let cases = self
            .store
            .list_cases(&CaseFilter {
                limit: DASHBOARD_CASES,
                ..CaseFilter::default()
            })
            .await?;
        let people = self.store.list_staff().await?;
        Ok(stats::compute(&cases, &people, self.now()))
    }

    /// The security officer's page: escalated cases, the break-glass report and the subjects of
    /// recent cases on probation or flagged.
    pub async fn security_overview(&self, caller: &Staff) -> AppResult<SecurityOverview> {
        if caller.role != Role::SecurityOfficer {
            return Err(AppError::forbidden("this page is for security officers"));
        }
        Ok(SecurityOverview {
            escalated: self
                .list_cases(caller, Some(CaseState::Escalated), false)
                .await?,
            break_glass: self.break_glass_report(caller).await?,
            watched: self.watched_subjects().await?,
        })
    }

    async fn watched_subjects(&self) -> AppResult<Vec<WatchedSubject>> {
        let mut ids = BTreeSet::new();
        for state in [Some(CaseState::Executed), None] {
            let cases = self
                .store
                .list_cases(&CaseFilter {
                    state,
                    limit: RECENT,
                    ..CaseFilter::default()
                })
                .await?;
            ids.extend(cases.into_iter().map(|c| c.subject_id));
        }
        let now = self.now();
        let mut watched = Vec::new();
        for id in ids {
            let Some(subject) = self.store.subject(&id).await? else {
                continue;
            };
            let on_probation = subject.on_probation(now);
            if on_probation || subject.flagged {
                watched.push(WatchedSubject {
                    id: subject.id,
                    name: subject.display_name,
                    tier: subject.tier,
                    probation_until: subject.probation_until.filter(|_| on_probation),
                    flagged: subject.flagged,
                });
            }
        }
        Ok(watched)
    }

    /// The admin's page: the bundle in force with its own tests run now (they are small, and the
    /// answer must be about the bundle in force, not one loaded earlier), and the staff directory.
    pub async fn admin_overview(&self, caller: &Staff) -> AppResult<AdminOverview> {
        if caller.role != Role::Admin {
            return Err(AppError::forbidden("this page is for admins"));
        }
        let bundle = self.bundle();
        let tests = deskgate_policy::run_tests(&bundle);
        let analysis = bundle.analyze(self.now()).map_err(|e| e.to_string());
        Ok(AdminOverview {
            bundle,
            tests,
            analysis,
            staff: self.store.list_staff().await?,
        })
    }

    /// Names and roles to sign in as, for the demo sign-in page. Only the console calls this, and
    /// only when it was started with demo sign-in; nothing else about the staff is handed out.
    pub async fn demo_roster(&self) -> AppResult<Vec<RosterEntry>> {
        Ok(self
            .store
            .list_staff()
            .await?
            .into_iter()
            .map(|s| RosterEntry {
                name: s.name,
                role: s.role,
            })
            .collect())
    }

    /// The cooling-off end of the case's grant, for whoever may see the case. The case view does
    /// not carry it yet; the console's live panel counts down to it.
    pub async fn grant_not_before(
        &self,
        caller: &Staff,
        id: &str,
    ) -> AppResult<Option<DateTime<Utc>>> {
        let stored = self.load_case(id).await?;
        if !Self::can_view(caller, &stored.case) {
            return Err(AppError::forbidden("you may only see your own cases"));
        }
        Ok(stored.case.grant.and_then(|g| g.not_before))
    }
}
