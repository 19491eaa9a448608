//! No secret reaches a log line or an error message. Two layers:
//! - at the source, URLs are shown without their user-info ([`url`]) and the configuration
//!   prints secrets as `***`;
//! - at the sink, every line the process logs (any level, any crate: an HTTP client's debug
//!   line holds the bot token in its URL) passes through [`Redacted`], which replaces the
//!   secrets [`hide`] was given and any URL's user-info by `***`.

use std::io::Write;
use std::sync::{PoisonError, RwLock};

const HIDDEN: &str = "***";

/// The secrets the log writer hides, registered once the configuration is read.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not hidden everywhere (they would mangle ordinary words); their
/// places in URLs are hidden anyway.
const SHORTEST_HIDDEN: usize = 4;

/// Registers values every later log line hides (empty and very short ones are skipped).
pub fn hide(values: impl IntoIterator<Item = String>) {
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    for value in values {
        if value.len() >= SHORTEST_HIDDEN && !secrets.contains(&value) {
            secrets.push(value);
        }
    }
    // Longest first, so a secret containing another is hidden whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
}

/// `text` with the registered secrets and every URL's user-info replaced by `***`.
pub fn text(text: &str) -> String {
    let mut text = url(text);
    for secret in SECRETS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), HIDDEN);
        }
    }
    text
}

/// The secret part of a URL, for [`hide`]: its password, as written and percent-decoded.
pub fn url_secrets(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let password = parsed.password().unwrap_or_default();
    let mut secrets = vec![password.to_string()];
    secrets.extend(percent_decoded(password).ok());
    secrets
}

fn percent_decoded(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// A URL for messages, or every URL in a text: each `scheme://user:pass@host` as
/// `scheme://***@host`.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || "\"'<>)]},`".contains(c)
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str(HIDDEN);
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// A `tracing_subscriber` writer for standard output (where the log has always gone) that
/// redacts each log line.
#[derive(Clone, Copy, Default)]
pub struct Redacted;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Redacted {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::new())
    }
}

/// One event's text, written to standard output redacted when the event is complete.
pub struct RedactedLine(Vec<u8>);

impl Write for RedactedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let line = text(&String::from_utf8_lossy(&self.0));
        // Nowhere to report a failing standard output.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_user_info_and_nothing_else() {
        assert_eq!(
            url("postgres://prism:s3cr%40t@db.internal:5432/prism"),
            "postgres://***@db.internal:5432/prism"
        );
        assert_eq!(url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(
            text("connecting to redis://:hunter22@cache:6379 and \"postgres://u:p@h/db\" failed"),
            "connecting to redis://***@cache:6379 and \"postgres://***@h/db\" failed"
        );
        assert_eq!(text("no url here: a://"), "no url here: a://");
    }

    #[test]
    fn registered_secrets_are_hidden_in_any_text() {
        hide(["123456:token-for-the-redaction-test".to_string()]);
        hide(url_secrets(
            "postgres://prism:pa%24%24word-redaction-test@db/prism",
        ));
        let line = text(
            "GET http://127.0.0.1/bot123456:token-for-the-redaction-test/getMe; \
             password pa$$word-redaction-test rejected",
        );
        assert!(!line.contains("token-for-the-redaction-test"), "{line}");
        assert!(!line.contains("pa$$word-redaction-test"), "{line}");
        assert!(line.contains("/bot***/getMe"), "{line}");
    }
}
