//! `api.base_url`: an absolute http(s) URL with a host and no credentials, checked at
//! load ([`check_base_url`]); a password written in it is never echoed.

use serde::{Deserialize, Deserializer};

use super::default_base_url;

/// Deserializes `api.base_url`: see [`check_base_url`].
pub(super) fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let raw = String::deserialize(d)?;
    check_base_url(&raw).map_err(serde::de::Error::custom)
}

/// An absolute `http` or `https` URL with a host, or why `raw` is not one. Messages show
/// the value with any password in it replaced by `***`. A URL carrying a login or
/// password is refused: the client sends credentials from `api.login`/`api.password`
/// or `api.token`, and a URL is printed in logs and `Debug` output.
pub fn check_base_url(raw: &str) -> Result<url::Url, String> {
    let shown = redact_userinfo(raw);
    let value = raw.trim();
    // `rest` (a URL without its scheme) with an http(s) scheme in front and without a
    // `user:password@` part, for a hint: http for this machine, else https.
    let with_scheme = |rest: &str| {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let rest = match rest[..authority_end].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        };
        let local = ["localhost", "127.", "[::1]"]
            .iter()
            .any(|p| rest.starts_with(p));
        let scheme = if local { "http" } else { "https" };
        format!("{scheme}://{rest}")
    };
    let parsed = url::Url::parse(value);
    match parsed {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                Err(format!(
                    "`{shown}` has no host; write one like {}",
                    default_base_url()
                ))
            } else if !url.username().is_empty() || url.password().is_some() {
                Err(format!(
                    "`{shown}` carries a login or password; put them in api.login and \
                     api.password (or api.token), not in the URL"
                ))
            } else {
                Ok(url)
            }
        }
        _ if value.is_empty() => Err(format!(
            "is empty; write an http(s) URL like {}",
            default_base_url()
        )),
        // `localhost:8089/v3` parses with the scheme `localhost`, `api.example.com/v3`
        // does not parse at all: both lack the scheme.
        _ if !value.contains("://") => Err(format!(
            "`{shown}` is not an http(s) URL; write the scheme, e.g. {}",
            with_scheme(value)
        )),
        Ok(url) => {
            let rest = &value[value.find("://").map_or(0, |i| i + 3)..];
            Err(format!(
                "`{shown}` is not an http(s) URL: its scheme is `{}`; write http:// or \
                 https://, e.g. {}",
                url.scheme(),
                with_scheme(rest)
            ))
        }
        Err(e) => Err(format!("`{shown}` is not an http(s) URL: {e}")),
    }
}

/// `raw` with the password of a `user:password@` part replaced by `***`. Works on text
/// that does not parse as a URL too.
fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    let Some(at) = raw[start..authority_end].rfind('@').map(|i| start + i) else {
        return raw.to_string();
    };
    match raw[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &raw[..=colon], &raw[at..]),
        None => raw.to_string(),
    }
}
