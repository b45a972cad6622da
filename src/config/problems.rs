//! A configuration problem in words: one line naming the key, what is wrong and where
//! the value came from, without serde's type names or quotes inside quotes.

use figment::Metadata;

/// One problem as a line: `config: api.timeout: expected a duration like "180s",
/// found 5 (from TOML file config/linkledger.toml)`. Serde's wording is replaced where
/// it would show a type of the program (`usize`, `struct ApiConfig`) or quote inside
/// quotes.
pub(super) fn problem(
    key: &[String],
    kind: &figment::error::Kind,
    from: Option<&Metadata>,
) -> String {
    use figment::error::Kind;
    let why = match kind {
        Kind::Message(m) => m.clone(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!(
                "expected {}, found {}",
                expected_in_words(expected),
                found(actual)
            )
        }
        Kind::UnknownField(name, known) => {
            let hint = crate::words::suggest(name, known.iter().copied())
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            let known = if known.is_empty() {
                String::new()
            } else {
                format!(" (known here: {})", known.join(", "))
            };
            if key.len() == 1 {
                format!("unknown section{hint}{known}")
            } else {
                format!("unknown key{hint}{known}")
            }
        }
        Kind::UnknownVariant(given, known) => {
            format!("'{given}' is not one of {}", known.join(", "))
        }
        Kind::MissingField(name) => format!("{name} is missing"),
        other => other.to_string().replace('`', "'"),
    };
    let why = why.replace("figment::value::value::Value", "a value");
    let key = key.join(".");
    let src = from
        .map(|m| match &m.source {
            Some(source) => format!(" (from {} {source})", m.name),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    if key.is_empty() {
        format!("config: {why}{src}")
    } else {
        format!("config: {key}: {why}{src}")
    }
}

/// A TOML parser's message (a snippet of the file with a caret under the place) as
/// one line: `TOML parse error at line 1, column 5: invalid table header: expected
/// '.', ']'`.
pub(super) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|'))
        .collect::<Vec<_>>()
        .join(": ")
        .replace('`', "'")
}

/// What a setting expects, in a user's words.
fn expected_in_words(expected: &str) -> String {
    match expected {
        "usize" | "u8" | "u16" | "u32" | "u64" | "u128" => "a whole number of 0 or more".into(),
        "isize" | "i8" | "i16" | "i32" | "i64" | "i128" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a duration" => "a duration like \"30s\" or \"5m\"".into(),
        "path string" => "a path".into(),
        "socket address" => "an address like \"127.0.0.1:9187\"".into(),
        "a boolean" | "bool" => "true or false".into(),
        e if e.starts_with("struct ") || e == "map" => "a table of settings".into(),
        e => e.replace('`', "'"),
    }
}

/// What a value was, in a user's words (a string is quoted, never a secret: secrets
/// have messages of their own).
fn found(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Char(c) => format!("'{c}'"),
        Actual::Str(s) => format!("\"{s}\""),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table (or a date)".into(),
        _ => "a value of another kind".into(),
    }
}
