//! The analysis for people: the matrix as `policy analyze` prints it, and the paths a change of
//! bundle opens or closes (`policy diff`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use deskgate_core::{Action, ApiId, Channel, RiskLevel, Tier};
use serde::Serialize;

use super::{Analysis, Capabilities, Cell, on_channel};

/// Capabilities as `a + b`, or `nothing` for the empty set.
fn words(path: &Capabilities) -> String {
    if path.is_empty() {
        return "nothing".to_owned();
    }
    path.iter()
        .map(|c| c.api_id())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The matrix for people: one line per cell with its cheapest paths, then the gates' verdicts.
pub fn render_table(analysis: &Analysis) -> String {
    let mut out = format!(
        "Attack paths of bundle {} (minimal capability sets that reach an executable grant)\n",
        analysis.bundle_digest
    );
    out.push_str(&format!(
        "{:<12} {:<11} {:<26} {:<9} {:>5}  cheapest\n",
        "channel", "tier", "action", "risk", "paths"
    ));
    for cell in &analysis.cells {
        let cheapest = match (&cell.closed, cell.paths.is_empty()) {
            (Some(why), _) => format!("closed: {why}"),
            (None, true) => "unreachable with every capability".to_owned(),
            (None, false) => cell
                .cheapest()
                .iter()
                .map(|p| words(p))
                .collect::<Vec<_>>()
                .join(" | "),
        };
        out.push_str(&format!(
            "{:<12} {:<11} {:<26} {:<9} {:>5}  {}\n",
            cell.channel.to_string(),
            cell.tier.to_string(),
            cell.action.to_string(),
            cell.risk.to_string(),
            cell.paths.len(),
            cheapest
        ));
    }
    if analysis.violations.is_empty() {
        out.push_str("gates: every attack path holds to the bundle's gates\n");
    } else {
        out.push_str(&format!(
            "gates: {} path(s) break them\n",
            analysis.violations.len()
        ));
        for v in &analysis.violations {
            out.push_str(&format!("  {v}\n"));
        }
    }
    out
}

/// How one cell's attack paths change from one bundle to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathChange {
    pub channel: Channel,
    pub tier: Tier,
    pub action: Action,
    pub risk: RiskLevel,
    /// Capability sets that reach the grant with the new bundle and did not with the old.
    pub opened: Vec<Capabilities>,
    /// Capability sets that reached it with the old bundle and no longer do.
    pub closed: Vec<Capabilities>,
}

impl fmt::Display for PathChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |paths: &[Capabilities]| paths.iter().map(words).collect::<Vec<_>>().join(" | ");
        write!(
            f,
            "{} {} at {} risk{}:",
            self.tier,
            self.action,
            self.risk,
            on_channel(self.channel)
        )?;
        if !self.opened.is_empty() {
            write!(f, " opens {}", list(&self.opened))?;
        }
        if !self.closed.is_empty() {
            write!(f, " closes {}", list(&self.closed))?;
        }
        Ok(())
    }
}

/// Whether `caps` reach the grant in `cell`: some path is contained in them.
fn reaches(cell: Option<&Cell>, caps: &Capabilities) -> bool {
    cell.is_some_and(|c| c.paths.iter().any(|p| p.is_subset(caps)))
}

/// The attack paths a change from `old` to `new` opens or closes, cell by cell.
pub fn path_changes(old: &Analysis, new: &Analysis) -> Vec<PathChange> {
    let key = |c: &Cell| {
        (
            c.channel.api_id(),
            c.tier.api_id(),
            c.action.api_id(),
            c.risk,
        )
    };
    let old_cells: BTreeMap<_, &Cell> = old.cells.iter().map(|c| (key(c), c)).collect();
    let new_cells: BTreeMap<_, &Cell> = new.cells.iter().map(|c| (key(c), c)).collect();
    let keys: BTreeSet<_> = old_cells.keys().chain(new_cells.keys()).copied().collect();
    keys.into_iter()
        .filter_map(|k| {
            let (before, after) = (old_cells.get(&k).copied(), new_cells.get(&k).copied());
            let cell = after.or(before)?;
            let opened: Vec<Capabilities> = after
                .map(|c| {
                    c.paths
                        .iter()
                        .filter(|p| !reaches(before, p))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let closed: Vec<Capabilities> = before
                .map(|c| {
                    c.paths
                        .iter()
                        .filter(|p| !reaches(after, p))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (!opened.is_empty() || !closed.is_empty()).then_some(PathChange {
                channel: cell.channel,
                tier: cell.tier,
                action: cell.action,
                risk: cell.risk,
                opened,
                closed,
            })
        })
        .collect()
}
