//! `deskgate config check --config FILE`: prints the effective configuration (file, then
//! `DESKGATE_*` variables, over the defaults) with every secret masked, then every problem found;
//! fails when there is one.

use std::path::PathBuf;

use deskgate_app::config_check;

/// The report as printed, and whether the configuration is usable.
pub(crate) async fn run(path: &PathBuf) -> Result<(), String> {
    let config = crate::load_config(Some(path)).map_err(|e| config_check::mask_text(&e))?;
    let report = config_check::check(&config, |key| std::env::var(key).ok()).await;
    println!(
        "# Effective configuration of {} (secrets masked)",
        path.display()
    );
    println!("{}", render(&report.effective));
    for note in &report.notes {
        println!("note: {note}");
    }
    if report.problems.is_empty() {
        println!("configuration OK");
        return Ok(());
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    Err(format!(
        "{} problem(s) in {}",
        report.problems.len(),
        path.display()
    ))
}

/// TOML, as the file is written; `null` (unset) keys are left out.
fn render(value: &serde_json::Value) -> String {
    let pruned = prune(value.clone());
    toml::to_string_pretty(&pruned)
        .or_else(|_| serde_json::to_string_pretty(&pruned).map_err(|e| e.to_string()))
        .unwrap_or_default()
}

fn prune(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, prune(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(prune).collect(),
        other => other,
    }
}
