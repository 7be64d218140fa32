//! Parts of typed audit events ([`deskgate_audit::AuditEvent`]) built from domain values.
//!
//! The details types of `deskgate_audit` keep vocabulary words (action, tier, method, class,
//! state, role...) as the strings the log holds. They are filled with each word's API id, which
//! is its serde form (a test in `deskgate-core` holds every vocabulary type to that), so an
//! entry's canonical JSON is byte for byte what was written when the details were built by hand.

use deskgate_audit::event;
use deskgate_core::{ApiId, Method};

/// The API ids of `words`, in their order (a set's own order for a set).
pub(crate) fn ids<'a, T: ApiId + 'a>(words: impl IntoIterator<Item = &'a T>) -> Vec<String> {
    words.into_iter().map(|w| w.api_id().to_owned()).collect()
}

/// A case's requirements as `case.opened` and `break_glass.opened` carry them.
pub(crate) fn requirements(r: &deskgate_core::Requirements) -> event::Requirements {
    event::Requirements {
        min_classes: r.min_classes,
        // Each set in its own order (the classes' declaration order), as serde writes it.
        required_any_of: r.required_any_of.iter().map(ids).collect(),
        contact_freshness_days: r.contact_freshness_days,
        grant_minutes: r.grant_minutes,
        approvals: ids(&r.approvals),
        cooling_off_minutes: r.cooling_off_minutes,
        tap_minutes: r.tap_minutes,
        probation_hours: r.probation_hours,
    }
}

/// A verification named by id, method and the method's independence class.
pub(crate) fn code_verification(vid: &str, method: Method) -> event::CodeVerification {
    event::CodeVerification {
        verification_id: vid.to_owned(),
        method: method.to_string(),
        class: method.class().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use deskgate_core::{Action, ApproverRole, IndependenceClass, Requirements, Tier};
    use serde_json::json;

    use super::*;

    #[test]
    fn requirements_are_written_as_serde_writes_the_core_type() {
        let mut every = Vec::new();
        for tier in Tier::all() {
            for action in Action::all() {
                every.push(Requirements::simple_rules(*tier, *action));
            }
        }
        let mut unusual = Requirements::simple_rules(Tier::Privileged, Action::MfaReset);
        unusual.required_any_of = vec![
            // Declaration order differs from the order of the ids' text.
            BTreeSet::from([
                IndependenceClass::Manager,
                IndependenceClass::DeviceOfRecord,
                IndependenceClass::PhoneOfRecord,
            ]),
            BTreeSet::new(),
        ];
        unusual.approvals = vec![
            ApproverRole::SecurityOfficer,
            ApproverRole::Supervisor,
            ApproverRole::SecurityOfficer,
        ];
        unusual.cooling_off_minutes = 15;
        every.push(unusual);
        for r in &every {
            assert_eq!(
                serde_json::to_value(requirements(r)).unwrap(),
                serde_json::to_value(r).unwrap()
            );
        }
    }

    #[test]
    fn a_verification_is_named_as_serde_writes_method_and_class() {
        for method in Method::all() {
            assert_eq!(
                serde_json::to_value(code_verification("v-1", *method)).unwrap(),
                json!({ "verification_id": "v-1", "method": method, "class": method.class() })
            );
        }
    }
}
