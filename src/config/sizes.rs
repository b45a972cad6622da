//! Sizes in configuration: `"64MiB"`, `"512KiB"`, `"1GiB"`, `"100B"`, or a number of
//! bytes.

use serde::{Deserialize, Deserializer};

/// A size in bytes from a number or a string with a binary unit.
pub(super) fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(s) => parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a size like \"64MiB\", \"512KiB\" or a number of bytes, found {s:?}"
            ))
        }),
    }
}

/// The most `api.max_kept` may be: an answer is kept in one `bytea` value, and
/// PostgreSQL holds at most 1 GB in one (1 GiB less 1 MiB, to spare its overhead).
pub const MAX_KEPT: u64 = (1 << 30) - (1 << 20);

/// A size for `api.max_kept`: [`bytes`], at most [`MAX_KEPT`].
pub(super) fn kept<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = bytes(d)?;
    if n > MAX_KEPT {
        return Err(serde::de::Error::custom(format!(
            "{n} bytes is more than PostgreSQL holds in one value; at most \"1023MiB\" ({MAX_KEPT} bytes)"
        )));
    }
    Ok(n)
}

/// `"64MiB"` and the like, in bytes.
pub(super) fn parse(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_read_binary_units_and_refuse_the_rest() {
        assert_eq!(parse("64MiB"), Some(64 * 1024 * 1024));
        assert_eq!(parse("512KiB"), Some(512 * 1024));
        assert_eq!(parse("1GiB"), Some(1 << 30));
        assert_eq!(parse("100"), Some(100));
        assert_eq!(parse("100B"), Some(100));
        assert_eq!(parse("64MB"), None);
        assert_eq!(parse("lots"), None);
        assert_eq!(parse("99999999999999GiB"), None);
    }
}
