//! Who recovery is about (subjects, with their contacts and authenticators of record) and who does
//! the recovering (staff, with roles).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::api_ids;

/// How much damage a takeover of the subject does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Standard,
    Sensitive,
    Privileged,
    Executive,
    Security,
    Service,
}
api_ids!(Tier { Standard => "standard", Sensitive => "sensitive", Privileged => "privileged",
    Executive => "executive", Security => "security", Service => "service" });

impl Tier {
    /// Tiers whose takeover hands an attacker the organisation: admins, executives, responders.
    pub fn is_high_value(self) -> bool {
        matches!(self, Self::Privileged | Self::Executive | Self::Security)
    }
}

/// What the requester asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    PasswordReset,
    MfaReset,
    FactorRebind,
    EmailChange,
    PhoneChange,
    AccountUnlock,
    ServiceCredentialRotate,
}
api_ids!(Action { PasswordReset => "password_reset", MfaReset => "mfa_reset",
    FactorRebind => "factor_rebind", EmailChange => "email_change", PhoneChange => "phone_change",
    AccountUnlock => "account_unlock", ServiceCredentialRotate => "service_credential_rotate" });

impl Action {
    /// Actions that hand over or redirect a factor: the ones attackers chain into a takeover.
    pub fn changes_factors_or_contacts(self) -> bool {
        matches!(
            self,
            Self::MfaReset | Self::FactorRebind | Self::EmailChange | Self::PhoneChange
        )
    }

    /// The contact kind an `email_change` / `phone_change` replaces.
    pub fn changed_contact_kind(self) -> Option<ContactKind> {
        match self {
            Self::EmailChange => Some(ContactKind::Email),
            Self::PhoneChange => Some(ContactKind::Phone),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStatus {
    Active,
    Locked,
    Disabled,
    OnLeave,
    Terminated,
}
api_ids!(SubjectStatus { Active => "active", Locked => "locked", Disabled => "disabled",
    OnLeave => "on_leave", Terminated => "terminated" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Phone,
    Email,
}
api_ids!(ContactKind { Phone => "phone", Email => "email" });

/// A phone number or email address on record for a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub kind: ContactKind,
    pub value: String,
    /// When the subject last proved control of it; `None` means never verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// When it was last set or changed. A recent change is what an attacker who already
    /// redirected the contact leaves behind.
    pub changed_at: DateTime<Utc>,
}

impl Contact {
    /// The value as it reaches someone: a phone's digits, an email without case or spaces. Two
    /// contacts with the same reach land on the same phone or in the same mailbox.
    pub fn reach(&self) -> String {
        match self.kind {
            ContactKind::Phone => self.value.chars().filter(char::is_ascii_digit).collect(),
            ContactKind::Email => self.value.trim().to_lowercase(),
        }
    }

    /// True when the contact was changed less than `window` before `now`.
    pub fn changed_within(&self, window: Duration, now: DateTime<Utc>) -> bool {
        now - self.changed_at < window
    }

    /// Whether the contact may carry a code, a link or a secret: the subject proved control of
    /// it, and it was not changed inside the freshness window (a fresh change is what an attacker
    /// who redirected it leaves behind).
    pub fn is_trusted(&self, freshness: Duration, now: DateTime<Utc>) -> bool {
        self.verified_at.is_some() && !self.changed_within(freshness, now)
    }

    /// The value with all but its last two characters hidden, e.g. `+1 *** *** 42`,
    /// `a***@example.org` for emails.
    pub fn masked(&self) -> String {
        match self.kind {
            ContactKind::Phone => {
                let digits: Vec<char> = self.value.chars().filter(char::is_ascii_digit).collect();
                let tail: String = digits.iter().rev().take(2).rev().collect();
                let country: String = if self.value.starts_with('+') {
                    let cc: String = self
                        .value
                        .chars()
                        .skip(1)
                        .take_while(char::is_ascii_digit)
                        .take(3)
                        .collect();
                    // Only print a short country code; a number without spaces would leak.
                    if cc.len() < digits.len().saturating_sub(4) && self.value.contains(' ') {
                        format!("+{cc} ")
                    } else {
                        "+".to_owned()
                    }
                } else {
                    String::new()
                };
                format!("{country}*** *** {tail}")
            }
            ContactKind::Email => match self.value.split_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}***@{domain}")
                }
                None => "***".to_owned(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticatorKind {
    Passkey,
    Totp,
    Push,
}
api_ids!(AuthenticatorKind { Passkey => "passkey", Totp => "totp", Push => "push" });

/// An authenticator the subject enrolled: the "device of record".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticator {
    pub id: String,
    pub kind: AuthenticatorKind,
    pub label: String,
    pub enrolled_at: DateTime<Utc>,
}

/// Whether `a` was bound at least `freshness` before `now` (see
/// [`Subject::has_settled_authenticator`]).
pub fn authenticator_settled(a: &Authenticator, freshness: Duration, now: DateTime<Utc>) -> bool {
    now - a.enrolled_at >= freshness
}

/// A person's legal identity as the organisation holds it (from HR), which identity proofing is
/// bound to: a document only counts when the vendor matches it to these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityOfRecord {
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    pub birthdate: Option<chrono::NaiveDate>,
}

/// An identity whose access can be recovered: a person, or a non-human identity with owners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: String,
    pub display_name: String,
    pub tier: Tier,
    pub status: SubjectStatus,
    /// The subject id of the person's manager (persons only).
    pub manager: Option<String>,
    /// Human owners of a non-human identity.
    pub owners: Vec<String>,
    pub groups: Vec<String>,
    pub contacts: Vec<Contact>,
    pub authenticators: Vec<Authenticator>,
    /// Set by the security team; every request about this subject is critical.
    pub flagged: bool,
    pub hired_at: Option<DateTime<Utc>>,
    /// The subject's usual UTC offset, for the off-hours signal.
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
    /// Set after an executed recovery: until then further high-risk changes escalate.
    #[serde(default)]
    pub probation_until: Option<DateTime<Utc>>,
    /// The legal identity identity proofing must match; without it the method is not offered.
    #[serde(default)]
    pub identity: Option<IdentityOfRecord>,
}

impl Subject {
    pub fn on_probation(&self, now: DateTime<Utc>) -> bool {
        self.probation_until.is_some_and(|until| now < until)
    }
}

impl Subject {
    /// The first contact of record of this kind.
    pub fn contact(&self, kind: ContactKind) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.kind == kind)
    }

    /// The contact of record of `kind` when it is trusted (see [`Contact::is_trusted`]). Only the
    /// first contact of the kind counts: a second one added beside it does not stand in for it.
    pub fn trusted_contact(
        &self,
        kind: ContactKind,
        freshness: Duration,
        now: DateTime<Utc>,
    ) -> Option<&Contact> {
        self.contact(kind).filter(|c| c.is_trusted(freshness, now))
    }

    /// Where a secret generated for this subject (a temporary password, a temporary access pass)
    /// may be sent: the email of record, else the phone of record, each only when trusted. `None`
    /// means the secret has nowhere safe to go and the action must not run.
    pub fn secret_destination(&self, freshness: Duration, now: DateTime<Utc>) -> Option<&Contact> {
        self.trusted_contact(ContactKind::Email, freshness, now)
            .or_else(|| self.trusted_contact(ContactKind::Phone, freshness, now))
    }

    /// Where the retrieval link of a rotated service secret may be sent when this subject is the
    /// owner receiving it: their trusted email of record only, with no fallback to a phone.
    pub fn service_secret_destination(
        &self,
        freshness: Duration,
        now: DateTime<Utc>,
    ) -> Option<&Contact> {
        self.trusted_contact(ContactKind::Email, freshness, now)
    }

    /// Whether an authenticator of `kind` was bound before the freshness window: only such a
    /// factor is a device *of record*. One bound inside the window may be the attacker's own,
    /// enrolled right after a takeover, and counts no more than a freshly changed contact.
    pub fn has_settled_authenticator(
        &self,
        kind: AuthenticatorKind,
        freshness: Duration,
        now: DateTime<Utc>,
    ) -> bool {
        self.authenticators
            .iter()
            .any(|a| a.kind == kind && authenticator_settled(a, freshness, now))
    }

    pub fn is_non_human(&self) -> bool {
        self.tier == Tier::Service
    }

    /// True when a phone or email of record of `self` reaches the same phone or mailbox as one of
    /// `other`'s: whoever holds it holds both, so the two are not independent people.
    pub fn shares_contact_with(&self, other: &Subject) -> bool {
        self.contacts.iter().any(|mine| {
            let reach = mine.reach();
            !reach.is_empty()
                && other
                    .contacts
                    .iter()
                    .any(|theirs| theirs.kind == mine.kind && theirs.reach() == reach)
        })
    }

    /// Who vouches for this subject out of band: the manager of a person, or the first owner
    /// of a non-human identity who is not `excluding` (the requester, say).
    pub fn voucher(&self, excluding: &[&str]) -> Option<&str> {
        if self.is_non_human() {
            self.owners
                .iter()
                .map(String::as_str)
                .find(|o| !excluding.contains(o))
        } else {
            self.manager.as_deref().filter(|m| !excluding.contains(m))
        }
    }
}

/// What a staff member may do in Deskgate. Roles carry no standing rights on subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Supervisor,
    SecurityOfficer,
    Auditor,
    Admin,
}
api_ids!(Role { Agent => "agent", Supervisor => "supervisor",
    SecurityOfficer => "security_officer", Auditor => "auditor", Admin => "admin" });

impl Role {
    /// Roles that may open and work recovery cases.
    pub fn works_cases(self) -> bool {
        matches!(self, Self::Agent | Self::Supervisor | Self::SecurityOfficer)
    }

    /// Roles that oversee every case (read all, deny any).
    pub fn oversees_cases(self) -> bool {
        matches!(self, Self::Supervisor | Self::SecurityOfficer)
    }
}

/// A help-desk staff member. `subject_id` links them to their own identity in the directory,
/// which is how "nobody acts on themselves" is enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub subject_id: Option<String>,
    /// Team, region and shift, for policies that differ by them and for drift reports.
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub shift: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn contact(kind: ContactKind, value: &str) -> Contact {
        Contact {
            kind,
            value: value.to_owned(),
            verified_at: None,
            changed_at: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn masks_phone_keeping_country_code_and_last_two_digits() {
        assert_eq!(
            contact(ContactKind::Phone, "+1 555 010 0142").masked(),
            "+1 *** *** 42"
        );
        assert_eq!(
            contact(ContactKind::Phone, "+15550100142").masked(),
            "+*** *** 42"
        );
    }

    #[test]
    fn masks_email_keeping_first_letter_and_domain() {
        assert_eq!(
            contact(ContactKind::Email, "alice@example.org").masked(),
            "a***@example.org"
        );
    }

    #[test]
    fn contact_changed_three_days_ago_is_within_fourteen_day_window() {
        let c = contact(ContactKind::Phone, "+1 555 0100");
        let now = c.changed_at + Duration::days(3);
        assert!(c.changed_within(Duration::days(14), now));
        assert!(!c.changed_within(Duration::days(14), c.changed_at + Duration::days(14)));
    }

    fn at(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::days(days)
    }

    fn verified(kind: ContactKind, value: &str, changed_day: i64) -> Contact {
        Contact {
            kind,
            value: value.to_owned(),
            verified_at: Some(at(changed_day)),
            changed_at: at(changed_day),
        }
    }

    fn person(contacts: Vec<Contact>) -> Subject {
        Subject {
            id: "u-alice".to_owned(),
            display_name: "Alice".to_owned(),
            tier: Tier::Standard,
            status: SubjectStatus::Active,
            manager: Some("u-bob".to_owned()),
            owners: Vec::new(),
            groups: Vec::new(),
            contacts,
            authenticators: Vec::new(),
            flagged: false,
            hired_at: None,
            utc_offset_minutes: None,
            probation_until: None,
            identity: None,
        }
    }

    const FRESH: i64 = 14;

    #[test]
    fn a_secret_goes_to_the_trusted_email_before_the_phone() {
        let alice = person(vec![
            verified(ContactKind::Phone, "+1 555 0100", 0),
            verified(ContactKind::Email, "alice@example.org", 0),
        ]);
        let to = alice.secret_destination(Duration::days(FRESH), at(30));
        assert_eq!(to.map(|c| c.kind), Some(ContactKind::Email));
    }

    #[test]
    fn a_secret_falls_back_to_the_phone_when_the_email_changed_recently() {
        let alice = person(vec![
            verified(ContactKind::Email, "alice@example.org", 25),
            verified(ContactKind::Phone, "+1 555 0100", 0),
        ]);
        let to = alice.secret_destination(Duration::days(FRESH), at(30));
        assert_eq!(to.map(|c| c.kind), Some(ContactKind::Phone));
    }

    #[test]
    fn a_secret_has_nowhere_to_go_without_a_trusted_contact() {
        let mut never_verified = verified(ContactKind::Email, "alice@example.org", 0);
        never_verified.verified_at = None;
        let alice = person(vec![
            never_verified,
            verified(ContactKind::Phone, "+1 555 0100", 20),
        ]);
        assert_eq!(
            alice.secret_destination(Duration::days(FRESH), at(30)),
            None
        );
    }

    #[test]
    fn a_service_secret_link_never_falls_back_to_the_owners_phone() {
        let owner = person(vec![verified(ContactKind::Phone, "+1 555 0100", 0)]);
        let fresh = Duration::days(FRESH);
        assert!(owner.secret_destination(fresh, at(30)).is_some());
        assert_eq!(owner.service_secret_destination(fresh, at(30)), None);
    }

    #[test]
    fn only_the_first_contact_of_a_kind_is_of_record() {
        let alice = person(vec![
            verified(ContactKind::Email, "alice@example.org", 25),
            verified(ContactKind::Email, "old@example.org", 0),
        ]);
        let fresh = Duration::days(FRESH);
        assert_eq!(
            alice.trusted_contact(ContactKind::Email, fresh, at(30)),
            None
        );
    }

    proptest::proptest! {
        /// Whatever else is on record, a contact changed inside the window or never verified
        /// never receives a generated secret.
        #[test]
        fn a_fresh_or_unverified_contact_never_receives_a_secret(
            email_age in 0i64..60,
            phone_age in 0i64..60,
            email_verified: bool,
            phone_verified: bool,
            freshness in 0i64..30,
        ) {
            let now = at(100);
            let mut email = verified(ContactKind::Email, "alice@example.org", 100 - email_age);
            let mut phone = verified(ContactKind::Phone, "+1 555 0100", 100 - phone_age);
            if !email_verified { email.verified_at = None; }
            if !phone_verified { phone.verified_at = None; }
            let alice = person(vec![phone, email]);
            let window = Duration::days(freshness);
            for to in [
                alice.secret_destination(window, now),
                alice.service_secret_destination(window, now),
            ]
            .into_iter()
            .flatten()
            {
                proptest::prop_assert!(to.verified_at.is_some());
                proptest::prop_assert!(now - to.changed_at >= window);
            }
            let email_ok = email_verified && email_age >= freshness;
            let phone_ok = phone_verified && phone_age >= freshness;
            proptest::prop_assert_eq!(
                alice.secret_destination(window, now).map(|c| c.kind),
                if email_ok { Some(ContactKind::Email) } else if phone_ok { Some(ContactKind::Phone) } else { None }
            );
        }
    }

    #[test]
    fn api_ids_round_trip() {
        use crate::ApiId;
        for a in Action::all() {
            assert_eq!(Action::from_api_id(a.api_id()), Some(*a));
        }
        assert_eq!(Tier::from_api_id("nope"), None);
    }
}
