//! The subject import file that `deskgate admin import-subjects` reads: JSON lines, one
//! [`Subject`] per line, blank lines skipped. The file comes from outside (an HR export, a
//! script), so a bad line is reported by its number and nothing is imported.

use crate::Subject;

/// A line of an import file that is not a [`Subject`].
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct ImportLineError {
    /// The line's number, counting from 1 (blank lines included).
    pub line: usize,
    /// Why the line does not parse.
    #[source]
    pub source: serde_json::Error,
}

/// The subjects of an import file, in file order.
///
/// # Errors
/// [`ImportLineError`] for the first non-blank line that is not a [`Subject`].
pub fn parse_subject_lines(text: &str) -> Result<Vec<Subject>, ImportLineError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|source| ImportLineError {
                line: n + 1,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NORA: &str = r#"{"id":"u-nora","display_name":"Nora Quist","tier":"standard","status":"active","manager":null,"owners":[],"groups":[],"contacts":[],"authenticators":[],"flagged":false,"hired_at":null}"#;

    #[test]
    fn skips_blank_lines_and_keeps_file_order() {
        let text = format!("\n{NORA}\n   \n{}\n", NORA.replace("u-nora", "u-olaf"));
        let ids: Vec<_> = parse_subject_lines(&text)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["u-nora", "u-olaf"]);
    }

    #[test]
    fn names_the_first_bad_line_counting_blank_ones() {
        let error = parse_subject_lines(&format!("{NORA}\n\n{{\"id\": 3}}\n")).unwrap_err();
        assert_eq!(error.line, 3);
    }
}
