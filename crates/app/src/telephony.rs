//! Callbacks through the telephony provider (Twilio's wire format), pure: the TwiML of the call
//! Deskgate places to the phone of record, and the check of the provider's signed Gather webhook.
//!
//! The agent's word is not evidence. Deskgate places the call itself, to the number of record,
//! and the TwiML `<Gather>`s the digits the person who answers keys in; the agent reads a
//! one-time code to the caller on the help-desk line. So the callback passes only when the
//! caller also holds the phone of record, and the provider, not the agent, reports the digits.
//!
//! Twilio signs each webhook with `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the
//! account's auth token, over the full URL it requested followed by every POST parameter's name
//! and value, sorted by name (Twilio's "Webhooks security" doc).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The header Twilio signs webhooks with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The TwiML of a callback: a `<Gather>` of `digits` keypad digits posted to `action`, then a
/// goodbye if nothing was entered. The words never carry the code: the caller hears it from the
/// agent, on the other line.
pub fn gather_twiml(action: &str, digits: usize) -> String {
    format!(
        "<Response><Gather input=\"dtmf\" numDigits=\"{digits}\" timeout=\"30\" \
         action=\"{}\" method=\"POST\"><Say>This is your help desk calling back on the \
         number we have on record. Enter the code the help desk agent is reading to you now, \
         on your keypad.</Say></Gather><Say>No code was entered. Goodbye.</Say></Response>",
        xml_escape(action)
    )
}

/// The signature Twilio computes for a POST to `url` with form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is the provider's signature of this request, compared in constant time.
pub fn signature_matches(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    let expected = signature(auth_token, url, params);
    expected.as_bytes().ct_eq(header.trim().as_bytes()).into()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The example Twilio's helper libraries document for request validation: auth token
    /// `12345`, this URL and these parameters sign to `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`.
    #[test]
    fn twilio_documented_example_signs_alike() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let p = params(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(signature("12345", url, &p), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(signature_matches(
            "12345",
            url,
            &p,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!signature_matches(
            "12346",
            url,
            &p,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn twiml_gathers_digits_and_escapes_the_action() {
        let twiml = gather_twiml("https://d.example/cb?a=1&b=2", 6);
        assert!(twiml.contains("numDigits=\"6\""));
        assert!(twiml.contains("action=\"https://d.example/cb?a=1&amp;b=2\""));
    }
}
