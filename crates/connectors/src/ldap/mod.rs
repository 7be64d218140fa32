//! The LDAP connector: OpenLDAP (with the ppolicy overlay) and Active Directory, over `ldap3`.
//!
//! Every call opens its own connection, secures it (LDAPS or StartTLS, see [`config`]), binds as
//! Deskgate's service account, finds the subject's entry by an escaped filter on the configured
//! subject attribute, acts on that entry's DN, and unbinds. Help-desk actions are rare, so a fresh
//! connection per call costs little and never hands one case a connection left in an odd state by
//! another. No DN is ever assembled from input: DNs come back from the directory, and every value
//! placed in a filter is escaped (RFC 4515).

pub mod config;

use std::collections::HashSet;
use std::future::Future;

use async_trait::async_trait;
use deskgate_core::{ContactKind, SubjectStatus, Tier};
use ldap3::controls::{MakeCritical, RawControl, RelaxRules};
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};

use crate::connector::{Connector, ConnectorError, DirectoryContact, DirectoryEntry, Operation};
use crate::secret::{GeneratedSecret, TemporaryAccessPass, generate_password};
use config::{DirectoryMode, LdapConfig, LdapConfigError, Transport};

/// AD's LDAP_MATCHING_RULE_IN_CHAIN: matches nested group membership, so a subject who is in
/// "Domain Admins" through another group still maps to the privileged tier.
const AD_IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// `userAccountControl` bit ACCOUNTDISABLE.
const AD_ACCOUNT_DISABLED: u32 = 0x2;
/// Longest subject id accepted; directory naming attributes are far shorter (AD: 20 characters).
const MAX_SUBJECT_ID_LEN: usize = 256;
const MAX_CONTACT_LEN: usize = 256;

const SUPPORTED: &[Operation] = &[
    Operation::Lookup,
    Operation::ResetPassword,
    Operation::Unlock,
    Operation::ChangeContact,
    Operation::RotateServiceCredential,
];

/// A [`Connector`] for an OpenLDAP or Active Directory server.
#[derive(Debug)]
pub struct LdapConnector {
    config: LdapConfig,
    transport: Transport,
}

impl LdapConnector {
    /// Validates `config` (transport security included) and builds the connector. Nothing is
    /// contacted until the first call.
    pub fn new(config: LdapConfig) -> Result<Self, LdapConfigError> {
        let transport = config.validate()?;
        Ok(Self { config, transport })
    }

    fn unsupported(&self, operation: Operation, reason: &'static str) -> ConnectorError {
        ConnectorError::Unsupported {
            connector: self.name(),
            operation,
            reason,
        }
    }

    /// Runs one connector call under the configured time bound.
    async fn bounded<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        let after = self.config.timeout();
        let result = tokio::time::timeout(after, call)
            .await
            .unwrap_or(Err(ConnectorError::Timeout { operation, after }));
        match &result {
            Ok(_) => tracing::debug!(connector = self.name(), %operation, "ldap call succeeded"),
            Err(error) => {
                tracing::warn!(connector = self.name(), %operation, %error, "ldap call failed");
            }
        }
        result
    }

    /// Opens a secured connection bound as the service account.
    async fn connect(&self, operation: Operation) -> Result<Ldap, ConnectorError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout())
            .set_starttls(self.transport.starttls);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(failed(operation))?;
        ldap3::drive!(conn);
        let bound = ldap
            .simple_bind(&self.config.bind_dn, self.config.bind_password.expose())
            .await
            .map_err(failed(operation))?;
        if bound.rc != 0 {
            return Err(ConnectorError::ServiceBindFailed {
                code: bound.rc,
                message: bound.text,
            });
        }
        Ok(ldap)
    }

    /// Finds the one entry whose subject attribute equals `subject_id`.
    async fn find_subject(
        &self,
        ldap: &mut Ldap,
        operation: Operation,
        subject_id: &str,
        attrs: &[&str],
    ) -> Result<SearchEntry, ConnectorError> {
        check_subject_id(subject_id)?;
        let filter = format!(
            "(&{}({}={}))",
            self.config.user_filter.trim(),
            self.config.subject_attribute,
            ldap3::ldap_escape(subject_id)
        );
        let (mut entries, _) = ldap
            .search(&self.config.base_dn, Scope::Subtree, &filter, attrs)
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(failed(operation))?;
        match entries.len() {
            0 => Err(ConnectorError::NotFound {
                subject_id: subject_id.to_owned(),
            }),
            1 => Ok(SearchEntry::construct(entries.swap_remove(0))),
            count => Err(ConnectorError::Ambiguous {
                subject_id: subject_id.to_owned(),
                count,
            }),
        }
    }

    /// Connects, finds the subject's DN, and applies `mods` to it in one Modify request (one
    /// request so that the directory applies all of them or none).
    async fn modify_subject(
        &self,
        operation: Operation,
        subject_id: &str,
        change: Change,
    ) -> Result<(), ConnectorError> {
        let mut ldap = self.connect(operation).await?;
        let entry = self
            .find_subject(&mut ldap, operation, subject_id, &[NO_ATTRIBUTES])
            .await?;
        if let Some(controls) = change.controls {
            ldap.with_controls(controls);
        }
        modify(&mut ldap, operation, &entry.dn, change.mods).await?;
        finish(ldap).await;
        Ok(())
    }

    /// Sets a generated password on the subject. `force_change` marks it as an admin reset the
    /// subject must replace at next sign-in; a service credential rotation leaves it unset.
    async fn set_generated_password(
        &self,
        operation: Operation,
        subject_id: &str,
        force_change: bool,
    ) -> Result<GeneratedSecret, ConnectorError> {
        let secret = generate_password();
        let mut ldap = self.connect(operation).await?;
        let entry = self
            .find_subject(&mut ldap, operation, subject_id, &[NO_ATTRIBUTES])
            .await?;
        match self.config.mode {
            DirectoryMode::Openldap => {
                // RFC 3062 rather than a userPassword replace: the server hashes the value with its
                // own scheme and ppolicy sees it as a password change.
                let exop = PasswordModify {
                    user_id: Some(&entry.dn),
                    old_pass: None,
                    new_pass: Some(secret.expose()),
                };
                ldap.extended(exop)
                    .await
                    .and_then(ldap3::result::ExopResult::success)
                    .map_err(failed(operation))?;
                // If this second step fails the password is set but nobody knows it: the secret
                // is dropped with the error, the subject stays unable to sign in, and the case
                // can retry. That fails closed.
                let reset_flag = if force_change {
                    HashSet::from([b"TRUE".to_vec()])
                } else {
                    // ppolicy sets pwdReset itself on an admin change when pwdMustChange is on;
                    // a service account has nobody to change it, so clear it.
                    HashSet::new()
                };
                let mods = vec![Mod::Replace(b"pwdReset".to_vec(), reset_flag)];
                modify(&mut ldap, operation, &entry.dn, mods).await?;
            }
            DirectoryMode::ActiveDirectory => {
                let mut mods = vec![Mod::Replace(
                    b"unicodePwd".to_vec(),
                    HashSet::from([ad_unicode_pwd(secret.expose())]),
                )];
                if force_change {
                    // 0 means "must change at next logon"; it is the only value besides -1 that
                    // AD accepts for this attribute.
                    mods.push(Mod::Replace(
                        b"pwdLastSet".to_vec(),
                        HashSet::from([b"0".to_vec()]),
                    ));
                }
                modify(&mut ldap, operation, &entry.dn, mods).await?;
            }
        }
        finish(ldap).await;
        Ok(secret)
    }

    async fn lookup_entry(&self, subject_id: &str) -> Result<DirectoryEntry, ConnectorError> {
        let operation = Operation::Lookup;
        let mut attrs = vec![
            self.config.subject_attribute.as_str(),
            "cn",
            "displayName",
            "mail",
            "telephoneNumber",
            self.config.phone_attribute.as_str(),
            "manager",
        ];
        match self.config.mode {
            // Operational attribute: only returned when asked for by name.
            DirectoryMode::Openldap => attrs.push("pwdAccountLockedTime"),
            DirectoryMode::ActiveDirectory => attrs.extend(["userAccountControl", "lockoutTime"]),
        }
        let mut ldap = self.connect(operation).await?;
        let entry = self
            .find_subject(&mut ldap, operation, subject_id, &attrs)
            .await?;

        let groups = self.groups_of(&mut ldap, &entry.dn).await?;
        let manager = match first(&entry, "manager") {
            Some(dn) => self.subject_id_of(&mut ldap, dn).await?,
            None => None,
        };
        finish(ldap).await;

        let tier = self.tier_for(&groups);
        let status = self.status_of(&entry);
        let display_name = first(&entry, "displayName")
            .or_else(|| first(&entry, "cn"))
            .unwrap_or(subject_id)
            .to_owned();
        let mut contacts: Vec<DirectoryContact> = Vec::new();
        let phones = [self.config.phone_attribute.as_str(), "telephoneNumber"];
        let sources = std::iter::once(("mail", ContactKind::Email))
            .chain(phones.into_iter().map(|a| (a, ContactKind::Phone)));
        for (attribute, kind) in sources {
            for value in values(&entry, attribute) {
                let contact = DirectoryContact {
                    kind,
                    value: value.clone(),
                };
                if !contacts.contains(&contact) {
                    contacts.push(contact);
                }
            }
        }
        Ok(DirectoryEntry {
            subject_id: subject_id.to_owned(),
            backend_id: entry.dn,
            display_name,
            tier,
            status,
            groups: groups.into_iter().map(|g| g.name).collect(),
            contacts,
            manager,
        })
    }

    /// The groups under `group_base_dn` that list `dn` as a member (nested ones too on AD).
    async fn groups_of(&self, ldap: &mut Ldap, dn: &str) -> Result<Vec<Group>, ConnectorError> {
        let member = &self.config.group_member_attribute;
        let value = ldap3::ldap_escape(dn);
        let filter = match self.config.mode {
            DirectoryMode::Openldap => format!("({member}={value})"),
            DirectoryMode::ActiveDirectory => format!("({member}:{AD_IN_CHAIN}:={value})"),
        };
        let name_attribute = self.config.group_name_attribute.as_str();
        let (entries, _) = ldap
            .search(
                &self.config.group_base_dn,
                Scope::Subtree,
                &filter,
                &[name_attribute],
            )
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(failed(Operation::Lookup))?;
        let mut groups: Vec<Group> = entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|e| Group {
                name: first(&e, name_attribute).unwrap_or(&e.dn).to_owned(),
                dn: e.dn,
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// The subject id of the entry at `dn` (used to resolve `manager`), `None` when that entry
    /// is gone or has no subject attribute.
    async fn subject_id_of(
        &self,
        ldap: &mut Ldap,
        dn: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let attribute = self.config.subject_attribute.as_str();
        let result = ldap
            .search(dn, Scope::Base, "(objectClass=*)", &[attribute])
            .await
            .map_err(failed(Operation::Lookup))?;
        // A manager who left the directory is a fact to report as "no manager", not a failure.
        if result.1.rc == NO_SUCH_OBJECT {
            return Ok(None);
        }
        let (entries, _) = result.success().map_err(failed(Operation::Lookup))?;
        Ok(entries
            .into_iter()
            .map(SearchEntry::construct)
            .find_map(|e| first(&e, attribute).map(str::to_owned)))
    }

    /// The most dangerous tier any of the groups maps to, or the default tier.
    fn tier_for(&self, groups: &[Group]) -> Tier {
        groups
            .iter()
            .flat_map(|g| {
                self.config
                    .group_tiers
                    .iter()
                    .filter(|(key, _)| {
                        key.eq_ignore_ascii_case(&g.name) || key.eq_ignore_ascii_case(&g.dn)
                    })
                    .map(|(_, tier)| *tier)
            })
            .max_by_key(|tier| tier_rank(*tier))
            .unwrap_or(self.config.default_tier)
    }

    fn status_of(&self, entry: &SearchEntry) -> SubjectStatus {
        match self.config.mode {
            DirectoryMode::Openldap => {
                if first(entry, "pwdAccountLockedTime").is_some() {
                    SubjectStatus::Locked
                } else {
                    SubjectStatus::Active
                }
            }
            DirectoryMode::ActiveDirectory => {
                let control: u32 = parse_or_zero(first(entry, "userAccountControl"));
                let lockout: i64 = parse_or_zero(first(entry, "lockoutTime"));
                if control & AD_ACCOUNT_DISABLED != 0 {
                    SubjectStatus::Disabled
                } else if lockout > 0 {
                    SubjectStatus::Locked
                } else {
                    SubjectStatus::Active
                }
            }
        }
    }
}

#[async_trait]
impl Connector for LdapConnector {
    fn name(&self) -> &'static str {
        match self.config.mode {
            DirectoryMode::Openldap => "openldap",
            DirectoryMode::ActiveDirectory => "active_directory",
        }
    }

    fn supported_operations(&self) -> &'static [Operation] {
        SUPPORTED
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.bounded(Operation::Lookup, async {
            finish(self.connect(Operation::Lookup).await?).await;
            Ok(())
        })
        .await
    }

    async fn lookup(&self, subject_id: &str) -> Result<DirectoryEntry, ConnectorError> {
        self.bounded(Operation::Lookup, self.lookup_entry(subject_id))
            .await
    }

    async fn reset_password(&self, subject_id: &str) -> Result<GeneratedSecret, ConnectorError> {
        let operation = Operation::ResetPassword;
        self.bounded(
            operation,
            self.set_generated_password(operation, subject_id, true),
        )
        .await
    }

    async fn remove_factors(&self, _subject_id: &str) -> Result<(), ConnectorError> {
        Err(self.unsupported(
            Operation::RemoveFactors,
            "an LDAP directory holds no enrolled authenticators; remove them where they are enrolled",
        ))
    }

    async fn unlock(&self, subject_id: &str) -> Result<(), ConnectorError> {
        let change = match self.config.mode {
            // The failure times go with the lock: left behind, they would relock the account at
            // the next wrong password. pwdFailureTime is not user-modifiable, so the request
            // carries the Relax Rules control (which needs `manage` access for the service
            // account); critical, so a server that ignores it refuses instead of half-unlocking.
            // A replace with no values is a no-op on an unlocked account, where a delete would
            // fail with noSuchAttribute.
            DirectoryMode::Openldap => Change {
                mods: vec![
                    Mod::Replace(b"pwdAccountLockedTime".to_vec(), HashSet::new()),
                    Mod::Replace(b"pwdFailureTime".to_vec(), HashSet::new()),
                ],
                controls: Some(vec![RawControl::from(RelaxRules.critical())]),
            },
            // 0 is the only value AD accepts here; it also resets the bad-password count.
            DirectoryMode::ActiveDirectory => Change {
                mods: vec![Mod::Replace(
                    b"lockoutTime".to_vec(),
                    HashSet::from([b"0".to_vec()]),
                )],
                controls: None,
            },
        };
        let operation = Operation::Unlock;
        self.bounded(
            operation,
            self.modify_subject(operation, subject_id, change),
        )
        .await
    }

    async fn change_contact(
        &self,
        subject_id: &str,
        kind: ContactKind,
        value: &str,
    ) -> Result<(), ConnectorError> {
        check_contact(kind, value)?;
        let attribute = match kind {
            ContactKind::Email => "mail",
            ContactKind::Phone => self.config.phone_attribute.as_str(),
        };
        let change = Change {
            mods: vec![Mod::Replace(
                attribute.as_bytes().to_vec(),
                HashSet::from([value.as_bytes().to_vec()]),
            )],
            controls: None,
        };
        let operation = Operation::ChangeContact;
        self.bounded(
            operation,
            self.modify_subject(operation, subject_id, change),
        )
        .await
    }

    async fn issue_temporary_access_pass(
        &self,
        _subject_id: &str,
        _lifetime: chrono::Duration,
    ) -> Result<TemporaryAccessPass, ConnectorError> {
        Err(self.unsupported(
            Operation::IssueTemporaryAccessPass,
            "LDAP has no temporary access passes; Deskgate issues its own",
        ))
    }

    async fn revoke_sessions(&self, _subject_id: &str) -> Result<(), ConnectorError> {
        Err(self.unsupported(
            Operation::RevokeSessions,
            "an LDAP bind leaves no session to revoke; revoke them at the identity provider",
        ))
    }

    async fn rotate_service_credential(
        &self,
        subject_id: &str,
    ) -> Result<GeneratedSecret, ConnectorError> {
        let operation = Operation::RotateServiceCredential;
        self.bounded(
            operation,
            self.set_generated_password(operation, subject_id, false),
        )
        .await
    }
}

/// One Modify request's changes and the request controls it needs.
struct Change {
    mods: Vec<Mod<Vec<u8>>>,
    controls: Option<Vec<RawControl>>,
}

/// A group the subject is a member of.
struct Group {
    dn: String,
    name: String,
}

/// RFC 4511 `noSuchObject`.
const NO_SUCH_OBJECT: u32 = 32;
/// RFC 4511 4.5.1.8: the attribute list "1.1" asks for no attributes, only the DN.
const NO_ATTRIBUTES: &str = "1.1";

/// The `unicodePwd` value AD expects: the password in double quotes, encoded UTF-16LE.
pub(crate) fn ad_unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// Orders tiers by how much a takeover hands an attacker, for picking one among several groups.
fn tier_rank(tier: Tier) -> u8 {
    match tier {
        Tier::Standard => 0,
        Tier::Sensitive => 1,
        Tier::Service => 2,
        Tier::Executive => 3,
        Tier::Privileged => 4,
        Tier::Security => 5,
    }
}

fn check_subject_id(subject_id: &str) -> Result<(), ConnectorError> {
    let reason = if subject_id.trim().is_empty() {
        "it is empty"
    } else if subject_id.chars().count() > MAX_SUBJECT_ID_LEN {
        "it is longer than 256 characters"
    } else if subject_id.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(ConnectorError::InvalidSubjectId { reason })
}

fn check_contact(kind: ContactKind, value: &str) -> Result<(), ConnectorError> {
    let reason = if value.trim().is_empty() {
        Some("it is empty")
    } else if value.chars().count() > MAX_CONTACT_LEN {
        Some("it is longer than 256 characters")
    } else if value.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        match kind {
            ContactKind::Email => match value.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && domain.contains('.')
                        && !domain.contains('@')
                        && !value.contains(char::is_whitespace) =>
                {
                    None
                }
                _ => Some("it is not an email address"),
            },
            ContactKind::Phone => {
                let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
                let digits = value.chars().filter(char::is_ascii_digit).count();
                if value.chars().all(allowed) && (4..=20).contains(&digits) {
                    None
                } else {
                    Some("it is not a phone number")
                }
            }
        }
    };
    match reason {
        Some(reason) => Err(ConnectorError::InvalidContact { kind, reason }),
        None => Ok(()),
    }
}

/// Sends one Modify request and requires success.
async fn modify(
    ldap: &mut Ldap,
    operation: Operation,
    dn: &str,
    mods: Vec<Mod<Vec<u8>>>,
) -> Result<(), ConnectorError> {
    ldap.modify(dn, mods)
        .await
        .and_then(ldap3::LdapResult::success)
        .map_err(failed(operation))?;
    Ok(())
}

/// Ends the session. The call's work is done; a failed unbind only means the connection is
/// already gone, and dropping the handle closes it either way.
async fn finish(mut ldap: Ldap) {
    if let Err(error) = ldap.unbind().await {
        tracing::debug!(%error, "ldap unbind failed");
    }
}

/// Maps an ldap3 error: a result code from the server is a refusal, anything else is transport.
fn failed(operation: Operation) -> impl FnOnce(LdapError) -> ConnectorError {
    move |error| match error {
        LdapError::LdapResult { result } => ConnectorError::Rejected {
            operation,
            code: result.rc,
            message: result.text,
        },
        other => ConnectorError::Unavailable {
            operation,
            source: Box::new(other),
        },
    }
}

/// The values of `attribute`; attribute names compare case-insensitively (RFC 4512 2.5).
fn values<'a>(entry: &'a SearchEntry, attribute: &str) -> &'a [String] {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map_or(&[], |(_, values)| values.as_slice())
}

fn first<'a>(entry: &'a SearchEntry, attribute: &str) -> Option<&'a str> {
    values(entry, attribute).first().map(String::as_str)
}

/// AD numeric attributes; an absent or unparsable value reads as 0 (not disabled, not locked),
/// which is what AD itself reports for an account that never locked.
fn parse_or_zero<T: std::str::FromStr + Default>(value: Option<&str>) -> T {
    value
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(
            ad_unicode_pwd("aé€"),
            vec![0x22, 0, 0x61, 0, 0xe9, 0, 0xac, 0x20, 0x22, 0]
        );
    }

    #[test]
    fn subject_ids_that_are_empty_long_or_control_are_refused() {
        assert!(check_subject_id("alice").is_ok());
        assert!(
            check_subject_id("a*)(uid=*").is_ok(),
            "escaped, not refused"
        );
        for bad in ["", "  ", "ali\0ce", "a\nb"] {
            assert!(
                matches!(
                    check_subject_id(bad),
                    Err(ConnectorError::InvalidSubjectId { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(check_subject_id(&"x".repeat(257)).is_err());
    }

    #[test]
    fn contacts_are_checked_by_kind() {
        assert!(check_contact(ContactKind::Email, "alice@example.org").is_ok());
        assert!(check_contact(ContactKind::Phone, "+1 (555) 010-0142").is_ok());
        for (kind, bad) in [
            (ContactKind::Email, "alice"),
            (ContactKind::Email, "alice@localhost"),
            (ContactKind::Email, "a b@example.org"),
            (ContactKind::Phone, "call me"),
            (ContactKind::Phone, "12"),
            (ContactKind::Phone, "+1 555\n0100"),
        ] {
            assert!(
                matches!(
                    check_contact(kind, bad),
                    Err(ConnectorError::InvalidContact { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn security_outranks_privileged_outranks_standard() {
        let mut tiers = vec![Tier::Standard, Tier::Security, Tier::Privileged];
        tiers.sort_by_key(|t| tier_rank(*t));
        assert_eq!(tiers, [Tier::Standard, Tier::Privileged, Tier::Security]);
    }
}
