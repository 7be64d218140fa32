//! The signed-note and checkpoint parsers behind `verify_checkpoint` (an auditor's check of an
//! exported log, and of the checkpoints the server publishes).
//!
//! Input: a mode byte, then
//! - raw mode (mode even): note text, as an auditor might be handed. The signed-note parser
//!   round-trips (parse → serialize → parse gives the same text and signatures), a checkpoint
//!   body round-trips likewise, and `verify_checkpoint` under the trusted key accepts only a
//!   note that carries exactly the signature the trusted key makes over the accepted body
//!   (Ed25519 signatures are deterministic, so this is checked by signing again).
//! - mutation mode (mode odd): 8 bytes of size and 32 of root, then edits `(position, byte)`
//!   applied to a genuine checkpoint note. A mutated note either fails to verify or verifies to
//!   exactly the original checkpoint (edits to foreign signature lines are allowed).
#![no_main]

use deskgate_audit::{CheckpointSigner, Hash, verify_checkpoint};
use libfuzzer_sys::fuzz_target;
use signed_note::Note;

// Go's golang.org/x/mod/sumdb/note reference key (also used by the crate's unit tests).
const SIGNER_KEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const VERIFIER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fn raw(signer: &CheckpointSigner, data: &[u8]) {
    if let Ok(note) = Note::from_bytes(data) {
        let again = Note::from_bytes(&note.to_bytes()).expect("a serialized note parses");
        assert_eq!(again.text(), note.text());
        assert_eq!(again.to_bytes(), note.to_bytes());
        if let Ok(body) = tlog_tiles::Checkpoint::from_bytes(note.text()) {
            let reparsed = tlog_tiles::Checkpoint::from_bytes(&body.to_bytes())
                .expect("a serialized checkpoint parses");
            assert_eq!(reparsed, body);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(checkpoint) = verify_checkpoint(text, VERIFIER_KEY) else {
        return;
    };
    assert_eq!(checkpoint.origin, signer.origin());
    let genuine = signer.sign(checkpoint.size, checkpoint.root).unwrap();
    let (body, signature_line) = genuine.split_once("\n\n").unwrap();
    let (accepted_body, accepted_signatures) = text.rsplit_once("\n\n").unwrap();
    assert_eq!(accepted_body, body, "accepted a body the key did not sign");
    assert!(
        accepted_signatures
            .lines()
            .any(|line| format!("{line}\n") == signature_line),
        "accepted without the trusted key's signature"
    );
}

fn mutated(signer: &CheckpointSigner, data: &[u8]) {
    let Some((size, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((root, edits)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let size = u64::from_le_bytes(*size);
    let root = Hash(*root);
    let note = signer.sign(size, root).unwrap();
    let original = verify_checkpoint(&note, VERIFIER_KEY).expect("a genuine checkpoint verifies");
    assert_eq!((original.size, original.root), (size, root));

    let mut bytes = note.into_bytes();
    for edit in edits.chunks_exact(3) {
        let position = usize::from(u16::from_le_bytes([edit[0], edit[1]]));
        match edit[2] {
            // A few edits insert or delete rather than overwrite.
            0xff if position < bytes.len() => {
                bytes.remove(position);
            }
            0xfe => bytes.insert(position.min(bytes.len()), b'\n'),
            byte if position < bytes.len() => bytes[position] = byte,
            byte => bytes.push(byte),
        }
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return;
    };
    if let Ok(checkpoint) = verify_checkpoint(text, VERIFIER_KEY) {
        assert_eq!(
            checkpoint, original,
            "a mutated note verified to another checkpoint"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let signer = CheckpointSigner::from_signer_key_string(SIGNER_KEY).unwrap();
    if mode % 2 == 0 {
        raw(&signer, rest);
    } else {
        mutated(&signer, rest);
    }
});
