//! The dashboard's numbers, computed from stored cases by one pure function so they can be
//! checked against hand-counted values without a server.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use deskgate_core::{Action, ApiId, Case, CaseState, Staff, Tier};

/// Days shown in the per-day chart, today included.
pub(crate) const DAYS: usize = 14;

/// Cases opened on one UTC day, per action in [`Action::all`] order.
#[derive(Debug, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    pub per_action: Vec<u32>,
}

impl Day {
    pub fn total(&self) -> u32 {
        self.per_action.iter().sum()
    }
}

/// Exceptions attributed to one agent or one shift.
#[derive(Debug, PartialEq, Eq)]
pub struct Exceptions {
    pub who: String,
    pub break_glass: u32,
    pub escalations: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Stats {
    /// Oldest first, ending today.
    pub days: Vec<Day>,
    /// Every tier, in [`Tier::all`] order, with the cases opened in the window.
    pub by_tier: Vec<(Tier, u32)>,
    /// Cases opened in the window; the rates below are over these.
    pub total: u32,
    pub denied: u32,
    pub escalated: u32,
    pub executed: u32,
    /// Median time from opening to execution of the window's executed cases.
    pub median_to_execute: Option<Duration>,
    /// Agents and shifts with at least one exception, by name.
    pub per_agent: Vec<Exceptions>,
    pub per_shift: Vec<Exceptions>,
}

/// A case counts as escalated while it is escalated, and also after a security officer resumed
/// it: the policy decision that escalated it stays pinned on the case.
fn was_escalated(case: &Case) -> bool {
    case.state == CaseState::Escalated || case.decisions.iter().any(|d| d.outcome == "escalate")
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort();
    let mid = values.len() / 2;
    let upper = values.get(mid).copied()?;
    if values.len() % 2 == 1 {
        return Some(upper);
    }
    // An even count: the mean of the two middle values (`mid` is at least 1 here).
    values.get(mid - 1).map(|lower| (*lower + upper) / 2)
}

/// Counts the cases opened in the [`DAYS`] days ending on `now`'s UTC date. Exceptions are
/// attributed to the case's current agent (a resumed case belongs to the officer who resumed
/// it) and to that agent's shift; staff without a shift are grouped as "unassigned".
pub(crate) fn compute(cases: &[Case], staff: &[Staff], now: DateTime<Utc>) -> Stats {
    let today = now.date_naive();
    let first = today - Duration::days(DAYS as i64 - 1);
    let actions = Action::all();
    let mut days: Vec<Day> = first
        .iter_days()
        .take(DAYS)
        .map(|date| Day {
            date,
            per_action: vec![0; actions.len()],
        })
        .collect();
    let mut tiers: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut total, mut denied, mut escalated, mut executed) = (0, 0, 0, 0);
    let mut to_execute = Vec::new();
    let mut per_agent: BTreeMap<String, Exceptions> = BTreeMap::new();
    let mut per_shift: BTreeMap<String, Exceptions> = BTreeMap::new();
    for case in cases {
        let date = case.opened_at.date_naive();
        if date < first || date > today {
            continue;
        }
        total += 1;
        let day = (date - first).num_days() as usize;
        let action = actions.iter().position(|a| *a == case.action);
        if let (Some(day), Some(action)) = (days.get_mut(day), action)
            && let Some(count) = day.per_action.get_mut(action)
        {
            *count += 1;
        }
        *tiers.entry(case.subject_tier.api_id()).or_default() += 1;
        match case.state {
            CaseState::Denied => denied += 1,
            CaseState::Executed => {
                executed += 1;
                if let Some(at) = case.executed_at {
                    to_execute.push(at - case.opened_at);
                }
            }
            _ => {}
        }
        let escalation = was_escalated(case);
        escalated += u32::from(escalation);
        if !(escalation || case.break_glass) {
            continue;
        }
        let agent = staff.iter().find(|s| s.id == case.agent_id);
        let name = agent.map_or_else(|| case.agent_id.clone(), |s| s.name.clone());
        let shift = agent
            .map(|s| s.shift.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unassigned".to_owned());
        for (key, map) in [(name, &mut per_agent), (shift, &mut per_shift)] {
            let row = map.entry(key.clone()).or_insert_with(|| Exceptions {
                who: key,
                break_glass: 0,
                escalations: 0,
            });
            row.break_glass += u32::from(case.break_glass);
            row.escalations += u32::from(escalation);
        }
    }
    Stats {
        days,
        by_tier: Tier::all()
            .iter()
            .map(|t| (*t, tiers.get(t.api_id()).copied().unwrap_or(0)))
            .collect(),
        total,
        denied,
        escalated,
        executed,
        median_to_execute: median(to_execute),
        per_agent: per_agent.into_values().collect(),
        per_shift: per_shift.into_values().collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use deskgate_core::{Channel, PolicyPin, Requirements, RiskAssessment, RiskLevel, Role};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 20, 15, 0, 0).unwrap()
    }

    fn case(
        id: &str,
        agent: &str,
        action: Action,
        tier: Tier,
        state: CaseState,
        opened_days_ago: i64,
    ) -> Case {
        let opened = now() - Duration::days(opened_days_ago) - Duration::hours(1);
        Case {
            id: id.to_owned(),
            subject_id: format!("u-{id}"),
            subject_name: String::new(),
            number: 0,
            subject_tier: tier,
            action,
            channel: Channel::Phone,
            agent_id: agent.to_owned(),
            caller_number: None,
            ticket: None,
            note: None,
            new_contact: None,
            requester: None,
            state,
            opened_at: opened,
            updated_at: opened,
            risk: RiskAssessment {
                level: RiskLevel::Low,
                reasons: Vec::new(),
            },
            requirements: Requirements::simple_rules(tier, action),
            verifications: Vec::new(),
            approvals: Vec::new(),
            grant: None,
            grants_minted: 0,
            outcome_reason: None,
            executed_at: None,
            decisions: Vec::new(),
            break_glass: false,
            participants: vec![format!("u-{agent}")],
            failure_escalations: 0,
        }
    }

    fn executed_after(mut c: Case, minutes: i64) -> Case {
        c.executed_at = Some(c.opened_at + Duration::minutes(minutes));
        c
    }

    fn staff(id: &str, name: &str, shift: &str) -> Staff {
        Staff {
            id: id.to_owned(),
            name: name.to_owned(),
            role: Role::Agent,
            subject_id: None,
            team: String::new(),
            region: String::new(),
            shift: shift.to_owned(),
        }
    }

    fn escalate_pin() -> PolicyPin {
        PolicyPin {
            stage: "open".to_owned(),
            outcome: "escalate".to_owned(),
            bundle_digest: String::new(),
            policy_ids: Vec::new(),
            reasons: Vec::new(),
            at: now(),
        }
    }

    fn index(action: Action) -> usize {
        Action::all().iter().position(|a| *a == action).unwrap()
    }

    #[test]
    fn counts_rates_median_and_exceptions_match_hand_counts() {
        use Action::{MfaReset, PasswordReset};
        use CaseState::{Denied, Escalated, Executed, Open, Verifying};
        let mut resumed = case("e", "st-b", MfaReset, Tier::Privileged, Verifying, 1);
        resumed.decisions.push(escalate_pin());
        let mut glass = executed_after(
            case("f", "st-b", PasswordReset, Tier::Executive, Executed, 1),
            50,
        );
        glass.break_glass = true;
        let cases = vec![
            executed_after(
                case("a", "st-a", PasswordReset, Tier::Standard, Executed, 0),
                10,
            ),
            executed_after(
                case("b", "st-a", PasswordReset, Tier::Standard, Executed, 0),
                30,
            ),
            case("c", "st-a", MfaReset, Tier::Sensitive, Denied, 0),
            case("d", "st-c", MfaReset, Tier::Privileged, Escalated, 13),
            resumed,
            glass,
            // Outside the window: counted nowhere.
            case("old", "st-a", MfaReset, Tier::Standard, Denied, 14),
            case("g", "st-a", PasswordReset, Tier::Standard, Open, 2),
        ];
        let staff = [
            staff("st-a", "ann", "day"),
            staff("st-b", "bob", "night"),
            staff("st-c", "cy", ""),
        ];
        let s = compute(&cases, &staff, now());

        assert_eq!(s.days.len(), DAYS);
        assert_eq!(s.days[0].date, NaiveDate::from_ymd_opt(2026, 3, 7).unwrap());
        let today = &s.days[DAYS - 1];
        assert_eq!(today.date, NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
        assert_eq!(today.per_action[index(PasswordReset)], 2);
        assert_eq!(today.per_action[index(MfaReset)], 1);
        assert_eq!(today.total(), 3);
        assert_eq!(s.days[DAYS - 2].total(), 2, "e and f, yesterday");
        assert_eq!(s.days[DAYS - 3].total(), 1, "g");
        assert_eq!(s.days[0].per_action[index(MfaReset)], 1, "d, 13 days ago");
        let per_day: u32 = s.days.iter().map(Day::total).sum();
        assert_eq!(per_day, 7);

        let tier = |t: Tier| s.by_tier.iter().find(|(x, _)| *x == t).unwrap().1;
        assert_eq!(tier(Tier::Standard), 3);
        assert_eq!(tier(Tier::Sensitive), 1);
        assert_eq!(tier(Tier::Privileged), 2);
        assert_eq!(tier(Tier::Executive), 1);
        assert_eq!(tier(Tier::Service), 0);

        assert_eq!(
            (s.total, s.denied, s.escalated, s.executed),
            (7, 1, 2, 3),
            "the old denial is outside the window; d and the resumed e are escalations"
        );
        // Executed after 10, 30 and 50 minutes: the median is 30.
        assert_eq!(s.median_to_execute, Some(Duration::minutes(30)));

        assert_eq!(
            s.per_agent,
            vec![
                Exceptions {
                    who: "bob".into(),
                    break_glass: 1,
                    escalations: 1
                },
                Exceptions {
                    who: "cy".into(),
                    break_glass: 0,
                    escalations: 1
                },
            ]
        );
        assert_eq!(
            s.per_shift,
            vec![
                Exceptions {
                    who: "night".into(),
                    break_glass: 1,
                    escalations: 1
                },
                Exceptions {
                    who: "unassigned".into(),
                    break_glass: 0,
                    escalations: 1
                },
            ]
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let m = |v: &[i64]| median(v.iter().map(|m| Duration::minutes(*m)).collect());
        assert_eq!(m(&[]), None);
        assert_eq!(m(&[40, 10, 20, 90]), Some(Duration::minutes(30)));
        assert_eq!(m(&[7]), Some(Duration::minutes(7)));
    }

    #[test]
    fn no_cases_gives_empty_days_and_no_median() {
        let s = compute(&[], &[], now());
        assert!(s.days.iter().all(|d| d.total() == 0));
        assert_eq!((s.total, s.median_to_execute), (0, None));
        assert!(s.per_agent.is_empty() && s.per_shift.is_empty());
    }
}
