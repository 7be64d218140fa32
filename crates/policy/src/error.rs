//! Errors of this crate. A bundle that fails to load is refused whole, with every problem found
//! named by file and, where the source gives one, line: a security team fixes them all in one pass.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem refused a bundle; tests and tools match on it, people read `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A required file is missing (`schema.cedarschema`, `playbooks.toml`, `risk.toml`).
    MissingFile,
    /// The Cedar schema does not parse.
    Schema,
    /// A Cedar policy file does not parse.
    CedarSyntax,
    /// A policy fails strict validation against the schema (unknown action, wrong type, ...).
    CedarValidation,
    /// A policy lacks an `@id`, repeats one, or is a template.
    PolicyId,
    /// The schema does not declare exactly the recovery actions Deskgate knows.
    UnknownAction,
    /// A TOML file does not parse or names an unknown tier, action, class, method or field.
    Toml,
    /// A playbook is well-formed TOML but cannot be met or names a class that never counts.
    Playbook,
    /// Risk thresholds are inconsistent.
    Thresholds,
}

/// One problem in one bundle file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// Path relative to the bundle directory, `/`-separated.
    pub file: String,
    /// 1-based line, when the source says where.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("cannot read policy bundle file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy bundle refused ({} problem(s)):\n{}", problems.len(), ProblemList(problems))]
    Invalid { problems: Vec<Problem> },
}

impl BundleError {
    /// The problems found, empty for an I/O error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems,
            Self::Io { .. } => &[],
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Why a decision could not be computed. Callers must treat it as a denial.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    #[error("cannot build the Cedar {what} for this request: {message}")]
    Request { what: &'static str, message: String },
}
