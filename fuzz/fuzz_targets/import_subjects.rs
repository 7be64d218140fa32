//! The lines of `deskgate admin import-subjects` (`parse_subject_lines`).
//!
//! For any text: a file is either read whole, one subject per non-blank line, or refused at a
//! line that is non-blank, does not parse on its own, and follows only lines that do. Every
//! subject read writes back to a line that reads as the same subject (what the store keeps
//! is what the file said).
#![no_main]

use deskgate_core::{Subject, parse_subject_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let parses = |line: &str| serde_json::from_str::<Subject>(line).is_ok();
    match parse_subject_lines(text) {
        Ok(subjects) => {
            let non_blank = lines.iter().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(subjects.len(), non_blank);
            let written: Vec<String> = subjects
                .iter()
                .map(|s| serde_json::to_string(s).unwrap())
                .collect();
            assert!(written.iter().all(|line| !line.contains('\n')));
            let again =
                parse_subject_lines(&written.join("\n")).expect("written subjects read back");
            assert_eq!(again, subjects);
        }
        Err(error) => {
            assert!(error.line >= 1 && error.line <= lines.len(), "{error}");
            let bad = lines[error.line - 1];
            assert!(!bad.trim().is_empty() && !parses(bad), "{error}");
            assert!(
                lines[..error.line - 1]
                    .iter()
                    .all(|l| l.trim().is_empty() || parses(l)),
                "{error}"
            );
        }
    }
});
