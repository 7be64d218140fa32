//! `deskgate policy`: check a bundle, run its table-driven tests, explain what a request faces,
//! and show which test cases change between two bundles.

use std::path::Path;

use deskgate_core::{Action, ApiId, IndependenceClass};
use deskgate_policy::{Bundle, diff, run_tests};

fn load(dir: Option<&Path>) -> Result<Bundle, String> {
    match dir {
        Some(d) => Bundle::load_dir(d),
        None => Bundle::default_bundle(),
    }
    .map_err(|e| format!("the bundle is refused:\n{e}"))
}

pub(crate) fn check(dir: Option<&Path>) -> Result<String, String> {
    let b = load(dir)?;
    b.check_gates(chrono::Utc::now())?;
    Ok(format!(
        "ok: bundle {} with {} policies, {} test cases and {} gates",
        b.digest(),
        b.policy_count(),
        b.test_cases().len(),
        b.gates().gates.len()
    ))
}

/// Runs the bundle's cases; the report ends with `N passed, N failed`. Failing cases are an error,
/// and so is an attack path that breaks one of the bundle's gates.
pub(crate) fn test(dir: Option<&Path>) -> Result<String, String> {
    let bundle = load(dir)?;
    let report = run_tests(&bundle);
    let text = report.to_string();
    if report.failed() > 0 {
        return Err(text);
    }
    bundle
        .check_gates(chrono::Utc::now())
        .map_err(|gates| format!("{text}\n{gates}"))?;
    Ok(text)
}

/// `policy analyze`: the matrix of attack paths, as a table or JSON. Broken gates are an error,
/// after the matrix.
pub(crate) fn analyze(dir: Option<&Path>, format: &str) -> Result<String, String> {
    let bundle = load(dir)?;
    let started = std::time::Instant::now();
    let analysis = bundle
        .analyze(chrono::Utc::now())
        .map_err(|e| format!("the attack paths cannot be computed: {e}"))?;
    let elapsed = started.elapsed();
    let text = match format {
        "json" => serde_json::to_string_pretty(&analysis).map_err(|e| e.to_string())?,
        "table" => format!(
            "{}\n{} decisions evaluated in {} ms",
            deskgate_policy::analyze::render_table(&analysis),
            analysis.decisions,
            elapsed.as_millis()
        ),
        other => return Err(format!("unknown format {other}; one of: table, json")),
    };
    if analysis.violations.is_empty() {
        Ok(text)
    } else {
        Err(text)
    }
}

pub(crate) fn explain(
    bundle_dir: Option<&Path>,
    subject: &deskgate_core::Subject,
    action: &str,
    evidence: &[String],
) -> Result<String, String> {
    let action = Action::from_api_id(action).ok_or_else(|| {
        format!(
            "unknown action {action}; one of: {}",
            Action::all()
                .iter()
                .map(ApiId::api_id)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let classes = evidence
        .iter()
        .map(|c| {
            IndependenceClass::from_api_id(c)
                .ok_or_else(|| format!("unknown independence class {c}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let b = load(bundle_dir)?;
    let text = b
        .explain(subject.tier, subject.status, action, &classes)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "subject {} ({})\n{text}",
        subject.id, subject.display_name
    ))
}

pub(crate) fn compare(old: &Path, new: &Path) -> Result<String, String> {
    let (a, b) = (load(Some(old))?, load(Some(new))?);
    let changes = diff(&a, &b);
    let mut out = format!("{} -> {}\n", a.digest(), b.digest());
    for c in &changes {
        out.push_str(&format!(
            "{}: {} -> {} (policies {:?} -> {:?})\n",
            c.name, c.old, c.new, c.old_policy_ids, c.new_policy_ids
        ));
    }
    out.push_str(&format!("{} case(s) change\n", changes.len()));
    let now = chrono::Utc::now();
    let analysis = |b: &Bundle| {
        b.analyze(now)
            .map_err(|e| format!("the attack paths cannot be computed: {e}"))
    };
    let paths = deskgate_policy::analyze::path_changes(&analysis(&a)?, &analysis(&b)?);
    for p in &paths {
        out.push_str(&format!("attack path: {p}\n"));
    }
    out.push_str(&format!(
        "{} cell(s) of the attack matrix change",
        paths.len()
    ));
    Ok(out)
}
