//! The manager's (or second owner's) side of an attestation link. The link reached their mailbox,
//! and a mailbox is exactly what an attacker who has taken over an account may read; so before
//! the case appears, the person proves control of a second factor of their own: a one-time code
//! to their own phone of record. That sign-in yields a short attestation session, bound to this
//! link, which the decision must present.

use deskgate_core::vouching::{self, VoucherRefusal};

use super::*;
use crate::views::{AttestationView, SubjectRef};

/// Link kind of the session a respondent holds after signing in.
const SESSION: &str = "attestation_session";
/// How long an attestation session lasts (capped by the link's own expiry).
const SESSION_MINUTES: i64 = 15;
/// Sign-in codes one link may send.
const MAX_CODES_PER_LINK: u32 = 3;

/// A sign-in code on its way: where it went and until when it works.
#[derive(Debug, serde::Serialize)]
pub struct CodeSent {
    pub destination: String,
    pub expires_at: DateTime<Utc>,
}

/// A fresh attestation session, returned once.
#[derive(Debug, serde::Serialize)]
pub struct AttestationSession {
    pub session: String,
    pub expires_at: DateTime<Utc>,
}

/// Manager (or second owner) attestation: a link to the independent voucher's trusted email of
/// record; they prove a second factor of their own before the case appears (see the module).
pub(crate) struct Attestation;

impl VerificationFamily for Attestation {
    const METHODS: &'static [Method] = &[Method::ManagerAttestation];
    const ANSWERED: Answered = Answered::Link;

    async fn offers(
        svc: &Service,
        method: Method,
        subject: &Subject,
        case: &Case,
    ) -> AppResult<bool> {
        let facts = OfferFacts {
            independent_voucher: svc.independent_voucher(case, subject, None).await.is_ok(),
            ..OfferFacts::default()
        };
        Ok(offered_with(svc, method, &facts, subject, case))
    }

    async fn start(svc: &Service, start: Start<'_>) -> AppResult<(String, CaseView)> {
        svc.start_attestation(start).await
    }

    fn depends_on(verification: &Verification) -> Vec<EvidenceChannel> {
        vec![
            EvidenceChannel::Person(verification.respondent.clone()),
            EvidenceChannel::Mailbox(verification.destination.clone().unwrap_or_default()),
        ]
    }
}

impl Service {
    /// The manager or owner who vouches for `case` about `subject`, chosen and checked for
    /// independence by [`vouching`]: not the subject, the requester, anyone who worked the case or
    /// `agent` (the caller's own identity), and sharing no phone or email of record with the subject
    /// or the requester. Also returns the requester as the directory knows them.
    pub(crate) async fn independent_voucher(
        &self,
        case: &Case,
        subject: &Subject,
        agent: Option<&str>,
    ) -> AppResult<(Subject, Option<Subject>)> {
        let voucher_id = vouching::voucher_id(case, subject, agent).map_err(voucher_refused)?;
        let voucher = self.subject_or(voucher_id, "no_manager").await?;
        let requester = self.requester_of(case, subject).await?;
        vouching::independent(case, subject, &voucher, requester.as_ref(), agent)
            .map_err(voucher_refused)?;
        Ok((voucher, requester))
    }

    /// The person who asked for `case`, when that is not the subject.
    pub(crate) async fn requester_of(
        &self,
        case: &Case,
        subject: &Subject,
    ) -> AppResult<Option<Subject>> {
        Ok(match case.requester.as_deref() {
            Some(id) if id != subject.id => self.store.subject(id).await?,
            _ => None,
        })
    }

    /// Mails a single-use link to the independent voucher's trusted email of record; the send
    /// counts toward that contact's limit and happens before the case records the verification.
    async fn start_attestation(&self, start: Start<'_>) -> AppResult<(String, CaseView)> {
        let now = self.now();
        let mut case = start.stored.case.clone();
        let subject = &start.subject;
        let agent = start.caller.subject_id.as_deref();
        let (voucher, requester) = self.independent_voucher(&case, subject, agent).await?;
        let reach =
            vouching::may_be_asked(&case, subject, &voucher, requester.as_ref(), agent, now)
                .map_err(voucher_refused)?;
        let contact = reach.email;
        let token = secrets::random_token();
        let expires_at = now + Duration::minutes(self.config.attestation_ttl_minutes);
        let url = format!(
            "{}/attest/{token}",
            self.config.public_url.trim_end_matches('/')
        );
        let vid = start.vid.clone();
        let mut v = pending(
            &start,
            &voucher.id,
            self.config.codes.max_attempts,
            expires_at,
            now,
        );
        v.destination = Some(contact.masked());
        // The voucher's word, through the mailbox the link goes to and the phone their sign-in
        // code goes to: a voucher who shares a contact with the subject shares that unit.
        let mut depends_on = self.contact_units(&voucher, reach.email).await?;
        depends_on.extend(self.contact_units(&voucher, reach.phone).await?);
        depends_on.insert(takeover::person(&voucher.id));
        v.units = depends_on;
        let link = LinkToken {
            token_hash: secrets::token_hash(&token),
            kind: "attestation".to_owned(),
            case_id: case.id.clone(),
            verification_id: vid.clone(),
            respondent: voucher.id.clone(),
            created_at: now,
            expires_at,
            used_at: None,
        };
        let message = Message {
            to: contact.value.clone(),
            channel: "email".to_owned(),
            kind: "attestation_link".to_owned(),
            subject_id: voucher.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "The help desk asks you to confirm that {} asked for this: {} (case {}). Open \
                 {url} only if you have spoken to them yourself. If you know nothing about \
                 this, reject it.",
                subject.display_name,
                crate::labels::in_sentence(&case.action),
                case.id
            ),
            secret: Some(Secret::Link(url)),
        };
        let started = codes::sent(&v, contact);
        case.start_verification(v, now)?;
        self.send_within_limit(contact, &message, "message", now)
            .await?;
        let audit = vec![self.started(start.caller, &case, started)];
        self.store
            .commit(Change {
                new_links: vec![link],
                ..updating(&case, start.stored.version, audit)
            })
            .await?;
        Ok((vid, self.view(&case).await?))
    }

    pub(super) async fn attestation_link(&self, token: &str) -> AppResult<LinkToken> {
        let link = self.live_link(token).await?;
        if link.kind != "attestation" {
            return Err(AppError::not_found("link"));
        }
        Ok(link)
    }

    /// Checks that `token` is a live attestation link whose subject is not held, changing nothing.
    pub async fn check_attestation_link(&self, token: &str) -> AppResult<()> {
        self.open_attestation(token).await.map(|_| ())
    }

    /// The link and its case, refusing a link whose attestation no longer waits for an answer.
    async fn open_attestation(&self, token: &str) -> AppResult<(LinkToken, StoredCase)> {
        let link = self.attestation_link(token).await?;
        let stored = self.load_case(&link.case_id).await?;
        let subject = self.required_subject(&stored.case.subject_id).await?;
        ensure_not_on_hold(&subject, false)?;
        Ok((link, stored))
    }

    /// The respondent as the directory knows them now, still able to vouch for the case (see
    /// [`vouching::may_vouch`]), and the phone of record they sign in with.
    async fn respondent_phone(
        &self,
        link: &LinkToken,
        stored: &StoredCase,
    ) -> AppResult<(Subject, Contact)> {
        let now = self.now();
        let respondent = self.required_subject(&link.respondent).await?;
        ensure_not_on_hold(&respondent, true)?;
        let case = &stored.case;
        let subject = self.required_subject(&case.subject_id).await?;
        let requester = self.requester_of(case, &subject).await?;
        let phone = vouching::may_vouch(case, &subject, &respondent, requester.as_ref(), now)
            .map_err(respondent_refused)?
            .clone();
        Ok((respondent, phone))
    }

    fn respondent_actor(link: &LinkToken, auth: &str) -> Actor {
        Actor {
            id: link.respondent.clone(),
            role: "manager".to_owned(),
            auth: auth.to_owned(),
        }
    }

    /// Sends a one-time sign-in code to the respondent's own phone of record.
    pub async fn send_attestation_code(&self, token: &str) -> AppResult<CodeSent> {
        let (link, stored) = self.open_attestation(token).await?;
        let (respondent, phone) = self.respondent_phone(&link, &stored).await?;
        let now = self.now();
        let code = CodeHasher::generate_code(self.config.codes.digits);
        let ttl = self.config.codes.phone_ttl_minutes;
        let expires_at = now + Duration::minutes(ttl);
        let context = format!("{}/respondent", link.verification_id);
        let mut case = stored.case.clone();
        case.challenge_respondent(
            &link.verification_id,
            self.codes.hash(&context, &code),
            phone.masked(),
            expires_at,
            MAX_CODES_PER_LINK,
            now,
        )?;
        let message = Message {
            to: phone.value.clone(),
            channel: "sms".to_owned(),
            kind: "attestation_sign_in_code".to_owned(),
            subject_id: respondent.id.clone(),
            case_id: Some(case.id.clone()),
            body: format!(
                "Your Deskgate sign-in code is {code}. Enter it on the confirmation page you opened \
                 from your email. It expires in {ttl} minutes. Nobody from the help desk will ask \
                 you for it."
            ),
            secret: Some(Secret::Code(code)),
        };
        self.send_within_limit(&phone, &message, "code", now)
            .await?;
        let entry = self.entry(
            &Self::respondent_actor(&link, "attestation_link"),
            Some(&case.id),
            AuditEvent::AttestationCodeSent(event::AttestationCodeSent {
                verification_id: link.verification_id.clone(),
                destination: phone.masked(),
                expires_at,
            }),
        );
        self.store
            .commit(updating(&case, stored.version, vec![entry]))
            .await?;
        Ok(CodeSent {
            destination: phone.masked(),
            expires_at,
        })
    }

    /// Checks the respondent's sign-in code. On success returns an attestation session, bound to
    /// this link, that lasts a few minutes; wrong codes count toward the attempt limit, after
    /// which the attestation locks.
    pub async fn sign_in_to_attestation(
        &self,
        token: &str,
        code: &str,
    ) -> AppResult<AttestationSession> {
        let (link, stored) = self.open_attestation(token).await?;
        self.respondent_phone(&link, &stored).await?;
        let now = self.now();
        let mut case = stored.case.clone();
        let context = format!("{}/respondent", link.verification_id);
        let answer = code.trim();
        let matched = answer.len() <= 16
            && case
                .respondent_code_hash(&link.verification_id)
                .is_some_and(|h| self.codes.matches(&context, answer, h));
        let before = case.state;
        let outcome = case.authenticate_respondent(&link.verification_id, matched, now)?;
        let who = Self::respondent_actor(&link, "attestation_link");
        // The manager signs in with a code texted to their phone of record.
        let sign_in = event::AttestationSignIn {
            verification_id: link.verification_id.clone(),
            method: Method::SmsCode.to_string(),
        };
        let answer = match outcome {
            AttemptOutcome::Passed => AuditEvent::AttestationSignedIn(sign_in),
            AttemptOutcome::Failed { attempts_left } => {
                AuditEvent::AttestationSignInFailed(event::AttestationSignInFailed {
                    verification_id: link.verification_id.clone(),
                    attempts_left,
                })
            }
            AttemptOutcome::Locked => AuditEvent::AttestationLocked(sign_in),
        };
        let mut audit = vec![self.entry(&who, Some(&case.id), answer)];
        audit.extend(self.approval_entries(&who, before, &case));
        let escalated = if matched {
            None
        } else {
            self.escalate_after_failures(&who, &mut case)
        };
        audit.extend(escalated.as_ref().map(|e| e.entry.clone()));
        let mut change = updating(&case, stored.version, audit);
        let session = secrets::random_token();
        let expires_at = (now + Duration::minutes(SESSION_MINUTES)).min(link.expires_at);
        if outcome == AttemptOutcome::Passed {
            change.new_links = vec![LinkToken {
                token_hash: secrets::token_hash(&session),
                kind: SESSION.to_owned(),
                case_id: link.case_id.clone(),
                verification_id: link.verification_id.clone(),
                respondent: link.respondent.clone(),
                created_at: now,
                expires_at,
                used_at: None,
            }];
        }
        self.store.commit(change).await?;
        self.alert_failures(&case, &escalated).await;
        match outcome {
            AttemptOutcome::Passed => Ok(AttestationSession {
                session,
                expires_at,
            }),
            AttemptOutcome::Failed { attempts_left } => Err(AppError::unauthenticated_as("wrong_code",
                format!("that code is not right; {attempts_left} attempt(s) left"),
            )
            .with_details(json!({ "attempts_left": attempts_left }))),
            AttemptOutcome::Locked => Err(AppError::forbidden_as("verification_locked",
                "too many wrong codes: this confirmation is locked and the help desk must use another verification",
            )
            .with_details(json!({ "attempts_left": 0, "locked": true }))),
        }
    }

    /// The session presented with a link: live, of this link's attestation, not used.
    async fn attestation_session(
        &self,
        link: &LinkToken,
        session: Option<&str>,
    ) -> AppResult<LinkToken> {
        let refused = || {
            AppError::unauthenticated_as(
                "manager_sign_in_required",
                "prove who you are first: ask for a sign-in code (POST this link + /code) and enter \
                 it (POST this link + /sign-in); then present the session you get",
            )
        };
        let session = session.filter(|s| !s.is_empty()).ok_or_else(refused)?;
        let held = self.live_link(session).await.map_err(|_| refused())?;
        if held.kind != SESSION
            || held.verification_id != link.verification_id
            || held.case_id != link.case_id
            || held.respondent != link.respondent
        {
            return Err(refused());
        }
        Ok(held)
    }

    /// What the link asks, shown only to a respondent who has signed in. Without a session the
    /// answer says how to sign in and where the code would go, and nothing about the case.
    pub async fn attestation_view(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> AppResult<AttestationView> {
        let (link, stored) = self.open_attestation(token).await?;
        if let Err(e) = self.attestation_session(&link, session).await {
            let destination = self
                .respondent_phone(&link, &stored)
                .await
                .map(|(_, phone)| phone.masked())?;
            return Err(e.with_details(json!({ "code_goes_to": destination })));
        }
        let case = stored.case;
        let subject = self.required_subject(&case.subject_id).await?;
        let respondent = self.required_subject(&link.respondent).await?;
        Ok(AttestationView {
            case_id: case.id.clone(),
            respondent: SubjectRef {
                id: respondent.id.clone(),
                name: respondent.display_name.clone(),
                tier: respondent.tier,
            },
            subject: SubjectRef {
                id: subject.id.clone(),
                name: subject.display_name.clone(),
                tier: subject.tier,
            },
            action: case.action,
            channel: case.channel,
            agent_id: case.agent_id.clone(),
            ticket: case.ticket.clone(),
            opened_at: case.opened_at,
            risk: case.risk.clone(),
            expires_at: link.expires_at,
            question: format!(
                "Did {} ask the help desk for this: {}, by {}? Confirm only if you have spoken \
                 to them yourself, in person or on a number you already know.",
                subject.display_name,
                crate::labels::in_sentence(&case.action),
                crate::labels::in_sentence(&case.channel)
            ),
            how_to_answer: "POST this URL with {\"decision\": \"confirm\"} or {\"decision\": \
                            \"reject\"} and the X-Attestation-Session header"
                .to_owned(),
        })
    }

    /// Records the respondent's decision. It needs the attestation session from their sign-in;
    /// a caller who also presents staff credentials must be that same person.
    pub async fn attest(
        &self,
        token: &str,
        decision: Decision,
        presenter: Option<&Staff>,
        session: Option<&str>,
    ) -> AppResult<CaseView> {
        let (link, stored) = self.open_attestation(token).await?;
        if let Some(staff) = presenter
            && staff.subject_id.as_deref() != Some(link.respondent.as_str())
        {
            return Err(AppError::forbidden_as(
                "not_the_manager",
                "this link works only for the manager it was sent to",
            ));
        }
        let held = self.attestation_session(&link, session).await?;
        // Still able to attest now: status, probation and phone are checked again.
        self.respondent_phone(&link, &stored).await?;
        let mut case = stored.case.clone();
        let now = self.now();
        let role = if case.subject_tier == deskgate_core::Tier::Service {
            ApproverRole::Owner
        } else {
            ApproverRole::Manager
        };
        let digest = case.approval_digest();
        let before = case.state;
        case.attest(&link.verification_id, &link.respondent, role, decision, now)?;
        let who = Self::respondent_actor(&link, "attestation_link+sms_code");
        let decided = event::AttestationDecided {
            verification_id: link.verification_id.clone(),
            case_digest: digest,
        };
        let attested = match decision {
            Decision::Confirm => AuditEvent::AttestationConfirmed(decided),
            Decision::Reject => AuditEvent::AttestationRejected(decided),
        };
        let mut audit = vec![Self::on_evidence(
            self.entry(&who, Some(&case.id), attested),
            &case,
        )];
        if case.state == CaseState::Denied {
            audit.push(self.entry(
                &who,
                Some(&case.id),
                AuditEvent::CaseDenied(event::CaseDenied {
                    reason: case.outcome_reason.clone(),
                }),
            ));
        }
        audit.extend(self.approval_entries(&who, before, &case));
        self.store
            .commit(Change {
                case: Some(CaseWrite::Update {
                    case: case.clone(),
                    expected_version: stored.version,
                }),
                use_links: vec![(link.token_hash.clone(), now), (held.token_hash, now)],
                audit,
                ..Change::default()
            })
            .await?;
        self.view(&case).await
    }

    /// The manager knows nothing of this request: it is rejected like any rejection (the case is
    /// denied), and then the security contacts are alerted and that is on the record too. The
    /// rejection stands even if an alert cannot be delivered.
    pub async fn report_unrecognised(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> AppResult<CaseView> {
        let (link, _) = self.open_attestation(token).await?;
        let case = self.attest(token, Decision::Reject, None, session).await?;
        let who = Self::respondent_actor(&link, "attestation_link+sms_code");
        let reported = AuditEvent::AttestationUnrecognised(event::AttestationUnrecognised {
            verification_id: link.verification_id.clone(),
            alerted: self.config.security_contacts.len() as u64,
        });
        self.store
            .commit(Change {
                audit: vec![self.entry(&who, Some(&case.id), reported)],
                ..Change::default()
            })
            .await?;
        let body = format!(
            "The manager asked to confirm case {} [{}] ({} for {}) does not recognise the request: \
             the case is denied. Treat it as an impersonation attempt.",
            case.reference,
            case.id,
            crate::labels::in_sentence(&case.action),
            case.subject.name
        );
        self.alert_security(
            "attestation_unrecognised_alert",
            &case.subject.id,
            &case.id,
            body,
        )
        .await;
        Ok(case)
    }

    /// Where a sign-in code for this link would go, for the page shown before sign-in.
    pub async fn attestation_sign_in_hint(&self, token: &str) -> AppResult<Value> {
        let (link, stored) = self.open_attestation(token).await?;
        let (respondent, phone) = self.respondent_phone(&link, &stored).await?;
        let check = stored
            .case
            .verification(&link.verification_id)
            .and_then(|v| v.respondent_check.clone())
            .unwrap_or_default();
        Ok(json!({
            "name": respondent.display_name,
            "code_goes_to": phone.masked(),
            "code_pending": check.code_hash.is_some()
                && check.code_expires_at.is_some_and(|at| at > self.now()),
        }))
    }
}

/// A refusal to let the respondent vouch, as the person holding the link sees it.
fn respondent_refused(refusal: VoucherRefusal) -> AppError {
    let (code, message) = match refusal {
        VoucherRefusal::NoVoucher
        | VoucherRefusal::NotManagerOrOwner
        | VoucherRefusal::IsSubject
        | VoucherRefusal::IsRequester
        | VoucherRefusal::WorkedTheCase
        | VoucherRefusal::SharesContact => (
            "voucher_not_independent",
            format!("{refusal}, so you cannot vouch for this request"),
        ),
        VoucherRefusal::NotActive(status) => (
            "manager_unavailable",
            format!("you are {status} and cannot attest"),
        ),
        VoucherRefusal::OnProbation => (
            "manager_unavailable",
            "your own account was recovered recently; until its probation ends you cannot attest"
                .to_owned(),
        ),
        VoucherRefusal::NoTrustedEmail | VoucherRefusal::NoTrustedPhone => (
            "manager_cannot_authenticate",
            "you have no phone of record that is verified and unchanged for the freshness window, \
             so you cannot prove who you are here; ask the help desk to use another verification"
                .to_owned(),
        ),
    };
    AppError::forbidden_as(code, message)
}

/// A refusal to let a person vouch, as the agent starting an attestation sees it.
fn voucher_refused(refusal: VoucherRefusal) -> AppError {
    let (code, message) = match refusal {
        VoucherRefusal::NoVoucher
        | VoucherRefusal::NotManagerOrOwner
        | VoucherRefusal::IsSubject
        | VoucherRefusal::IsRequester
        | VoucherRefusal::WorkedTheCase => (
            "no_manager",
            "the subject has no manager or owner who can vouch for this request".to_owned(),
        ),
        VoucherRefusal::SharesContact => (
            "voucher_not_independent",
            "the manager or owner who would vouch shares a phone or email of record with the \
             subject or the requester, so they are not an independent person; use another \
             verification"
                .to_owned(),
        ),
        VoucherRefusal::OnProbation => (
            "manager_unavailable",
            "the manager is on probation after a recent recovery and cannot attest".to_owned(),
        ),
        VoucherRefusal::NotActive(status) => (
            "manager_unavailable",
            format!("the manager is {status} and cannot attest"),
        ),
        VoucherRefusal::NoTrustedEmail => (
            "manager_contact_not_trusted",
            "the manager's email of record is missing, unverified or recently changed".to_owned(),
        ),
        VoucherRefusal::NoTrustedPhone => (
            "manager_cannot_authenticate",
            "the manager has no verified phone of record unchanged for the freshness window to \
             receive a sign-in code on; use another verification"
                .to_owned(),
        ),
    };
    AppError::invalid_as(code, message)
}
