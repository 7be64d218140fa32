//! Takeover units: what an attacker must control to produce a piece of evidence. A code sent to
//! a phone needs that phone (SIM swap, port-out); a code mailed needs that mailbox; a recovery code
//! that was ever mailed needs that mailbox too; a manager's attestation needs the manager and the
//! phone their sign-in code goes to. Independence is computed from these units, not declared by a
//! method's label: two pieces of evidence count as two classes only when no unit is shared, so
//! one takeover never yields two classes.

use std::collections::{BTreeMap, BTreeSet};

use crate::evidence::{Evidence, IndependenceClass};

/// The takeover units of one piece of evidence, e.g. `phone:…17#3f9a0c1d`, `mailbox:a…@example.com#…`,
/// `device:totp-1`, `manager:u-mgr`, `document`, `agent`.
pub type Units = BTreeSet<String>;

/// A phone of record, named by its masked form and a keyed fingerprint of the full number (the
/// mask alone could name two numbers as one, the fingerprint tells them apart without showing
/// the number).
pub fn phone(masked: &str, fingerprint: &str) -> String {
    format!("phone:{masked}#{fingerprint}")
}

/// A mailbox of record, named like [`phone`].
pub fn mailbox(masked: &str, fingerprint: &str) -> String {
    format!("mailbox:{masked}#{fingerprint}")
}

/// An enrolled device or authenticator, by its id of record.
pub fn device(authenticator_id: &str) -> String {
    format!("device:{authenticator_id}")
}

/// A person who vouches (a manager or an owner), by their id of record: their own say-so.
pub fn person(subject_id: &str) -> String {
    format!("manager:{subject_id}")
}

/// What a person keeps offline from an enrolment (saved recovery codes, the device holding an
/// app's seed): only that person, or whoever takes it from them, has it.
pub fn held(subject_id: &str) -> String {
    format!("held:{subject_id}")
}

/// The most pieces of evidence of one class the search tries.
const MAX_OPTIONS_PER_CLASS: usize = 8;

/// An identity document checked by a proofing vendor.
pub const DOCUMENT: &str = "document";

/// The agent's own say-so (e.g. that a callback reached the right person).
pub const AGENT: &str = "agent";

/// Which pieces of counting evidence are counted, one per class, with no takeover unit shared
/// between two of them; and why each other piece was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The verification ids counted, by class.
    pub counted: BTreeMap<IndependenceClass, String>,
    /// Verification id -> why it does not count as a class of its own.
    pub not_independent: BTreeMap<String, String>,
}

/// Chooses the evidence to count: at most one piece per class, pairwise without a shared unit,
/// hitting as many of `required_any_of` as possible and, among those choices, counting the most
/// classes. Evidence without units (recorded before units existed) shares nothing.
///
/// The search is exhaustive over the distinct unit sets of each class, which stays small: a case
/// holds a capped number of verifications and there are few classes.
pub fn select(
    evidence: &[&Evidence],
    required_any_of: &[BTreeSet<IndependenceClass>],
) -> Selection {
    let mut by_class: BTreeMap<IndependenceClass, Vec<&Evidence>> = BTreeMap::new();
    for e in evidence {
        let options = by_class.entry(e.class).or_default();
        // Of two pieces of one class, the one needing a subset of the other's units is never
        // worse: keep only minimal unit sets, each once.
        if options.iter().any(|o| o.units.is_subset(&e.units)) {
            continue;
        }
        options.retain(|o| !e.units.is_subset(&o.units));
        options.push(e);
    }
    // Bounded work whatever a case holds: a few options per class, the ones needing the fewest
    // units. Leaving an option out can only count less, never more.
    for options in by_class.values_mut() {
        options.sort_by_key(|o| o.units.len());
        options.truncate(MAX_OPTIONS_PER_CLASS);
    }
    let classes: Vec<(IndependenceClass, Vec<&Evidence>)> = by_class.into_iter().collect();
    let mut best: (usize, usize, Vec<&Evidence>) = (0, 0, Vec::new());
    let mut chosen = Vec::new();
    search(&classes, required_any_of, &mut chosen, &mut best);
    let counted: BTreeMap<IndependenceClass, String> = best
        .2
        .iter()
        .map(|e| (e.class, e.verification_id.clone()))
        .collect();
    let not_independent = evidence
        .iter()
        .filter(|e| {
            !best
                .2
                .iter()
                .any(|c| c.verification_id == e.verification_id)
        })
        .filter_map(|e| {
            let with = best
                .2
                .iter()
                .find(|c| c.class == e.class || !c.units.is_disjoint(&e.units))?;
            let reason = if with.class == e.class {
                format!(
                    "{} already counts through {}",
                    e.class, with.verification_id
                )
            } else {
                let shared: Vec<&str> = with
                    .units
                    .intersection(&e.units)
                    .map(String::as_str)
                    .collect();
                format!(
                    "shares {} with {}, which already counts: one takeover would produce both",
                    shared.join(", "),
                    with.verification_id
                )
            };
            Some((e.verification_id.clone(), reason))
        })
        .collect();
    Selection {
        counted,
        not_independent,
    }
}

fn search<'a>(
    classes: &[(IndependenceClass, Vec<&'a Evidence>)],
    required_any_of: &[BTreeSet<IndependenceClass>],
    chosen: &mut Vec<&'a Evidence>,
    best: &mut (usize, usize, Vec<&'a Evidence>),
) {
    let Some(((_, options), rest)) = classes.split_first() else {
        let hit = required_any_of
            .iter()
            .filter(|set| chosen.iter().any(|e| set.contains(&e.class)))
            .count();
        if (hit, chosen.len()) > (best.0, best.1) {
            *best = (hit, chosen.len(), chosen.clone());
        }
        return;
    };
    for option in options {
        if chosen.iter().all(|c| c.units.is_disjoint(&option.units)) {
            chosen.push(option);
            search(rest, required_any_of, chosen, best);
            chosen.pop();
        }
    }
    search(rest, required_any_of, chosen, best);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::evidence::Method;

    fn ev(id: &str, method: Method, units: &[&str]) -> Evidence {
        Evidence {
            verification_id: id.to_owned(),
            method,
            class: method.class(),
            passed_at: Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap(),
            contact_changed_at: None,
            units: units.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    #[test]
    fn a_mailbox_takeover_yields_one_class_not_two() {
        // The recovery codes were mailed: the mailbox that receives an email code holds them too.
        let email = ev("v-email", Method::EmailCode, &["mailbox:a…@x#1"]);
        let codes = ev("v-codes", Method::RecoveryCode, &["mailbox:a…@x#1"]);
        let picked = select(&[&email, &codes], &[]);
        assert_eq!(picked.counted.len(), 1, "{picked:?}");
        let left_out = if picked.counted.values().any(|v| v == "v-email") {
            "v-codes"
        } else {
            "v-email"
        };
        let why = &picked.not_independent[left_out];
        assert!(why.contains("mailbox:a…@x#1"), "{why}");
    }

    #[test]
    fn disjoint_units_count_as_two_classes() {
        let sms = ev("v-sms", Method::SmsCode, &["phone:…17#2"]);
        let email = ev("v-email", Method::EmailCode, &["mailbox:a…@x#1"]);
        let picked = select(&[&sms, &email], &[]);
        assert_eq!(picked.counted.len(), 2);
        assert!(picked.not_independent.is_empty());
    }

    #[test]
    fn a_manager_sharing_the_subjects_phone_does_not_add_a_class() {
        let sms = ev("v-sms", Method::SmsCode, &["phone:…17#2"]);
        let manager = ev(
            "v-mgr",
            Method::ManagerAttestation,
            &["manager:u-m", "phone:…17#2"],
        );
        let required = [BTreeSet::from([IndependenceClass::Manager])];
        let picked = select(&[&sms, &manager], &required);
        // The required manager class is kept; the phone code is the one left out.
        assert_eq!(
            picked.counted.keys().copied().collect::<Vec<_>>(),
            vec![IndependenceClass::Manager]
        );
        assert!(picked.not_independent["v-sms"].contains("phone:…17#2"));
    }

    #[test]
    fn the_choice_prefers_hitting_a_required_class() {
        // The app's seed and the manager's link went through one mailbox: of device and
        // manager only one can count, and the manager is required.
        let device = ev("v-dev", Method::Totp, &["device:totp-1", "mailbox:m#9"]);
        let manager = ev(
            "v-mgr",
            Method::ManagerAttestation,
            &["manager:u-m", "mailbox:m#9"],
        );
        let required = [BTreeSet::from([IndependenceClass::Manager])];
        let picked = select(&[&device, &manager], &required);
        assert!(picked.counted.contains_key(&IndependenceClass::Manager));
        assert!(
            !picked
                .counted
                .contains_key(&IndependenceClass::DeviceOfRecord)
        );
    }

    #[test]
    fn evidence_without_units_shares_nothing() {
        let old = ev("v-old", Method::SmsCode, &[]);
        let email = ev("v-email", Method::EmailCode, &["mailbox:a#1"]);
        assert_eq!(select(&[&old, &email], &[]).counted.len(), 2);
    }

    const UNITS: [&str; 5] = [
        "phone:p#1",
        "mailbox:m#1",
        "device:d1",
        "manager:u-m",
        "document",
    ];
    const METHODS: [Method; 6] = [
        Method::SmsCode,
        Method::EmailCode,
        Method::Totp,
        Method::ManagerAttestation,
        Method::IdProofing,
        Method::RecoveryCode,
    ];

    fn arbitrary_evidence() -> impl Strategy<Value = Vec<Evidence>> {
        prop::collection::vec(
            (
                0..METHODS.len(),
                prop::collection::btree_set(0..UNITS.len(), 1..3),
            ),
            0..=MAX_OPTIONS_PER_CLASS,
        )
        .prop_map(|pieces| {
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, (m, units))| {
                    let units: Vec<&str> = units.into_iter().map(|u| UNITS[u]).collect();
                    ev(&format!("v-{i}"), METHODS[m], &units)
                })
                .collect()
        })
    }

    proptest! {
        /// Whatever evidence a case holds, the pieces counted never share a takeover unit, count
        /// each class once, and every piece left out says why.
        #[test]
        fn evidence_with_overlapping_units_never_counts_twice(evidence in arbitrary_evidence()) {
            let refs: Vec<&Evidence> = evidence.iter().collect();
            let picked = select(&refs, &[BTreeSet::from([IndependenceClass::Manager])]);
            let counted: Vec<&Evidence> = picked
                .counted
                .values()
                .map(|id| evidence.iter().find(|e| &e.verification_id == id).unwrap())
                .collect();
            for (i, a) in counted.iter().enumerate() {
                prop_assert_eq!(picked.counted.get(&a.class), Some(&a.verification_id));
                for b in &counted[i + 1..] {
                    prop_assert!(a.units.is_disjoint(&b.units), "{:?} and {:?}", a, b);
                }
            }
            // No single unit's takeover yields more than one counted class.
            for unit in UNITS {
                let through: usize = counted.iter().filter(|e| e.units.contains(unit)).count();
                prop_assert!(through <= 1, "{} yields {} classes", unit, through);
            }
            for e in &evidence {
                let is_counted = picked.counted.values().any(|id| id == &e.verification_id);
                prop_assert!(is_counted || picked.not_independent.contains_key(&e.verification_id));
            }
        }

        /// The selection is as large as any valid one: no other choice of pairwise-disjoint
        /// pieces, one per class, counts more classes (checked by brute force).
        #[test]
        fn the_selection_counts_as_many_classes_as_possible(evidence in arbitrary_evidence()) {
            let refs: Vec<&Evidence> = evidence.iter().collect();
            let picked = select(&refs, &[]);
            let mut best = 0;
            for mask in 0u32..(1 << evidence.len()) {
                let chosen: Vec<&Evidence> = (0..evidence.len())
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| &evidence[i])
                    .collect();
                let classes: BTreeSet<IndependenceClass> = chosen.iter().map(|e| e.class).collect();
                let disjoint = chosen.iter().enumerate().all(|(i, a)| {
                    chosen[i + 1..].iter().all(|b| a.units.is_disjoint(&b.units))
                });
                if disjoint && classes.len() == chosen.len() {
                    best = best.max(chosen.len());
                }
            }
            prop_assert_eq!(picked.counted.len(), best);
        }
    }
}
