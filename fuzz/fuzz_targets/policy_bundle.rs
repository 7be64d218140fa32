//! The policy bundle loader (`Bundle::from_files`): what `deskgate policy check` and a reload
//! of the server read from the security team's directory.
//!
//! Input: a selector byte, then the text of one bundle file. The default bundle is loaded with
//! that file replaced (selector < 0xf0: the selector-th file) or added (a new policy or tests
//! file). A refused bundle names at least one problem; a loaded one reloads from its own files
//! to the same digest, its digest differs from the default's whenever a file differs, and its
//! own tests run (decisions on arbitrary policies do not panic).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use deskgate_policy::{Bundle, run_tests};
use libfuzzer_sys::fuzz_target;

fn default_files() -> &'static (BTreeMap<String, String>, String) {
    static FILES: OnceLock<(BTreeMap<String, String>, String)> = OnceLock::new();
    FILES.get_or_init(|| {
        let bundle = Bundle::default_bundle().expect("the default bundle loads");
        (bundle.files().clone(), bundle.digest().to_owned())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let (defaults, default_digest) = default_files();
    let mut files = defaults.clone();
    let path = match selector {
        0xf0..=0xf7 => "policies/fuzz.cedar".to_owned(),
        0xf8..=0xff => "tests/fuzz.toml".to_owned(),
        n => files
            .keys()
            .nth(usize::from(*n) % defaults.len())
            .cloned()
            .unwrap(),
    };
    files.insert(path, text.to_owned());
    let changed = &files != defaults;

    match Bundle::from_files(files.clone()) {
        Err(error) => assert!(!error.problems().is_empty(), "refused without a problem"),
        Ok(bundle) => {
            assert_eq!(bundle.files(), &files);
            assert_eq!(bundle.digest() != default_digest, changed);
            let reloaded = Bundle::from_files(bundle.files().clone())
                .expect("a loaded bundle reloads from its own files");
            assert_eq!(reloaded.digest(), bundle.digest());
            let report = run_tests(&bundle);
            assert_eq!(report.results.len(), bundle.test_cases().len());
        }
    }
});
